"""Embedded mode for a developer's machine: DEBUG on, a local secret key."""

from .base import *  # noqa: F401,F403
from .base import SECRET_KEY, env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = SECRET_KEY or "local-development-key-not-for-production"

# Serve static files straight from the source folders while developing.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
