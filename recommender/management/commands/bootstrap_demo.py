from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from catalog.demo import import_demo_catalogue
from catalog.models import Product


class Command(BaseCommand):
    help = (
        "First run of the embedded mode: when the catalogue is empty, draw and import a demo "
        "catalogue, embed it and build the index. Does nothing to an existing catalogue."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=settings.DEMO_CATALOG_SIZE)

    def handle(self, *args, count, **options):
        if Product.objects.exists():
            self.stdout.write("The catalogue already has products; leaving it as it is.")
        else:
            self.stdout.write(
                f"Creating a demo catalogue of {count} products (generated images, marked as demo)..."
            )
            report = import_demo_catalogue(count)
            self.stdout.write("\n".join(report.text_lines()))
        self.stdout.write("Embedding product images (the first run converts the model weights)...")
        call_command("embed_catalog")
