"""train_recommender end to end on a small real subset of the catalogue: train, measure,
version, activate, rebuild, search in the new space; refusals, no activation of a worse
version, roll back, and the admin's actions."""

import io
import shutil

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from catalog.importing import import_catalogue
from catalog.models import Product
from recommender import annoy_index, training, versions
from recommender.embedding.head import HeadConfig
from recommender.models import ModelVersion
from recommender.neighbours import serving_space
from recommender.photo_search import search_by_photo
from recommender.refresh import embed_products, index_is_stale, rebuild_index
from recommender.similar import similar_products
from tests.catalog_files import styles_line, write_catalogue
from tests.factories import ProductFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

TYPES = ("Tshirts", "Shirts", "Jeans", "Casual Shoes", "Watches", "Handbags")
FAST = HeadConfig(epochs=12, hidden=256, dim=64)


@pytest.fixture(autouse=True)
def own_folders(settings, tmp_path, media_root):
    settings.MODEL_VERSIONS_DIR = tmp_path / "model-versions"


def real_subset(folder, source, per_type=35, types=TYPES):
    """Copy the first ``per_type`` products of each type (raw lines and photos) from the
    real catalogue sample."""
    lines = (source / "styles.csv").read_text(encoding="utf-8").splitlines()
    chosen, counts = [], {}
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) < 10 or cells[4] not in types or not (source / "images" / f"{cells[0]}.jpg").exists():
            continue
        if counts.get(cells[4], 0) < per_type:
            counts[cells[4]] = counts.get(cells[4], 0) + 1
            chosen.append(line)
    (folder / "images").mkdir(parents=True)
    (folder / "styles.csv").write_text("\n".join([lines[0], *chosen]) + "\n", encoding="utf-8")
    for line in chosen:
        pk = line.split(",")[0]
        shutil.copy(source / "images" / f"{pk}.jpg", folder / "images" / f"{pk}.jpg")
    return folder


@pytest.fixture
def subset(fashion_dev, tmp_path):
    import_catalogue(real_subset(tmp_path / "subset", fashion_dev))
    return Product.objects.all()


def test_a_better_version_is_stored_activated_and_searched_with(subset, fashion_dev):
    report = training.train_recommender(config=FAST)

    version = report.version
    assert version.status == ModelVersion.Status.READY
    assert version.training_products + version.held_out_products == subset.count()
    new, old = version.metrics["new"]["catalogue"], version.metrics["active"]["catalogue"]
    assert version.metrics["active_name"] == "efficientnet_lite0"
    assert new["article_type_and_colour"] > old["article_type_and_colour"]
    assert report.activated and version.is_active
    # The index was rebuilt in the new version's space, and searches use it.
    assert annoy_index.current_index().metadata["version_id"] == version.pk
    space, index = serving_space()
    assert space.version_id == version.pk and space.head is not None
    product = subset.filter(article_type="Jeans").first()
    similar = similar_products(product)
    assert len(similar) == 5 and product not in similar
    photo = (fashion_dev / "images" / f"{product.pk}.jpg").read_bytes()
    assert [p.article_type for p in search_by_photo(photo)].count("Jeans") >= 3
    # A product added after the activation is embedded and found in the new space.
    newcomer = ProductFactory(article_type="Jeans", image=ContentFile(photo, name="new.jpg"))
    embed_products([newcomer.pk])
    assert newcomer in similar_products(product, k=10)
    assert len(similar_products(newcomer)) == 5


def test_an_interrupted_training_run_resumes_where_it_stopped(subset):
    def interrupt_after_two(epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train_recommender(config=FAST, on_epoch=interrupt_after_two)
    report = training.train_recommender(config=FAST)

    assert report.resumed_from_epoch == 2
    interrupted = ModelVersion.objects.exclude(pk=report.version.pk).get()
    assert interrupted.status == ModelVersion.Status.FAILED
    assert "resumed" in interrupted.error
    assert report.version.status == ModelVersion.Status.READY


def test_a_version_trained_on_shuffled_labels_is_kept_but_not_activated(subset):
    report = training.train_recommender(config=FAST, shuffle_labels=True)

    assert not report.activated
    assert report.version.metrics["better"] is False
    assert report.version.hyperparameters["shuffled_labels"] is True
    assert versions.active_version() is None


def test_no_activate_only_measures(subset):
    output = call_command_output("train_recommender", "--no-activate", "--epochs", "3")

    assert "P@5 same article type" in output
    assert "not activated (--no-activate)" in output
    assert versions.active_version() is None
    assert ModelVersion.objects.get().status == ModelVersion.Status.READY


def test_roll_back_returns_to_the_space_the_version_replaced(subset):
    first = training.train_recommender(config=FAST).version
    assert first.is_active

    assert versions.roll_back() is None
    assert versions.active_version() is None
    assert index_is_stale()  # the index is still in the rolled-back version's space
    rebuild_index()
    assert annoy_index.current_index().metadata["version_id"] is None
    assert serving_space()[0].head is None


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            [styles_line(pk, article_type="Tshirts" if pk % 2 else "Jeans") for pk in range(1, 11)],
            "at least 40",
        ),
        ([styles_line(pk) for pk in range(1, 71)], "too uniform"),
    ],
)
def test_a_catalogue_too_small_or_too_uniform_is_refused_clearly(tmp_path, lines, message):
    folder = write_catalogue(tmp_path / "cat", lines, images=[int(line.split(",")[0]) for line in lines])
    import_catalogue(folder)

    with pytest.raises(CommandError, match=message):
        call_command("train_recommender", "--epochs", "1", verbosity=0)
    assert not ModelVersion.objects.exists()


def test_admin_actions_follow_permissions(subset, staff_client):
    version = training.train_recommender(config=FAST, activate=False).version
    changelist = reverse("admin:recommender_modelversion_changelist")
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_modelversion"))
    client = Client()
    client.force_login(viewer)

    refused = client.post(changelist, {"action": "activate", "_selected_action": [version.pk]})
    assert refused.status_code in (200, 302, 403)
    assert versions.active_version() is None
    assert client.post(reverse("admin:recommender_modelversion_train")).status_code == 302
    assert ModelVersion.objects.count() == 1  # the viewer cannot start a training run

    page = staff_client.get(changelist)
    assert "Train a new version" in page.content.decode()
    staff_client.post(changelist, {"action": "activate", "_selected_action": [version.pk]})
    assert versions.active_version() == version
    assert annoy_index.current_index().metadata["version_id"] == version.pk  # rebuilt (tasks run eagerly)
    staff_client.post(changelist, {"action": "roll_back", "_selected_action": [version.pk]})
    assert versions.active_version() is None


def call_command_output(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()
