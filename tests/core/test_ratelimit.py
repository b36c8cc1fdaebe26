"""Per-key rate limits: headers, 429 with Retry-After, independence of keys, atomicity under threads."""

from __future__ import annotations

import threading
import time

import pytest
import time_machine
from django.test import override_settings

from apps.core.ratelimit import rate_limit_hit
from apps.core.redis import get_redis

pytestmark = [pytest.mark.urls("tests.core.urls")]

SMALL = {"standard": {"per_minute": 5, "burst_10s": 3}, "free": {"per_minute": 2, "burst_10s": 2},
         "enterprise": {"per_minute": 100, "burst_10s": 100}}


@pytest.fixture(autouse=True)
def _fresh_counters():
    get_redis().flushdb()
    yield


@pytest.fixture
def fresh_burst_window():
    """Counters are per aligned window: start the test 0.5 s into a fresh minute (so a fresh 10-s window
    too) with the clock still running, so even a slow, loaded machine has 9.5 s before its requests
    could straddle a window edge (sleeping until a boundary only left 1.5 s)."""
    now = time.time()
    with time_machine.travel((now // 60 + 1) * 60 + 0.5, tick=True):
        yield


@pytest.mark.django_db
@override_settings(RATE_LIMIT_PLANS=SMALL)
def test_headers_decrease_then_429_with_retry_after(live_api, fresh_burst_window):
    remaining = []
    for _ in range(3):
        response = live_api.get("/api/v1/_test/echo")
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"  # the burst window (3 per 10 s) binds before 5 per minute
        assert time.time() < int(response["X-RateLimit-Reset"]) <= time.time() + 10
        assert response["RateLimit-Policy"] == '"minute";q=5;w=60, "burst";q=3;w=10'
        assert response["RateLimit"].startswith('"minute";r=')
        remaining.append(int(response["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    limited = live_api.get("/api/v1/_test/echo")
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["code"] == "RATE_LIMITED"
    assert error["request_id"] == limited["X-Request-Id"]
    assert 1 <= int(limited["Retry-After"]) <= 10
    assert error["details"] == {"retry_after": int(limited["Retry-After"])}
    assert limited["X-RateLimit-Remaining"] == "0"


@pytest.mark.django_db
@override_settings(RATE_LIMIT_PLANS=SMALL)
def test_429_does_not_run_the_view_or_write(live_api, fresh_burst_window):
    from apps.core.models import AuditLog
    from tests.core import urls

    urls.EXECUTIONS.clear()
    for _ in range(3):
        assert live_api.post("/api/v1/_test/echo", {"name": "a"}, format="json").status_code == 201
    before = AuditLog.objects.count()
    response = live_api.post("/api/v1/_test/echo", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 429
    assert urls.EXECUTIONS == ["a", "a", "a"]
    assert AuditLog.objects.count() == before


@pytest.mark.django_db
@override_settings(RATE_LIMIT_PLANS=SMALL)
def test_two_keys_are_independent(workspace, api_client_for, fresh_burst_window):
    first, second = api_client_for(workspace), api_client_for(workspace)
    for _ in range(3):
        assert first.get("/api/v1/_test/echo").status_code == 200
    assert first.get("/api/v1/_test/echo").status_code == 429
    response = second.get("/api/v1/_test/echo")
    assert response.status_code == 200
    assert response["X-RateLimit-Remaining"] == "2"


@pytest.mark.django_db
@override_settings(RATE_LIMIT_PLANS=SMALL)
def test_limit_follows_the_workspace_plan(workspace, live_api, fresh_burst_window):
    workspace.plan = "enterprise"
    workspace.save(update_fields=["plan"])
    response = live_api.get("/api/v1/_test/echo")
    assert response["RateLimit-Policy"] == '"minute";q=100;w=60, "burst";q=100;w=10'
    assert response["X-RateLimit-Limit"] == "100"


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 1000, "burst_10s": 1000}})
def test_minute_window_blocks_after_quota_and_reports_reset():
    now = 1_800_000_000.0  # aligned to a minute: 1_800_000_000 % 60 == 0 → reset at +60
    settings_plans = {"standard": {"per_minute": 2, "burst_10s": 10}}
    with override_settings(RATE_LIMIT_PLANS=settings_plans):
        assert rate_limit_hit(key_id="k-min", plan="standard", now=now).allowed
        assert rate_limit_hit(key_id="k-min", plan="standard", now=now + 1).allowed
        denied = rate_limit_hit(key_id="k-min", plan="standard", now=now + 15)
        assert not denied.allowed
        assert denied.retry_after == 45
        assert denied.reset_at == int(now) + 60
        assert rate_limit_hit(key_id="k-min", plan="standard", now=now + 60).allowed


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 50, "burst_10s": 1000}})
def test_concurrent_hits_never_exceed_the_quota():
    now = time.time()
    allowed = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker():
        barrier.wait()
        for _ in range(10):
            result = rate_limit_hit(key_id="k-race", plan="standard", now=now)
            with lock:
                allowed.append(result.allowed)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 160
    assert allowed.count(True) == 50


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 4, "burst_10s": 10}})
def test_headers_describe_the_minute_window_when_it_binds():
    now = 1_800_000_000.0
    rate_limit_hit(key_id="k-hdr", plan="standard", now=now)
    headers = rate_limit_hit(key_id="k-hdr", plan="standard", now=now + 1).headers()
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("4", "2")
    assert headers["X-RateLimit-Reset"] == str(int(now) + 60)
    assert "Retry-After" not in headers
