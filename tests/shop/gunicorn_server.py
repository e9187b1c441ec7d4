"""The production web server (gunicorn, threaded workers) over the test database, for tests
that send real HTTP traffic to real worker processes on 127.0.0.1."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

PROJECT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def database_url():
    """DATABASE_URL of the database this test run uses (PostgreSQL or the SQLite file)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(data_dir, *, workers=2, threads=8, index_dir=None):
    """Serve the shop on a free port of 127.0.0.1; yields the base URL.

    No task runs inside a request: with no broker and no worker, tasks wait in a broker
    folder, as they would in a queue. The server's log ends up in ``data_dir``.
    """
    port = _free_port()
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
    log_path = Path(data_dir) / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [
                str(GUNICORN),
                "config.wsgi",
                f"--bind=127.0.0.1:{port}",
                f"--workers={workers}",
                f"--threads={threads}",
                "--worker-class=gthread",
                "--preload",
                "--timeout=60",
                "--graceful-timeout=1",
                "--no-control-socket",
            ],
            cwd=PROJECT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, server, log_path)
        yield base_url
    finally:
        server.send_signal(signal.SIGINT)  # quick shutdown: the test is over
        server.wait(timeout=30)


def _wait_until_serving(base_url, server, log_path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base_url + "/api/cart/", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout} s: {log_path.read_text()[-3000:]}")
