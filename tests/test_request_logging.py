"""One log line per request: method, path without the query string, status, duration,
the client address the rate limits use, the signed-in user, and a request id echoed in
the response; JSON lines with LOG_FORMAT=json."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LOGGER = "config.request_logging"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def request_logs(caplog):
    caplog.set_level("INFO", logger=LOGGER)

    def records():
        return [record for record in caplog.records if record.name == LOGGER]

    return records


def test_one_line_per_request_with_its_fields_and_no_query_string(client, request_logs):
    response = client.get("/health/live/", {"email": "ada@example.com"})

    (record,) = request_logs()
    assert (record.method, record.path, record.status) == ("GET", "/health/live/", 200)
    assert 0 < record.duration_ms < 1000
    assert record.client == "127.0.0.1"
    assert record.user_id is None
    assert len(record.request_id) == 32
    assert response["X-Request-ID"] == record.request_id
    message = record.getMessage()
    assert message.startswith("GET /health/live/ 200 ")
    assert f"request_id={record.request_id}" in message
    assert "ada@example.com" not in message and "ada%40example.com" not in message and "email=" not in message


def test_a_plain_request_id_from_the_proxy_is_kept_and_anything_else_replaced(client, request_logs):
    kept = client.get("/health/live/", HTTP_X_REQUEST_ID="7f3c9a1e-proxy.42")
    replaced = client.get("/health/live/", HTTP_X_REQUEST_ID="x\nGET /admin/ 200 forged")

    first, second = request_logs()
    assert kept["X-Request-ID"] == first.request_id == "7f3c9a1e-proxy.42"
    assert replaced["X-Request-ID"] == second.request_id
    assert "forged" not in second.request_id and len(second.request_id) == 32


def test_each_request_gets_its_own_id(client, request_logs):
    ids = {client.get("/health/live/")["X-Request-ID"] for _ in range(3)}

    assert len(ids) == 3


@pytest.mark.parametrize(
    "proxies, expected",
    [(0, "10.0.0.5"), (1, "198.51.100.7")],
    ids=["no proxy: the connection", "one proxy: the address it saw"],
)
def test_the_client_address_is_the_one_the_rate_limits_use(client, settings, request_logs, proxies, expected):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}

    client.get("/health/live/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.7")

    (record,) = request_logs()
    assert record.client == expected


@pytest.mark.django_db
def test_the_signed_in_user_is_logged(user_client, user, request_logs):
    user_client.get("/cart/")

    (record,) = request_logs()
    assert record.user_id == user.pk
    assert f"user={user.pk}" in record.getMessage()


@pytest.mark.django_db
def test_logging_never_loads_the_user_itself(user_client, request_logs, django_assert_num_queries):
    with django_assert_num_queries(0):  # a probe with a session cookie stays query-free
        user_client.get("/health/live/")

    (record,) = request_logs()
    assert record.user_id is None


@pytest.mark.django_db
def test_answers_of_the_other_middleware_are_logged_too(client, request_logs):
    client.post("/api/search/image", b"", content_type="image/jpeg", CONTENT_LENGTH=str(10**9))
    client.get("/no%0Asuch/page/")

    too_large, not_found = request_logs()
    assert (too_large.path, too_large.status) == ("/api/search/image", 413)
    assert (not_found.path, not_found.status) == ("/no%0Asuch/page/", 404)
    assert "\n" not in not_found.getMessage()


def test_log_format_json_writes_one_json_object_per_line(tmp_path):
    script = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "from django.test.utils import setup_test_environment\n"
        "setup_test_environment()\n"
        "Client().get('/health/live/?name=Ada', HTTP_X_REQUEST_ID='req-1')\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "LOG_FORMAT": "json",
        "TEST_DATA_DIR": str(tmp_path),
    }
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    (entry,) = [line for line in lines if line["name"] == LOGGER]
    assert entry["levelname"] == "INFO"
    assert {key: entry[key] for key in ("method", "path", "status", "client", "user_id", "request_id")} == {
        "method": "GET",
        "path": "/health/live/",
        "status": 200,
        "client": "127.0.0.1",
        "user_id": None,
        "request_id": "req-1",
    }
    assert isinstance(entry["duration_ms"], float)
    assert "Ada" not in run.stderr
