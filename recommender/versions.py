"""Model versions: which trained version is active, activating one, rolling back.

The active version decides the search space (recommender.search_space); after a switch
the index is rebuilt in the new space, and until then pages keep searching the previous
build in the space it was built in.
"""

from django.db import transaction
from django.utils import timezone

from .models import ModelVersion


class VersionNotUsable(Exception):
    """The version cannot be activated (it failed, or its weights are missing)."""


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def activate_version(version: ModelVersion | None, *, remember_previous: bool = True) -> None:
    """Make ``version`` the active one (None: back to the untrained default space).

    The index still has to be rebuilt in the new space: callers rebuild it (commands,
    tasks) or queue the rebuild (admin).
    """
    if version is not None and (version.status != ModelVersion.Status.READY or not version.weights_file):
        raise VersionNotUsable(f"{version} is not a finished, stored version")
    with transaction.atomic():
        previous = ModelVersion.objects.select_for_update().filter(is_active=True).first()
        if previous is not None:
            ModelVersion.objects.filter(pk=previous.pk).update(is_active=False)
        if version is not None:
            fields = {"is_active": True, "activated_at": timezone.now()}
            if remember_previous and previous != version:
                fields["replaced"] = previous
            ModelVersion.objects.filter(pk=version.pk).update(**fields)
            version.refresh_from_db()


def roll_back() -> ModelVersion | None:
    """Activate the version the active one replaced (or the default space); returns it."""
    current = active_version()
    if current is None:
        return None
    previous = current.replaced
    if previous is not None and previous.status != ModelVersion.Status.READY:
        previous = None
    activate_version(previous, remember_previous=False)
    return previous
