"""Per-key rate limits: headers, 429 with Retry-After, independence of keys, atomicity under threads."""

from __future__ import annotations

import threading
import time

import pytest
import time_machine
from django.test import override_settings

from apps.core import ratelimit
from apps.core.ratelimit import rate_limit_hit, rate_limit_leases_clear
from apps.core.redis import get_redis

pytestmark = [pytest.mark.urls("tests.core.urls")]

SMALL = {"standard": {"per_minute": 5, "burst_10s": 3}, "free": {"per_minute": 2, "burst_10s": 2},
         "enterprise": {"per_minute": 100, "burst_10s": 100}}


@pytest.fixture(autouse=True)
def _fresh_counters():
    get_redis().flushdb()
    rate_limit_leases_clear()
    yield
    rate_limit_leases_clear()


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
        assert response["X-RateLimit-Limit"] == "5"  # per minute, as documented
        # Remaining and Reset follow the burst window (3 per 10 s), which binds before 5 per minute.
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


MINUTE = 1_800_000_000.0  # a minute (and 10-second window) boundary


def _counted(key_id: str, now: float = MINUTE) -> int:
    return int(get_redis().get(f"rl:{{{key_id}}}:m:{int(now // 60)}") or 0)


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 1000, "burst_10s": 1000}}, RATE_LIMIT_LEASE_UNITS=16)
def test_far_from_the_limit_units_are_leased_and_headers_stay_exact():
    remaining = [rate_limit_hit(key_id="k-lease", plan="standard", now=MINUTE).remaining for _ in range(20)]
    assert remaining == list(range(999, 979, -1))
    assert _counted("k-lease") == 32  # two round trips of 16 units, not twenty of one


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 1000, "burst_10s": 1000}}, RATE_LIMIT_LEASE_UNITS=1)
def test_lease_of_one_is_a_round_trip_per_request():
    for _ in range(5):
        rate_limit_hit(key_id="k-one", plan="standard", now=MINUTE)
    assert _counted("k-one") == 5


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 40, "burst_10s": 1000}}, RATE_LIMIT_LEASE_UNITS=16)
def test_near_the_limit_grants_shrink_to_one_and_the_quota_is_exact():
    results = [rate_limit_hit(key_id="k-near", plan="standard", now=MINUTE + 1) for _ in range(45)]
    assert [r.allowed for r in results] == [True] * 40 + [False] * 5
    assert [r.remaining for r in results[:40]] == list(range(39, -1, -1))
    assert _counted("k-near") == 40
    assert results[-1].retry_after == 59


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 1000, "burst_10s": 1000}}, RATE_LIMIT_LEASE_UNITS=16,
                   RATE_LIMIT_LEASE_SECONDS=1.0)
def test_an_expired_lease_gives_its_unused_units_back():
    assert rate_limit_hit(key_id="k-exp", plan="standard", now=MINUTE).remaining == 999
    assert _counted("k-exp") == 16
    later = rate_limit_hit(key_id="k-exp", plan="standard", now=MINUTE + 2)  # same windows, lease expired
    assert later.remaining == 998
    assert _counted("k-exp") == 2 + 15  # 15 unused units returned, a new lease of 16 taken


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 100, "burst_10s": 1000}}, RATE_LIMIT_LEASE_UNITS=16)
def test_two_processes_never_admit_more_than_the_quota_together():
    # Process A leases 12 units (an eighth of the 100 left, under the 16 asked for) and uses one.
    assert rate_limit_hit(key_id="k-procs", plan="standard", now=MINUTE).allowed
    process_a = dict(ratelimit._leases)
    rate_limit_leases_clear()  # process B knows nothing of A's lease
    admitted_b = sum(rate_limit_hit(key_id="k-procs", plan="standard", now=MINUTE).allowed for _ in range(200))
    rate_limit_leases_clear()
    ratelimit._leases.update(process_a)  # back in A: its leased units are still its own
    admitted_a = sum(rate_limit_hit(key_id="k-procs", plan="standard", now=MINUTE).allowed for _ in range(200))
    assert admitted_b == 88 and admitted_a == 11
    assert 1 + admitted_a + admitted_b == 100


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 1000, "burst_10s": 1000}}, RATE_LIMIT_LEASE_UNITS=16)
def test_a_new_window_starts_a_new_lease():
    rate_limit_hit(key_id="k-win", plan="standard", now=MINUTE)
    fresh = rate_limit_hit(key_id="k-win", plan="standard", now=MINUTE + 60)
    assert fresh.remaining == 999 and fresh.reset_at == int(MINUTE) + 120
    assert _counted("k-win", MINUTE + 60) == 16
