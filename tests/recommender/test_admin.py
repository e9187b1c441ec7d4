"""The recommender's admin: stored vectors, index builds and the "Rebuild index" button."""

import numpy as np
import pytest
from django.contrib.auth.models import Permission

from recommender.models import IndexBuild, ProductView
from recommender.refresh import rebuild_index
from tests.factories import EmbeddingFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

EMBEDDINGS_URL = "/admin/recommender/embedding/"
BUILDS_URL = "/admin/recommender/indexbuild/"
REBUILD_URL = "/admin/recommender/indexbuild/rebuild/"


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def test_embedding_list_shows_products_and_short_checksums(staff_client):
    product = ProductFactory(name="Striped Summer Shirt")
    EmbeddingFactory(product=product, cnn=np.ones(16), checksum="abcdef0123456789" * 4)

    response = staff_client.get(EMBEDDINGS_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "abcdef012345" in html
    assert "abcdef0123456789abcdef" not in html
    assert str(product.pk) in html
    assert staff_client.get(EMBEDDINGS_URL, {"q": "Striped"}).context["cl"].result_count == 1
    assert staff_client.get(EMBEDDINGS_URL, {"q": "Velvet"}).context["cl"].result_count == 0


def test_embedding_page_is_read_only_and_hides_the_raw_vectors(staff_client):
    embedding = EmbeddingFactory(product=ProductFactory(), cnn=np.ones(16), checksum="c" * 64)

    response = staff_client.get(f"{EMBEDDINGS_URL}{embedding.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "c" * 64 in html
    assert 'name="_save"' not in html
    assert staff_client.get(f"{EMBEDDINGS_URL}add/").status_code == 403


def test_index_build_list_has_the_rebuild_button(staff_client, clustered_catalogue):
    rebuild_index()

    response = staff_client.get(BUILDS_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'action="{REBUILD_URL}"' in html
    assert 'method="post"' in html
    assert "Rebuild index" in html
    assert response.context["cl"].result_count == 1
    assert "Ready" in html


def test_staff_rebuild_creates_a_build_and_says_so(staff_client, clustered_catalogue):
    response = staff_client.post(REBUILD_URL, follow=True)

    assert response.redirect_chain[-1][0] == BUILDS_URL
    assert response.status_code == 200
    assert messages_of(response) == ["Index rebuild started; the new build appears here when it is ready."]
    build = IndexBuild.objects.get()
    assert build.status == IndexBuild.Status.READY
    assert build.item_count == 30


def test_rebuild_without_vectors_shows_a_failed_build(staff_client):
    response = staff_client.post(REBUILD_URL, follow=True)

    assert response.status_code == 200
    build = IndexBuild.objects.get()
    assert build.status == IndexBuild.Status.FAILED
    assert "no stored vectors" in build.error


def test_rebuild_is_refused_to_visitors_and_shoppers(client, user_client, clustered_catalogue):
    for someone in (client, user_client):
        response = someone.post(REBUILD_URL)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]

    assert not IndexBuild.objects.exists()


def test_rebuild_is_refused_to_staff_who_cannot_see_index_builds(client, clustered_catalogue):
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_embedding"))
    client.force_login(clerk)

    response = client.post(REBUILD_URL)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert not IndexBuild.objects.exists()


def test_rebuild_needs_a_post(staff_client, clustered_catalogue):
    response = staff_client.get(REBUILD_URL)

    assert response.status_code == 405
    assert not IndexBuild.objects.exists()


def test_rebuild_needs_a_csrf_token(staff_user, clustered_catalogue):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)

    assert browser.post(REBUILD_URL).status_code == 403
    assert not IndexBuild.objects.exists()


def test_index_builds_cannot_be_added_or_edited(staff_client, clustered_catalogue):
    build = rebuild_index()

    assert staff_client.get(f"{BUILDS_URL}add/").status_code == 403
    page = staff_client.get(f"{BUILDS_URL}{build.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


def test_product_views_are_listed(staff_client, user):
    product = ProductFactory(name="Linen Trousers")
    ProductView.objects.create(user=user, product=product)

    response = staff_client.get("/admin/recommender/productview/")

    assert response.status_code == 200
    assert "Linen Trousers" in response.content.decode()
    assert user.username in response.content.decode()


def test_rebuild_needs_the_change_permission_not_just_the_view_one(client, clustered_catalogue):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_indexbuild"))
    client.force_login(viewer)

    page = client.get("/admin/recommender/indexbuild/")
    response = client.post(REBUILD_URL)

    assert page.status_code == 200 and "Rebuild index" not in page.content.decode()
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert not IndexBuild.objects.exists()
