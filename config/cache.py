"""A Redis cache that treats an unreachable Redis as an empty cache.

The cache holds only what can be recomputed (rate-limit counters, the index rebuild
marker), so a dead or slow Redis must cost a request at most the socket timeout, never
a 500. Every failure is logged; writes report failure the way a full cache would.
"""

import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# While Redis is down, say so once every this many seconds, not on every request.
WARNING_INTERVAL = 30.0


class ForgivingRedisCache(RedisCache):
    _last_warning = 0.0

    def _forgive(self, operation, default, *args, **kwargs):
        try:
            return getattr(super(), operation)(*args, **kwargs)
        except RedisError as exc:
            now = time.monotonic()
            if now - ForgivingRedisCache._last_warning > WARNING_INTERVAL:
                ForgivingRedisCache._last_warning = now
                logger.warning("Cache unavailable (%s: %s); carrying on without it.", operation, exc)
            return default

    def get(self, key, default=None, version=None):
        return self._forgive("get", default, key, default, version)

    def get_many(self, keys, version=None):
        return self._forgive("get_many", {}, keys, version)

    def has_key(self, key, version=None):
        return self._forgive("has_key", False, key, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._forgive("add", False, key, value, timeout, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._forgive("set", None, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._forgive("set_many", list(data), data, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._forgive("touch", False, key, timeout, version)

    def delete(self, key, version=None):
        return self._forgive("delete", False, key, version)

    def delete_many(self, keys, version=None):
        self._forgive("delete_many", None, keys, version)

    def incr(self, key, delta=1, version=None):
        # A missing key raises ValueError as in every backend; an unreachable Redis too.
        result = self._forgive("incr", None, key, delta, version)
        if result is None:
            raise ValueError(f"Key '{key}' not found (cache unavailable).")
        return result

    def clear(self):
        return self._forgive("clear", False)
