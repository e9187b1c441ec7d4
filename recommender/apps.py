from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Visual recommendations"

    def ready(self):
        from . import signals  # noqa: F401  (embed products when their image changes)
