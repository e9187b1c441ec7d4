from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from recommender.active_model import convert_model
from recommender.embedding import EmbedderUnavailable


class Command(BaseCommand):
    help = (
        "Convert the configured image model to the file web processes load (imports TensorFlow; "
        "does nothing when the file exists). Run it in a deploy step before starting web servers; "
        "workers also run it when they start."
    )

    def handle(self, *args, **options):
        try:
            path = convert_model()
        except (EmbedderUnavailable, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Photo search model ready: {path}")
