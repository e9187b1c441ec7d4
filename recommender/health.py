"""Readiness of visual search: is the current index build loaded, or loadable, here?

A shop with nothing indexed yet (empty catalogue, first deploy, a new model not built
yet) is ready: searches are exact until the first build, and the check says so. A build
recorded as ready whose files this process cannot find or read is not: the web machine
most likely lacks the shared INDEX_DIR, and would serve slow exact searches forever.
"""

import dataclasses
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError
from health_check import HealthCheck
from health_check.exceptions import ServiceUnavailable

from . import annoy_index
from .models import IndexBuild
from .vector_store import current_model_name


@dataclasses.dataclass
class SearchIndex(HealthCheck):
    """The index build searches use; ``detail`` (shown in every report) says which."""

    detail: str = dataclasses.field(default="not checked", init=False)

    async def run(self):
        # In the request's thread: its database connection, not a new one per probe.
        self.detail = await sync_to_async(index_state)()


def index_state() -> str:
    """What serves searches, e.g. "build 12, 4395 products" or "no build yet: ...".

    Raises ServiceUnavailable when a ready build is recorded but its files are unusable.
    """
    model_name = current_model_name()
    try:
        recorded = IndexBuild.objects.filter(status=IndexBuild.Status.READY, model_name=model_name).first()
    except DatabaseError as exc:
        raise ServiceUnavailable(f"cannot read the index builds: {exc.__class__.__name__}") from exc
    try:
        index = annoy_index.current_index(model_name)
        missing = _missing_files(index.metadata)
        if missing:
            raise annoy_index.IndexUnavailable(f"{', '.join(missing)} missing or truncated")
    except annoy_index.IndexUnavailable as exc:
        if recorded is None:
            # Nothing indexed yet, or only a build of another model: exact search works.
            if (Path(settings.INDEX_DIR) / annoy_index.POINTER_NAME).exists():
                return f"no build of {model_name} yet ({exc}): searches are exact until one is made"
            return "no build yet: searches are exact until the first one"
        raise ServiceUnavailable(f"index build {recorded.pk} is recorded but unusable here: {exc}") from exc
    return f"build {index.build_id}, {len(index)} products"


def _missing_files(pointer) -> list[str]:
    """Files of the loaded build that are gone from INDEX_DIR or truncated (this process
    may still hold the build, but a restarted worker could not load it)."""
    folder = Path(settings.INDEX_DIR)
    missing = [
        name
        for name in (pointer["ann"], pointer["ids"], pointer["neighbours"])
        if not (folder / name).is_file()
    ]
    ann = folder / pointer["ann"]
    if pointer["ann"] not in missing and ann.stat().st_size != pointer["ann_bytes"]:
        missing.append(pointer["ann"])
    return missing
