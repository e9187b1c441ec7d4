"""Test settings: fast password hashing, files in a temporary folder.

Celery worker processes started by the tests use these settings too, with
TEST_DATA_DIR, MEDIA_ROOT, INDEX_DIR and DATABASE_URL pointing at the test's own files.
"""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F401,F403
from .base import DATABASES, REDIS_URL, env_bool, folder_broker_options
from .base import STORAGES as BASE_STORAGES

SECRET_KEY = "test-only-key"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TEST_DATA_DIR = Path(os.environ.get("TEST_DATA_DIR") or tempfile.mkdtemp(prefix="shop-test-"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or TEST_DATA_DIR / "media")
INDEX_DIR = Path(os.environ.get("INDEX_DIR") or TEST_DATA_DIR / "index")
# Tasks run in the test's own process unless a test starts real workers.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
BROKER_DIR = TEST_DATA_DIR / "broker"
if not REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = folder_broker_options(BROKER_DIR)
    # A worker process started by a test shares the folder cache with the test.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        if CELERY_TASK_ALWAYS_EAGER
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": TEST_DATA_DIR / "cache",
        }
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "search_files": BASE_STORAGES["search_files"],  # INDEX_DIR, or SEARCH_FILES_BUCKET's store
}
# This process's copies of index builds; a server a test starts is a host of its own.
INDEX_CACHE_DIR = Path(os.environ.get("INDEX_CACHE_DIR") or TEST_DATA_DIR / "index-cache")
INDEX_POINTER_CHECK_SECONDS = float(os.environ.get("INDEX_POINTER_CHECK_SECONDS", "0"))
NEWER_VECTORS_SECONDS = float(os.environ.get("NEWER_VECTORS_SECONDS", "0"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that worker processes and threads share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(TEST_DATA_DIR / "test.sqlite3")}
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT = TEST_DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
