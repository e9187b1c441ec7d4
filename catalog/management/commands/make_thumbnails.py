from django.core.management.base import BaseCommand
from tqdm import tqdm

from catalog.models import Product
from catalog.thumbnails import make_missing_thumbnails, remove_unused_thumbnails


class Command(BaseCommand):
    help = (
        "Make the missing thumbnails of every product photo (those stored before thumbnails "
        "existed, or whose background task was lost). Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--clean",
            action="store_true",
            help="also delete the thumbnails of photos no product has any more",
        )

    def handle(self, *args, clean, verbosity, **options):
        products = Product.objects.with_photo().only("pk", "image", "image_checksum").order_by("pk")
        progress = None
        if verbosity > 0:
            progress = tqdm(total=products.count(), unit="photos", desc="Thumbnails", file=self.stderr._out)

        def on_progress(done):
            if progress is not None:
                progress.update(done - progress.n)

        try:
            report = make_missing_thumbnails(products.iterator(chunk_size=1000), on_progress=on_progress)
        finally:
            if progress is not None:
                progress.close()
        Product.objects.record_thumbnails(report.ready)
        removed = 0
        if clean:
            in_use = Product.objects.with_photo().values_list("image_checksum", flat=True)
            removed = remove_unused_thumbnails(in_use.iterator())
        if verbosity > 0:
            self.stdout.write(
                f"Thumbnails made for {report.made} photos; {report.present} already had them; "
                f"{report.failed} could not be read"
                + (f"; removed those of {removed} photos no product has." if clean else ".")
            )
