from django.core.management.base import BaseCommand, CommandError

from recommender.refresh import IndexBuildFailed, rebuild_index


class Command(BaseCommand):
    help = "Build a new Annoy index from the stored vectors and swap it in."

    def add_arguments(self, parser):
        parser.add_argument(
            "--trees", type=int, default=None, help="Number of trees (default: ANNOY_N_TREES)."
        )

    def handle(self, *args, **options):
        try:
            build = rebuild_index(n_trees=options["trees"])
        except IndexBuildFailed as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Index build {build.pk}: {build.item_count} items, {build.dimensions} dimensions, "
                f"{build.n_trees} trees, {build.duration_seconds:.2f}s."
            )
        )
