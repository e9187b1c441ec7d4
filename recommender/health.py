"""Readiness of visual search: is the current index build loaded, or loadable, here?

A shop with nothing indexed yet (empty catalogue, first deploy, a new model not built
yet) is ready: searches are exact until the first build, and the check says so. A build
recorded as ready that this host cannot fetch from the search files store or load is not:
the host most likely cannot reach the store, and would serve slow exact searches forever.
Nor is a build whose stored files are gone or damaged: hosts that start now could not
serve it.
"""

import dataclasses

from asgiref.sync import sync_to_async
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
        problem = annoy_index.publication_problem(index)
        if problem:
            raise annoy_index.IndexUnavailable(problem)
    except annoy_index.IndexUnavailable as exc:
        if recorded is None:
            # Nothing indexed yet, or only a build of another model: exact search works.
            if annoy_index.build_is_published():
                return f"no build of {model_name} yet ({exc}): searches are exact until one is made"
            return "no build yet: searches are exact until the first one"
        raise ServiceUnavailable(f"index build {recorded.pk} is recorded but unusable here: {exc}") from exc
    return f"build {index.build_id}, {len(index)} products"
