from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.demo import DEFAULT_SEED, import_demo_catalogue, write_demo_catalogue
from catalog.importing import CatalogueFileError, import_catalogue


class Command(BaseCommand):
    help = (
        "Draw a demo catalogue (styles.csv + images/) of COUNT products. With --import the "
        "products are imported as demo data; without --out they are drawn in a temporary folder."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--count", type=int, default=settings.DEMO_CATALOG_SIZE, help="number of products"
        )
        parser.add_argument("--out", help="folder to write styles.csv and images/ into")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="same seed, same catalogue")
        parser.add_argument(
            "--import", dest="run_import", action="store_true", help="import the products (marked as demo)"
        )

    def handle(self, *args, count, out, seed, run_import, verbosity, **options):
        if count < 1:
            raise CommandError("--count must be at least 1.")
        if out is None and not run_import:
            raise CommandError("Give --out DIR to keep the files, --import to import them, or both.")
        try:
            if out is None:
                report = import_demo_catalogue(count, seed)
            else:
                folder = write_demo_catalogue(out, count, seed)
                if verbosity > 0:
                    self.stdout.write(f"Wrote {count} demo products to {folder}")
                report = import_catalogue(folder, is_demo=True) if run_import else None
        except CatalogueFileError as error:
            raise CommandError(str(error)) from error
        if report is not None and verbosity > 0:
            self.stdout.write("\n".join(report.text_lines()))
