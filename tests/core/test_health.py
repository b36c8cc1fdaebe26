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


_LAYERS = {
    "pubsub": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"prefix": "asgi:readyz-test:"}},
    "lists": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"prefix": "asgi-readyz-test"}},
}


@pytest.mark.parametrize("kind", sorted(_LAYERS))
def test_the_channel_layer_probe_round_trips_and_lets_its_channel_go(settings, kind):
    """Under Daphne the check runs in a worker thread and hops back into the server's one event loop, where
    the layer lives for good: a probe every few seconds must not leave a subscription behind each time."""
    import asyncio

    from asgiref.sync import sync_to_async
    from channels.layers import channel_layers

    from apps.core.redis import get_redis
    from apps.core.views import _check_channel_layer

    if not settings.REDIS_URL:
        pytest.skip("the Redis channel layers need REDIS_URL")
    settings.CHANNEL_LAYERS = {"default": {**_LAYERS[kind], "CONFIG": {**_LAYERS[kind]["CONFIG"],
                                                                      "hosts": [settings.REDIS_URL]}}}
    channel_layers.backends.clear()
    redis = get_redis()

    async def probes() -> list[int]:
        answers = [await sync_to_async(_check_channel_layer)() for _ in range(3)]
        assert answers == ["ok"] * 3
        return len(redis.pubsub_channels("asgi:readyz-test:*"))

    try:
        assert asyncio.run(probes()) == 0
    finally:
        channel_layers.backends.clear()
