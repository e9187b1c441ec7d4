"""Management commands: embed_catalog, build_index and the first-run bootstrap_demo."""

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from catalog.demo import DEMO_FIRST_ID
from catalog.models import Product
from recommender import annoy_index
from recommender.models import Embedding, IndexBuild
from tests.factories import EmbeddingFactory, ProductFactory
from tests.images import BLUE, GREEN, RED, garment_photo


@pytest.fixture(autouse=True)
def own_media_root(media_root):
    return media_root


def run(*args):
    """Run a command; its standard output."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def photo_product(colour):
    return ProductFactory(image=ContentFile(garment_photo(colour), name="p.jpg"))


@pytest.mark.slow
@pytest.mark.django_db
def test_embed_catalog_embeds_pending_products_and_builds_the_index():
    # Saved inside the test's transaction: no embedding task ran for them.
    products = [photo_product(colour) for colour in (RED, BLUE, GREEN)]
    ProductFactory()  # no photo: not pending

    output = run("embed_catalog")

    assert "Embedded 3, unchanged 0, without image 0, failed 0." in output
    assert sorted(Embedding.objects.values_list("product_id", flat=True)) == sorted(p.pk for p in products)
    build = IndexBuild.objects.get()
    assert f"Index build {build.pk}: 3 items." in output
    assert build.status == IndexBuild.Status.READY
    assert sorted(annoy_index.current_index().positions) == sorted(p.pk for p in products)


@pytest.mark.slow
@pytest.mark.django_db
def test_embed_catalog_again_does_nothing_new():
    photo_product(RED)
    run("embed_catalog")
    stamps = list(Embedding.objects.values_list("updated_at", flat=True))

    output = run("embed_catalog")
    everything = run("embed_catalog", "--all")

    assert "Embedded 0, unchanged 0, without image 0, failed 0." in output
    assert "Embedded 0, unchanged 1, without image 0, failed 0." in everything
    assert list(Embedding.objects.values_list("updated_at", flat=True)) == stamps
    assert IndexBuild.objects.count() == 1


@pytest.mark.slow
@pytest.mark.django_db
def test_embed_catalog_reports_broken_photos_and_carries_on():
    good = photo_product(BLUE)
    broken = ProductFactory(image=ContentFile(b"<html>not a photo</html>", name="p.jpg"))

    output = run("embed_catalog")

    assert "Embedded 1, unchanged 0, without image 0, failed 1." in output
    assert f"  product {broken.pk}: This file is not an image we can read." in output
    assert list(Embedding.objects.values_list("product_id", flat=True)) == [good.pk]
    assert IndexBuild.objects.get().item_count == 1


@pytest.mark.slow
@pytest.mark.django_db
def test_embed_catalog_without_index_leaves_the_index_alone():
    photo_product(RED)

    output = run("embed_catalog", "--no-index")

    assert "Embedded 1" in output
    assert Embedding.objects.count() == 1
    assert not IndexBuild.objects.exists()


@pytest.mark.django_db
def test_build_index_without_vectors_explains_why():
    with pytest.raises(CommandError, match="there are no stored vectors to index yet"):
        run("build_index")


@pytest.mark.django_db
def test_build_index_builds_from_stored_vectors(clustered_catalogue):
    output = run("build_index", "--trees", "7")

    build = IndexBuild.objects.get()
    assert build.n_trees == 7
    assert build.item_count == 30
    assert f"Index build {build.pk}: 30 items, 24 dimensions, 7 trees" in output
    assert len(annoy_index.current_index()) == 30


@pytest.mark.django_db
def test_build_index_keeps_the_current_index_when_a_build_fails(clustered_catalogue):
    run("build_index")
    # Vectors of another length cannot be indexed together.
    EmbeddingFactory(product=ProductFactory(), cnn=np.ones(8))

    with pytest.raises(CommandError):
        run("build_index")

    assert len(annoy_index.current_index()) == 30
    assert IndexBuild.objects.filter(status=IndexBuild.Status.FAILED).count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bootstrap_demo_fills_an_empty_shop_once():
    output = run("bootstrap_demo", "--count", "12")

    products = Product.objects.all()
    assert products.count() == 12
    assert all(p.is_demo and p.image and p.pk >= DEMO_FIRST_ID for p in products)
    assert Embedding.objects.count() == 12
    ready = IndexBuild.objects.filter(status=IndexBuild.Status.READY).first()
    assert sorted(annoy_index.current_index().positions) == sorted(p.pk for p in products)
    assert ready.item_count == 12
    assert "Creating a demo catalogue of 12 products" in output
    builds = IndexBuild.objects.count()
    stamps = sorted(Embedding.objects.values_list("product_id", "updated_at"))

    again = run("bootstrap_demo", "--count", "30")

    assert "The catalogue already has products; leaving it as it is." in again
    assert Product.objects.count() == 12
    assert sorted(Embedding.objects.values_list("product_id", "updated_at")) == stamps
    assert IndexBuild.objects.count() == builds


@pytest.mark.slow
@pytest.mark.django_db
def test_bootstrap_demo_leaves_a_real_catalogue_alone_but_embeds_it():
    real = photo_product(GREEN)

    output = run("bootstrap_demo", "--count", "12")

    assert "leaving it as it is" in output
    assert list(Product.objects.values_list("pk", flat=True)) == [real.pk]
    assert not Product.objects.filter(is_demo=True).exists()
    assert Embedding.objects.filter(product=real).exists()
