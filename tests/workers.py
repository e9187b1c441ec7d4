"""Real `celery worker` processes on a Redis broker for tests.

``services_mode`` points the test process at Redis (broker, results, cache) like a web node
in services mode; ``Workers`` starts worker processes with the test settings, sharing the
test's database, media and index folders. Each test module uses its own Redis database so
modules run by different people never take each other's messages.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import connection

from config.celery import app as celery_app
from recommender import annoy_index

PROJECT = Path(__file__).resolve().parents[1]
# Celery settings changed by services_mode, restored afterwards.
_CELERY_KEYS = (
    "task_always_eager",
    "broker_url",
    "result_backend",
    "broker_transport_options",
    "broker_connection_timeout",
)


def redis_client(url):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2)


def database_url():
    """The test database as a DATABASE_URL for processes the test starts."""
    params = connection.settings_dict
    if params["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{params['NAME']}"
    return f"postgres://{params['USER']}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


def forget_broker_connections():
    """Drop pooled connections and producers made for the previous broker (eager tests
    earlier in the session create them for another transport)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def services_mode(settings, redis_url, visibility_timeout, rebuild_delay=2):
    """Point this process at Redis ``redis_url`` (emptied before and after) for tasks and
    the cache; skips the test when Redis is not reachable."""
    # Read first: the app loads its configuration from Django settings on first use.
    saved = {key: celery_app.conf[key] for key in _CELERY_KEYS}
    try:
        redis_client(redis_url).flushdb()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis is not reachable at {redis_url}: {exc}")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.INDEX_REBUILD_DELAY = rebuild_delay
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    caches["default"].clear()
    celery_app.conf.update(
        task_always_eager=False,
        broker_url=redis_url,
        result_backend=redis_url,
        broker_transport_options={"visibility_timeout": visibility_timeout},
        broker_connection_timeout=2,
    )
    forget_broker_connections()
    annoy_index.forget_loaded_index()
    try:
        yield settings
    finally:
        celery_app.conf.update(saved)
        forget_broker_connections()
        annoy_index.forget_loaded_index()
        redis_client(redis_url).flushdb()


def process_env(redis_url, visibility_timeout, **extra):
    """Environment for a worker or web process of the test: the test settings, this test's
    database, files and broker."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url(),
        REDIS_URL=redis_url,
        TEST_DATA_DIR=str(django_settings.TEST_DATA_DIR),
        MEDIA_ROOT=str(django_settings.MEDIA_ROOT),
        INDEX_DIR=str(django_settings.INDEX_DIR),
        INDEX_REBUILD_DELAY=str(django_settings.INDEX_REBUILD_DELAY),
        CELERY_VISIBILITY_TIMEOUT=str(visibility_timeout),
        LOG_LEVEL="WARNING",
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


class Workers:
    """Starts and stops real `celery worker` processes sharing the test's files."""

    def __init__(self, tmp_path, redis_url, visibility_timeout, **env):
        self.tmp_path = tmp_path
        self.redis_url = redis_url
        self.visibility_timeout = visibility_timeout
        self.extra_env = env
        self.processes = []

    def start(self, name):
        log = open(self.log_path(name), "wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"{name}@%h",
            ],
            cwd=PROJECT,
            env=process_env(self.redis_url, self.visibility_timeout, **self.extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def log_path(self, name):
        return self.tmp_path / f"{name}.log"

    def log(self, name):
        return self.log_path(name).read_text(errors="replace")

    def kill(self, process):
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # in case a test left it stopped
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.kill(process)

    def logs(self):
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in self.tmp_path.glob("*.log"))


def wait_for(condition, timeout, what, logs=lambda: "", interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"Timed out after {timeout}s waiting for {what}.\nLogs:\n{logs()}")


@dataclass
class TaskMessage:
    """A task message as the Redis transport keeps it (queued or taken by a worker)."""

    task: str
    id: str
    args: list

    @classmethod
    def parse(cls, message):
        body = json.loads(base64.b64decode(message["body"]))
        return cls(task=message["headers"]["task"], id=message["headers"]["id"], args=body[0])


def queued_tasks(client, queue="celery"):
    """Messages waiting in a queue, oldest first."""
    return [TaskMessage.parse(json.loads(raw)) for raw in reversed(client.lrange(queue, 0, -1))]


def taken_tasks(client):
    """Messages delivered to a worker and not acknowledged yet (with acks_late: running,
    or reserved and waiting; a killed worker's stay here until their visibility timeout)."""
    # Each entry is [message, exchange, routing key].
    return [TaskMessage.parse(json.loads(raw)[0]) for raw in client.hvals("unacked")]
