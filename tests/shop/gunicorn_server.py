"""The production web server (gunicorn, threaded workers) over the test database, for tests
that send real HTTP traffic to real worker processes on 127.0.0.1."""

import os
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from tests import servers
from tests.workers import database_url


@contextmanager
def gunicorn(data_dir, *, workers=2, threads=8, index_dir=None):
    """Serve the shop on a free port of 127.0.0.1; yields the base URL.

    No task runs inside a request: with no broker and no worker, tasks wait in a broker
    folder, as they would in a queue. The server's log ends up in ``data_dir``.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "TEST_DATA_DIR": str(data_dir),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "INDEX_DIR": str(index_dir or settings.INDEX_DIR),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    env.pop("REDIS_URL", None)
    options = (
        f"--workers={workers}",
        f"--threads={threads}",
        "--worker-class=gthread",
        "--preload",
        "--timeout=60",
        "--graceful-timeout=1",
        "--no-control-socket",
    )
    with servers.gunicorn(env, Path(data_dir) / "gunicorn.log", *options) as base_url:
        yield base_url
