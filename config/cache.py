"""A Redis cache that treats an unreachable Redis as an empty cache.

The cache holds only what can be recomputed (rate-limit counters, the index rebuild
marker, facet counts), so a dead or slow Redis must cost a request at most the socket
timeout, never a 500. After a failure the process leaves Redis alone for RETRY_AFTER
seconds, so a hung server costs one timeout per process and period, not one per call.
Writes report failure the way a full cache would.
"""

import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RETRY_AFTER = 5.0


class ForgivingRedisCache(RedisCache):
    _down_until = 0.0

    def _forgive(self, operation, default, *args, **kwargs):
        if time.monotonic() < self._down_until:
            return default
        try:
            return getattr(super(), operation)(*args, **kwargs)
        except RedisError as exc:
            self._down_until = time.monotonic() + RETRY_AFTER
            logger.warning(
                "Cache unavailable (%s: %s); carrying on without it for %ss.", operation, exc, RETRY_AFTER
            )
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
