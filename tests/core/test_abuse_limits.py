"""Abuse limits: the browser sign-in locks a (username, address) out after AXES_FAILURE_LIMIT wrong
passwords (django-axes), failed API-key authentications are limited per client address (the Redis token
bucket of apps/core/runtime/buckets.py), the plans' 10-second bursts follow their minute limits, and
X-RateLimit-Limit reports the per-minute limit it documents."""

from __future__ import annotations

import importlib

import pytest
from django.test import Client, override_settings

from apps.core.models import User
from apps.core.ratelimit import rate_limit_leases_clear
from apps.core.redis import get_redis

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counters():
    get_redis().flushdb()
    rate_limit_leases_clear()
    yield
    rate_limit_leases_clear()


def _login(client, username, password):
    return client.post("/login/", {"username": username, "password": password})


def test_login_locks_out_after_the_failure_limit_even_for_the_right_password(settings):
    User.objects.create_user(username="ann", password="right-horse-battery")
    User.objects.create_user(username="bob", password="bob-horse-battery")
    client = Client(REMOTE_ADDR="198.51.100.7")
    codes = [_login(client, "ann", "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert codes == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form again, then locked
    locked = _login(client, "ann", "right-horse-battery")
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
    assert "paused for 15 minutes" in " ".join(locked.content.decode().split())
    assert "_auth_user_id" not in client.session
    # Only that (username, address) pair: another user from the same address still signs in.
    assert _login(client, "bob", "bob-horse-battery").status_code == 302


def test_a_success_before_the_limit_resets_the_count(settings):
    User.objects.create_user(username="ann", password="right-horse-battery")
    client = Client(REMOTE_ADDR="198.51.100.8")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "ann", "wrong")
    assert _login(client, "ann", "right-horse-battery").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "ann", "wrong")
    assert _login(client, "ann", "right-horse-battery").status_code == 302


@override_settings(API_AUTH_FAILURES_PER_MINUTE=5)
def test_failed_api_key_authentications_are_limited_per_address(workspace, make_key):
    attacker = Client(REMOTE_ADDR="203.0.113.5")
    codes = [attacker.get("/api/v1/contacts", HTTP_AUTHORIZATION=f"Bearer ak_live_guess{i}").status_code
             for i in range(7)]
    assert codes == [401] * 5 + [429] * 2
    limited = attacker.get("/api/v1/contacts", HTTP_AUTHORIZATION="Bearer ak_live_guess9")
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(limited["Retry-After"]) <= 12  # a token back every 60/5 s
    assert limited.json()["error"]["details"] == {"retry_after": int(limited["Retry-After"])}
    # Another address is not affected, and a valid key is never counted as a failure.
    other = Client(REMOTE_ADDR="203.0.113.6")
    assert other.get("/api/v1/contacts", HTTP_AUTHORIZATION="Bearer ak_live_nope").status_code == 401
    good = f"Bearer {make_key(workspace)}"
    honest = Client(REMOTE_ADDR="203.0.113.7")
    assert all(honest.get("/api/v1/contacts", HTTP_AUTHORIZATION=good).status_code == 200 for _ in range(8))


def test_the_burst_is_a_quarter_of_the_minute_limit(monkeypatch):
    import reach.settings as project_settings

    monkeypatch.setenv("RATE_LIMIT_FREE_PER_MINUTE", "400")
    reloaded = importlib.reload(project_settings)
    try:
        assert reloaded.RATE_LIMIT_PLANS["free"] == {"per_minute": 400, "burst_10s": 100}
        monkeypatch.delenv("RATE_LIMIT_FREE_PER_MINUTE")
        reloaded = importlib.reload(project_settings)
        assert reloaded.RATE_LIMIT_PLANS == {
            "free": {"per_minute": 600, "burst_10s": 150},
            "standard": {"per_minute": 6000, "burst_10s": 1500},
            "enterprise": {"per_minute": 60000, "burst_10s": 15000},
        }
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)


@override_settings(RATE_LIMIT_PLANS={"standard": {"per_minute": 50, "burst_10s": 3}})
def test_x_ratelimit_limit_is_the_per_minute_limit_it_documents(live_api):
    from apps.core.schema import RESPONSE_HEADERS

    assert RESPONSE_HEADERS["X-RateLimit-Limit"]["description"] == "Requests per minute for this key."
    seen = []
    for _ in range(3):
        response = live_api.get("/api/v1/contacts")
        seen.append((response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]))
    # Remaining follows the tighter window (3 per 10 s here), the limit stays the minute's.
    assert seen == [("50", "2"), ("50", "1"), ("50", "0")]
    assert live_api.get("/api/v1/contacts")["X-RateLimit-Limit"] == "50"
