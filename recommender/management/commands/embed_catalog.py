from django.core.management.base import BaseCommand
from tqdm import tqdm

from catalog.models import Product
from recommender.refresh import embed_products, index_is_stale, products_needing_embedding, rebuild_index


class Command(BaseCommand):
    help = (
        "Compute image vectors for products whose image is new or changed (batched), then rebuild the index."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Check every product, not only those pending.")
        parser.add_argument("--no-index", action="store_true", help="Do not rebuild the index afterwards.")

    def handle(self, *args, **options):
        if options["all"]:
            ids = list(Product.objects.exclude(image="").values_list("pk", flat=True))
        else:
            ids = products_needing_embedding()
        with tqdm(total=len(ids), unit="product", desc="Embedding", disable=not ids) as bar:
            report = embed_products(ids, progress=bar.update)
        self.stdout.write(
            f"Embedded {report.embedded}, unchanged {report.unchanged}, "
            f"without image {report.without_image}, failed {len(report.failed)}."
        )
        for product_id, reason in report.failed[:20]:
            self.stdout.write(f"  product {product_id}: {reason}")
        if not options["no_index"] and index_is_stale():
            build = rebuild_index()
            self.stdout.write(self.style.SUCCESS(f"Index build {build.pk}: {build.item_count} items."))
