"""Health endpoints for the load balancer.

- Liveness (``/health/live/``): the process answers. No database, cache or Redis call, so
  a slow dependency never gets a healthy process restarted.
- Readiness (``/health/ready/``): this process can serve shoppers. django-health-check runs
  the checks concurrently: the database, Redis as the cache and as the Celery broker (only
  with REDIS_URL), and the search index build (recommender.health). 200 when all pass, 503
  otherwise; Redis probes give up after REDIS_SOCKET_TIMEOUT, as requests do.

Both answer JSON to ``Accept: application/json`` or ``?format=json``.
"""

import datetime
from functools import partial

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from health_check import Cache, Database
from health_check.contrib.redis import Redis
from health_check.views import HealthCheckView
from redis.asyncio import Redis as RedisClient

from recommender.health import SearchIndex


def wants_json(request) -> bool:
    return request.GET.get("format") == "json" or "application/json" in request.headers.get("accept", "")


@never_cache
@require_safe
def live(request):
    """200 whenever the process can answer a request."""
    if wants_json(request):
        return JsonResponse({"status": "ok"})
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


class ReadinessView(HealthCheckView):
    """The checks a web process needs to pass before it takes traffic; 503 when one fails
    (the library answers 500, which reads as a bug rather than "not ready")."""

    def get_checks(self):
        # Settings are read per request: REDIS_URL decides whether Redis is a dependency.
        yield Database()
        if settings.REDIS_URL:
            # A Redis that hangs fails readiness within the timeout instead of holding the
            # probe (the cache's client has the same timeouts, from CACHES).
            seconds = settings.REDIS_SOCKET_TIMEOUT
            yield Cache(timeout=datetime.timedelta(seconds=seconds))
            yield Redis(
                client_factory=partial(
                    RedisClient.from_url,
                    settings.CELERY_BROKER_URL,
                    socket_connect_timeout=seconds,
                    socket_timeout=seconds,
                )
            )
        yield SearchIndex()

    async def get(self, request, *args, **kwargs):
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:
            response.status_code = 503
        return response
