from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommender.embedding.head import HeadConfig
from recommender.training import TrainingRefused, train_recommender


class Command(BaseCommand):
    help = (
        "Train the recommender's head on the catalogue (a fifth of the products held out), "
        "measure it beside the active version, store it as a model version and activate it "
        "when it is better (then the index is rebuilt in its space). Resumes an interrupted run."
    )

    def add_arguments(self, parser):
        defaults = HeadConfig()
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument(
            "--shopper-photos",
            metavar="DIR",
            help="labelled shopper photos (images.csv + images/): half train, half are measured",
        )
        parser.add_argument("--no-activate", action="store_true", help="train and measure only")
        parser.add_argument(
            "--shuffle-labels",
            action="store_true",
            help="sanity check: train on shuffled labels (such a version must never be activated)",
        )

    def handle(self, *args, epochs, seed, shopper_photos, no_activate, shuffle_labels, **options):
        config = HeadConfig(epochs=epochs, seed=seed)
        with tqdm(total=epochs, unit="epoch", desc="Training", disable=options["verbosity"] == 0) as bar:

            def on_epoch(epoch, logs):
                bar.n = epoch
                bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}")
                bar.refresh()

            try:
                report = train_recommender(
                    config=config,
                    shopper_photos=shopper_photos,
                    activate=not no_activate,
                    shuffle_labels=shuffle_labels,
                    progress=lambda message: bar.write(message),
                    on_epoch=on_epoch,
                )
            except TrainingRefused as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write("\n".join(metrics_lines(report.version.metrics)))
        version = report.version
        if report.activated:
            self.stdout.write(self.style.SUCCESS(f"Version {version.pk} is better and now active."))
        elif no_activate:
            self.stdout.write(f"Version {version.pk} stored; not activated (--no-activate).")
        else:
            self.stdout.write(
                self.style.WARNING(f"Version {version.pk} is not better; the active one stays.")
            )
        self.stdout.write(f"Took {report.seconds:.1f}s.")


def metrics_lines(metrics):
    """The side-by-side table of a version's measurements."""
    lines = [f"{'':38}{'new':>8}{'active':>8}"]
    new, old = metrics["new"], metrics["active"]
    for key, name in (
        ("article_type", "P@5 same article type"),
        ("article_type_and_colour", "P@5 same type and colour"),
    ):
        lines.append(f"{name:38}{new['catalogue'][key]:8.3f}{old['catalogue'][key]:8.3f}")
    if "shopper_photos" in new:
        lines.append(
            f"{'P@5 shopper photos, right kind':38}{new['shopper_photos']['overall']:8.3f}"
            f"{old['shopper_photos']['overall']:8.3f}"
        )
        for label, row in new["shopper_photos"]["per_label"].items():
            before = old["shopper_photos"]["per_label"][label]["p_at_k"]
            lines.append(
                f"  {label} ({row['queries']} photos){'':{max(0, 20 - len(label))}}"
                f"{row['p_at_k']:8.3f}{before:8.3f}"
            )
    return lines
