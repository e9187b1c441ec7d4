"""The recommender app: visual similarity, photo search and recommendations."""

from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Visual recommendations"

    def ready(self):
        # Signals embed products when their image changes; the tasks module registers the
        # tasks that recommender.queueing sends by name, in web processes too.
        from . import signals, tasks  # noqa: F401
