"""Health endpoints: liveness never touches a dependency; readiness checks the database,
Redis (only when configured) and the search index build, and answers 503 quickly when
Redis is down or hangs."""

import http.client
import json
import os
import signal
import time
from pathlib import Path

import pytest
from django.urls import reverse

from recommender import annoy_index
from recommender.refresh import rebuild_index
from tests.factories import EmbeddingFactory, ProductFactory
from tests.servers import gunicorn

ROOT = Path(__file__).resolve().parent.parent
LIVE = "/health/live/"
READY = "/health/ready/"


def ready_report(client, **params):
    response = client.get(READY, {"format": "json", **params})
    return response.status_code, response.json()


def index_detail(report):
    (key,) = [key for key in report if key.startswith("SearchIndex")]
    return key, report[key]


def test_the_urls_are_the_documented_ones():
    assert reverse("health-live") == LIVE
    assert reverse("health-ready") == READY


def test_liveness_answers_without_the_database(client):
    # No django_db mark: any query would raise. A session cookie is not looked up either.
    client.cookies["sessionid"] = "some-session-key"
    text = client.get(LIVE)
    as_json = client.get(LIVE, HTTP_ACCEPT="application/json")

    assert (text.status_code, text.content) == (200, b"ok\n")
    assert as_json.json() == {"status": "ok"}
    assert "no-cache" in text["Cache-Control"]


@pytest.mark.django_db
def test_readiness_with_nothing_indexed_is_ready_and_says_so(client, settings):
    settings.REDIS_URL = ""

    status, report = ready_report(client)

    assert status == 200
    assert report["Database(alias='default')"] == "OK"
    key, value = index_detail(report)
    assert value == "OK"
    assert "no build yet" in key
    assert not any(name.startswith(("Cache", "Redis")) for name in report)  # no Redis configured


@pytest.mark.django_db
def test_readiness_json_by_accept_header_and_html_otherwise(client):
    as_json = client.get(READY, HTTP_ACCEPT="application/json")
    html = client.get(READY, HTTP_ACCEPT="text/html")

    assert as_json["Content-Type"] == "application/json"
    assert "Database(alias='default')" in as_json.json()
    assert html.status_code == 200
    assert b"System status" in html.content


@pytest.fixture
def built_index(db):
    for n in range(3):
        EmbeddingFactory(product=ProductFactory(), cnn=[1.0, 0.1 * n, 0.0])
    return rebuild_index()


def test_readiness_names_the_loaded_build(client, built_index):
    status, report = ready_report(client)

    assert status == 200
    key, value = index_detail(report)
    assert value == "OK"
    assert f"build {built_index.pk}, 3 products" in key


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder, build: (folder / build.file_name).unlink(),
        lambda folder, build: (folder / build.file_name).write_bytes(b"truncated"),
        lambda folder, build: (folder / annoy_index.POINTER_NAME).unlink(),
    ],
    ids=["index file missing", "index file truncated", "pointer missing"],
)
def test_a_recorded_build_whose_files_are_unusable_fails_readiness(client, built_index, damage):
    annoy_index.current_index()  # loaded and memory-mapped, as after a first search
    damage(annoy_index.index_dir(), built_index)

    status, report = ready_report(client)

    assert status == 503
    _, value = index_detail(report)
    assert value.startswith("Unavailable: ")
    assert f"index build {built_index.pk} is recorded but unusable" in value
    assert report["Database(alias='default')"] == "OK"


def test_a_build_of_another_model_only_is_not_a_failure(client, built_index, settings):
    settings.EMBEDDING_MODEL = "resnet50"  # switched model, nothing rebuilt for it yet

    status, report = ready_report(client)

    assert status == 200
    key, _ = index_detail(report)
    assert "no build of resnet50 yet" in key


# --- Redis: a real redis-server of the test's own, stopped or paused mid-test ---


@pytest.fixture
def redis_settings(settings, redis_server):
    """Services mode pointed at the test's redis-server: the cache as the base settings
    configure it for a REDIS_URL, with its short timeouts."""
    url = redis_server.url
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    seconds = settings.REDIS_SOCKET_TIMEOUT
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.ForgivingRedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": seconds, "socket_timeout": seconds},
        }
    }
    return redis_server


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@pytest.mark.django_db
def test_readiness_checks_redis_as_cache_and_broker(client, redis_settings):
    status, report = ready_report(client)

    assert status == 200
    assert report["Cache(alias='default')"] == "OK"
    (broker,) = [key for key in report if key.startswith("Redis(")]
    assert report[broker] == "OK"


@pytest.mark.django_db
def test_redis_stopped_fails_readiness_quickly_and_liveness_stays_up(client, redis_settings):
    assert ready_report(client)[0] == 200
    redis_settings.stop()

    (status, report), seconds = timed(lambda: ready_report(client))
    live, live_seconds = timed(lambda: client.get(LIVE))

    assert status == 503
    assert report["Cache(alias='default')"].startswith(("Unavailable", "Unexpected Result"))
    (broker,) = [key for key in report if key.startswith("Redis(")]
    assert report[broker].startswith("Unavailable: Unable to connect to Redis")
    assert report["Database(alias='default')"] == "OK"
    assert seconds < 2
    assert live.status_code == 200
    assert live_seconds < 0.5


@pytest.mark.django_db
def test_a_hung_redis_fails_readiness_within_a_bounded_time(client, redis_settings, settings):
    assert ready_report(client)[0] == 200
    redis_settings.process.send_signal(signal.SIGSTOP)  # accepts connections, never answers

    (status, report), seconds = timed(lambda: ready_report(client))

    assert status == 503
    (broker,) = [key for key in report if key.startswith("Redis(")]
    assert report[broker] != "OK"
    assert report["Cache(alias='default')"] != "OK"
    assert report["Database(alias='default')"] == "OK"
    # The cache's write and read each wait out the socket timeout (the cache forgives).
    assert seconds < 2 * settings.REDIS_SOCKET_TIMEOUT + 1.5


# --- a production server behind a proxy, as `make serve` runs it ---


@pytest.fixture
def production_server(tmp_path):
    """gunicorn with the production settings, one proxy in front, JSON logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_URL", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="a-long-random-production-secret-for-this-test-only-0123456789",
        DJANGO_ALLOWED_HOSTS="shop.example.com",
        DATA_DIR=str(tmp_path),
        TRUSTED_PROXIES="1",
        LOG_FORMAT="json",
    )
    log = tmp_path / "server.log"
    with gunicorn(env, log, "--workers=1") as base_url:
        port = int(base_url.rsplit(":", 1)[1])

        def get(path, **headers):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", path, headers={"Host": "shop.example.com", **headers})
            response = connection.getresponse()
            response.read()
            connection.close()
            return response

        def log_entries():
            return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]

        yield get, log_entries


def test_a_production_server_answers_probes_over_http_and_trusts_its_proxy(production_server):
    get, log_entries = production_server

    probe = get(LIVE)  # the load balancer, straight to the server, no proxy headers
    page = get("/nowhere/")
    proxied = get(
        "/nowhere/", **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.66, 198.51.100.7"}
    )
    by_address = get(LIVE, Host="10.1.2.3")

    assert probe.status == 200
    assert (page.status, page.getheader("Location")) == (301, "https://shop.example.com/nowhere/")
    assert proxied.status == 404  # HTTPS as the proxy says: no redirect
    assert by_address.status == 400  # a probe must send an allowed Host
    proxied_log = [entry for entry in log_entries() if entry.get("status") == 404]
    assert [(entry["path"], entry["client"]) for entry in proxied_log] == [("/nowhere/", "198.51.100.7")]
    assert proxied_log[0]["request_id"] == proxied.getheader("X-Request-ID")
