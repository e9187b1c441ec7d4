"""Clients for the REST API: visitors, shoppers and staff, with or without CSRF checks."""

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api_client(db):
    """A visitor without an account (CSRF checks off, as DRF's test client defaults)."""
    return APIClient()


@pytest.fixture
def user_api(db, user):
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def other_user_api(db, other_user):
    client = APIClient()
    client.force_login(other_user)
    return client


@pytest.fixture
def staff_api(db, staff_user):
    client = APIClient()
    client.force_login(staff_user)
    return client


@pytest.fixture
def csrf_client(db):
    """A visitor whose unsafe requests go through the real CSRF check, like a browser's."""
    return APIClient(enforce_csrf_checks=True)
