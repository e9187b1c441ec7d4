from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.importing import CatalogueFileError, import_catalogue


class Command(BaseCommand):
    help = (
        "Import a catalogue: a folder holding styles.csv and images/<id>.jpg, or a .zip archive "
        "of that layout. Products are upserted by id; re-importing the same files changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="folder, .zip archive, or styles.csv with images/ beside it")
        parser.add_argument("--demo", action="store_true", help="mark the imported products as demo data")

    def handle(self, *args, path, demo, verbosity, **options):
        progress = None
        if verbosity > 0:
            progress = tqdm(total=0, unit="rows", desc="Importing", file=self.stderr._out)

        def on_progress(done, total):
            if progress is not None:
                progress.total = total
                progress.update(done - progress.n)

        try:
            report = import_catalogue(path, is_demo=demo, on_progress=on_progress)
        except CatalogueFileError as error:
            raise CommandError(str(error)) from error
        finally:
            if progress is not None:
                progress.close()
        if verbosity > 0:
            self.stdout.write("\n".join(report.text_lines()))
