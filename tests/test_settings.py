"""Production settings: secrets from the environment, Django's deployment checks clean."""

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    full_env.update({"DJANGO_SETTINGS_MODULE": "config.settings.production", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deployment_checks_are_clean_in_production(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY="a-long-random-production-secret-for-this-test-only-0123456789",
        DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_manage("check", DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_debug_cannot_be_switched_on_in_production(tmp_path):
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print('DEBUG', settings.DEBUG)",
        DJANGO_SECRET_KEY="a-long-random-production-secret-for-this-test-only-0123456789",
        DJANGO_DEBUG="1",
        DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout


def _embedded_settings(tmp_path, **env):
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.CELERY_BROKER_URL, s.CELERY_TASK_ALWAYS_EAGER, s.CACHES['default']['BACKEND'])",
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATA_DIR=str(tmp_path),
        **env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split()


def test_embedded_mode_sends_tasks_to_a_worker_through_a_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("CELERY_TASK_ALWAYS_EAGER", raising=False)
    broker, eager, cache = _embedded_settings(tmp_path)
    assert broker.startswith("filesystem://") and eager == "False"
    assert cache.endswith("FileBasedCache")  # the worker and the web server share it
    assert (tmp_path / "broker" / "queue").is_dir()


def test_tasks_run_in_process_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert _embedded_settings(tmp_path, CELERY_TASK_ALWAYS_EAGER="1")[1] == "True"


def test_with_a_bucket_photos_go_to_the_object_store_and_the_app_serves_none(tmp_path):
    script = (
        "from django.conf import settings; from django.urls import resolve, Resolver404\n"
        "try: resolve('/media/products/1.jpg'); print('served')\n"
        "except Resolver404: print('not-served')\n"
        "print(settings.STORAGES['default']['BACKEND'])"
    )
    secret = "a-long-random-production-secret-for-this-test-only-0123456789"
    local = run_manage("shell", "-c", script, DJANGO_SECRET_KEY=secret, DATA_DIR=str(tmp_path))
    store = run_manage(
        "shell", "-c", script, DJANGO_SECRET_KEY=secret, DATA_DIR=str(tmp_path), MEDIA_BUCKET="shop"
    )
    assert local.stdout.split()[-2:] == ["served", "django.core.files.storage.FileSystemStorage"]
    assert store.stdout.split()[-2:] == ["not-served", "config.storage.MediaStorage"]
