"""Settings shared by every environment.

Every value that changes between machines is read from the environment here and only
here; the rest of the code reads ``django.conf.settings``. Defaults are the embedded
mode: SQLite, Celery tasks run in-process, files under the project folder.
"""

import os
from decimal import Decimal
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def folder_broker_options(folder):
    """kombu's filesystem transport: messages are files in ``folder`` shared by the web
    server and the worker on one machine."""
    for name in ("queue", "control"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    queue = str(folder / "queue")
    return {"data_folder_in": queue, "data_folder_out": queue, "control_folder": str(folder / "control")}


# Runtime data (SQLite database, index files, converted model weights) lives here.
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "health_check",
    "catalog",
    "shop",
    "recommender",
]

MIDDLEWARE = [
    # First: every request is logged and timed, the ones refused by the next ones too.
    "config.request_logging.RequestLogMiddleware",
    "config.request_limits.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.cart_summary",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Concurrent requests (checkout, cart updates) wait for the write lock instead of
    # failing at once with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog:product_list"
LOGOUT_REDIRECT_URL = "catalog:product_list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Product photos live in MEDIA_ROOT and the app serves them (catalog/media.py), or with
# MEDIA_BUCKET set in any S3-compatible store through django-storages: image URLs then
# point at the store. Credentials come from boto3's usual AWS_* variables.
MEDIA_BUCKET = os.environ.get("MEDIA_BUCKET", "")
if MEDIA_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "config.storage.MediaStorage",
        "OPTIONS": {
            "bucket_name": MEDIA_BUCKET,
            "endpoint_url": os.environ.get("MEDIA_ENDPOINT_URL") or None,
            "custom_domain": os.environ.get("MEDIA_CUSTOM_DOMAIN") or None,
            "region_name": os.environ.get("MEDIA_REGION") or None,
            # Photos are public: plain URLs; the bucket's policy or MEDIA_ACL=public-read
            # lets shoppers read them.
            "querystring_auth": False,
            "default_acl": os.environ.get("MEDIA_ACL") or None,
            "file_overwrite": True,
            "object_parameters": {"CacheControl": "public, max-age=3600"},
        },
    }

# Uploads: Django refuses request bodies above this size before any view runs.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "config.request_limits.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Catalogue archives uploaded through the admin may be large.
CATALOG_UPLOAD_MAX_BYTES = int(os.environ.get("CATALOG_UPLOAD_MAX_BYTES", 2 * 1024**3))
# Shopper photo uploads (search by photo).
PHOTO_UPLOAD_MAX_BYTES = int(os.environ.get("PHOTO_UPLOAD_MAX_BYTES", 8 * 1024 * 1024))
IMAGE_MAX_PIXELS = int(os.environ.get("IMAGE_MAX_PIXELS", 40_000_000))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "config.api.StorePagination",
    "PAGE_SIZE": 24,
    # Session auth that checks CSRF for visitors too: their session carts are theirs.
    "DEFAULT_AUTHENTICATION_CLASSES": ["config.api.CsrfSessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "photo_search": os.environ.get("PHOTO_SEARCH_RATE", "30/minute"),
        "login": os.environ.get("LOGIN_RATE", "10/minute"),
        "signup": os.environ.get("SIGNUP_RATE", "5/minute"),
    },
    # How many reverse proxies in front of the shop add to X-Forwarded-For: rate limits key
    # on the address they saw. 0 (no proxy): the connection's address, the header ignored.
    "NUM_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Fashion storefront API",
    "DESCRIPTION": "Catalogue, cart, orders and visual search.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from this site's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Catalogue
CATALOG_PAGE_SIZE = 24
# The dataset has no prices: products without a price column get the price of their
# article type, else this default.
CATALOG_DEFAULT_PRICE = Decimal(os.environ.get("CATALOG_DEFAULT_PRICE", "29.99"))
CATALOG_DEFAULT_STOCK = int(os.environ.get("CATALOG_DEFAULT_STOCK", "25"))
# First run of `make run` generates this many demo products.
DEMO_CATALOG_SIZE = int(os.environ.get("DEMO_CATALOG_SIZE", "240"))
CART_MAX_QUANTITY = 99

# Celery: with REDIS_URL set, tasks go to Redis and run in `celery worker` processes.
# Without it (embedded mode) they go through a folder under DATA_DIR to the worker that
# `make run` starts next to the web server, so no request ever embeds or rebuilds.
# CELERY_TASK_ALWAYS_EAGER=1 runs tasks in the calling process instead (scripts, tests).
REDIS_URL = os.environ.get("REDIS_URL", "")
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
# Nothing reads task results; without a result backend a dead Redis cannot stall a send.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
# Redis: a message taken by a worker that dies is handed to another worker after
# visibility_timeout; an unreachable Redis fails a send within the socket timeouts.
REDIS_SOCKET_TIMEOUT = float(os.environ.get("REDIS_SOCKET_TIMEOUT", "1"))
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
        "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
        "socket_timeout": REDIS_SOCKET_TIMEOUT,
        "max_retries": 0,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = folder_broker_options(BROKER_DIR)
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_SOCKET_TIMEOUT
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE

# Visual search
EMBEDDING_MODEL = os.environ.get("EMBEDDING_MODEL", "efficientnet_lite0")
RESNET50_WEIGHTS_PATH = os.environ.get("RESNET50_WEIGHTS_PATH", "")
MODEL_CACHE_DIR = DATA_DIR / "models"
# Threads the model runs a batch on in each process (0: 1 in web processes, every core the
# process may use in workers and commands; see recommender.active_model).
INFERENCE_THREADS = int(os.environ.get("INFERENCE_THREADS", "0"))
INDEX_DIR = Path(os.environ.get("INDEX_DIR", DATA_DIR / "index"))
# Trained model versions (train_recommender) and their training checkpoints; not in git.
MODEL_VERSIONS_DIR = Path(os.environ.get("MODEL_VERSIONS_DIR", INDEX_DIR.parent / "model-versions"))
# Search files (index builds, trained version weights) are published through the
# "search_files" storage, which every web and worker host reads: the folder INDEX_DIR by
# default (one host, or a network file system), or with SEARCH_FILES_BUCKET set any
# S3-compatible store through django-storages (credentials from boto3's AWS_* variables).
# Each host copies the current build into its own INDEX_CACHE_DIR and serves the copy,
# looking for a newly published build at most every INDEX_POINTER_CHECK_SECONDS. Weights
# of versions trained before this (in MODEL_VERSIONS_DIR) are still read from there.
STORAGES["search_files"] = {"BACKEND": "recommender.search_files.LocalSearchFiles"}
SEARCH_FILES_BUCKET = os.environ.get("SEARCH_FILES_BUCKET", "")
if SEARCH_FILES_BUCKET:
    STORAGES["search_files"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": SEARCH_FILES_BUCKET,
            "location": os.environ.get("SEARCH_FILES_PREFIX", ""),
            "endpoint_url": os.environ.get("SEARCH_FILES_ENDPOINT_URL") or None,
            "region_name": os.environ.get("SEARCH_FILES_REGION") or None,
            "default_acl": None,  # private: only the shop's hosts read them
            "file_overwrite": True,  # the pointer is replaced in place
        },
    }
INDEX_CACHE_DIR = Path(os.environ.get("INDEX_CACHE_DIR", DATA_DIR / "index-cache"))
INDEX_POINTER_CHECK_SECONDS = float(os.environ.get("INDEX_POINTER_CHECK_SECONDS", "3"))
# Searches merge vectors stored since the current build; each web thread reads them again
# at most this often (a new product shows among similar items this much later at most).
NEWER_VECTORS_SECONDS = float(os.environ.get("NEWER_VECTORS_SECONDS", "1"))
# With REDIS_URL, rebuilds on every host take turns through a lock in the cache, which
# expires after this long should its holder die (a longer build loses exclusivity).
INDEX_BUILD_LOCK_SECONDS = int(os.environ.get("INDEX_BUILD_LOCK_SECONDS", "1800"))
# The train task's time limit (seconds).
TRAINING_TIME_LIMIT = int(os.environ.get("TRAINING_TIME_LIMIT", 3600))
# Annoy answers photo searches (product pages read exact neighbour lists stored with the
# build). Chosen by bench/bench_index.py and bench/bench_similar.py: recall@5 against exact
# search 0.995 at 44,441 products with 10 trees (50 trees: 0.997 at 3.5x the build time).
ANNOY_N_TREES = int(os.environ.get("ANNOY_N_TREES", "10"))
ANNOY_SEARCH_K = int(os.environ.get("ANNOY_SEARCH_K", "1500"))
# Share of the colour signature in the search vector (the rest is the CNN's shape).
# Chosen by bench/bench_quality.py (P@5 by article type, and by type + colour).
COLOUR_WEIGHT = float(os.environ.get("COLOUR_WEIGHT", "0.065"))
# Photos the model runs at once, and products per embedding task: a task of several
# batches prepares the next batches' photos while the model runs (one batch per task
# left nothing to overlap: 0.72x the bare model's speed with a worker, bench_worker_embed).
EMBED_BATCH_SIZE = int(os.environ.get("EMBED_BATCH_SIZE", "64"))
EMBED_TASK_SIZE = int(os.environ.get("EMBED_TASK_SIZE", "512"))
# A burst of product changes causes one rebuild this many seconds after the first.
INDEX_REBUILD_DELAY = int(os.environ.get("INDEX_REBUILD_DELAY", "30"))
# ... and never sooner after the last build than this many times its duration.
INDEX_REBUILD_SPACING = float(os.environ.get("INDEX_REBUILD_SPACING", "2"))
SIMILAR_PRODUCTS_COUNT = 5
CELERY_BEAT_SCHEDULE = {
    "sweep-embeddings": {"task": "recommender.tasks.sweep", "schedule": 15 * 60},
    "sweep-thumbnails": {"task": "catalog.tasks.sweep_thumbnails", "schedule": 60 * 60},
}

# LOG_FORMAT=json: one JSON object per line (request logs carry their fields as keys).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "asctime,levelname,name,message",
            "style": ",",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Django's cache backs the index rebuild debounce and the rate limits, so it is shared by
# every web and worker process: Redis in services mode, a folder in embedded mode. A Redis
# that is down or slow answers as a cache miss within REDIS_SOCKET_TIMEOUT (see
# config/cache.py) instead of failing the request.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.ForgivingRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": DATA_DIR / "cache",
        }
    }
