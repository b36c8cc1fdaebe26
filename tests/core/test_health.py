"""/healthz and /readyz."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_readyz_checks_database_broker_and_channel_layer():
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "broker": "ok", "channel_layer": "ok", "redis": "ok"}
    assert "last_heartbeat_age_seconds" in body["background"]


def test_readyz_is_503_when_a_dependency_is_down(monkeypatch):
    def down():
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("apps.core.views._check_broker", down)
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["broker"] == "unavailable"
    assert body["checks"]["database"] == "ok"


def test_heartbeat_task_stamps_redis_and_readyz_reports_its_age():
    from apps.core.redis import get_redis
    from apps.core.tasks import HEARTBEAT_KEY, heartbeat

    get_redis().delete(HEARTBEAT_KEY)
    assert Client().get("/readyz").json()["background"] == {"last_heartbeat_age_seconds": None}
    heartbeat()
    age = Client().get("/readyz").json()["background"]["last_heartbeat_age_seconds"]
    assert 0 <= age < 5
