"""Real server processes a test starts on a free port of 127.0.0.1: redis-server (to stop
or freeze mid-test) and gunicorn (the production web server)."""

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def free_port():
    """A TCP port on loopback that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own, keeping nothing on disk."""

    def __init__(self, folder):
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.port, self.folder, self.process = free_port(), folder, None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while self._cli("ping") != "PONG":
            assert time.monotonic() < deadline and self.process.poll() is None, "redis-server did not start"
            time.sleep(0.05)

    def stop(self):
        self.process.send_signal(signal.SIGCONT)  # a frozen server cannot die otherwise
        self.process.kill()
        self.process.wait(timeout=10)

    @contextmanager
    def frozen(self):
        """Connections are accepted by the kernel but never answered."""
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    def queued_messages(self):
        return int(self._cli("llen", "celery"))

    def _cli(self, *command):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *command], capture_output=True, text=True)
        return out.stdout.strip()


class Gunicorn:
    """config.wsgi served with ``env`` (settings module and all) and gunicorn ``options``."""

    def __init__(self, env, log_path, *options, timeout=60):
        self.env, self.log_path, self.options, self.timeout = env, Path(log_path), options, timeout
        self.process = self.url = None

    def start(self):
        """Returns once the server answers any HTTP request."""
        port = free_port()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "config.wsgi", f"--bind=127.0.0.1:{port}", *self.options],
                cwd=PROJECT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(self.url, self.process, self.log_path, self.timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # quick shutdown: the test is over
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def gunicorn(env, log_path, *options, timeout=60):
    """A running :class:`Gunicorn`; yields its base URL."""
    server = Gunicorn(env, log_path, *options, timeout=timeout).start()
    try:
        yield server.url
    finally:
        server.stop()


def _wait_until_serving(base_url, process, log_path, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {Path(log_path).read_text(errors='replace')[-3000:]}")
        try:
            urllib.request.urlopen(base_url + "/health/live/", timeout=5).close()
            return
        except urllib.error.HTTPError:
            return  # answering, if not to this host or path
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout} s: {Path(log_path).read_text()[-3000:]}")
