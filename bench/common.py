"""What every benchmark shares: paths, logging to stderr, rounding, Django in a temp dir."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def log(message):
    print(message, file=sys.stderr, flush=True)


def rounded(value):
    """Floats rounded to 4 places, inside dicts and lists too, for readable JSON."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def setup_django(tmp, data_dir=None):
    """Start Django with the test settings and every runtime file under ``tmp``: a fresh
    SQLite database, media and index folders. ``data_dir`` keeps model weights (and
    caches) elsewhere when given. The settings read these from the environment."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["TEST_DATA_DIR"] = str(tmp)
    os.environ["DATA_DIR"] = str(data_dir or tmp)
    os.environ["MEDIA_ROOT"] = str(Path(tmp) / "media")
    os.environ["INDEX_DIR"] = str(Path(tmp) / "index")
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
    import django

    django.setup()
