"""One Redis client per process: the real server when REDIS_URL is set, else an in-process fakeredis
server (the embedded default), so Lua scripts and token buckets work the same way in both."""

from __future__ import annotations

import threading

import redis as redis_lib
from django.conf import settings

_lock = threading.Lock()
_client: redis_lib.Redis | None = None
_fake_server = None


def get_redis() -> redis_lib.Redis:
    global _client, _fake_server
    if _client is not None:
        return _client
    with _lock:
        if _client is None:
            if settings.REDIS_URL:
                _client = redis_lib.Redis.from_url(
                    settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
                )
            else:
                import fakeredis

                _fake_server = fakeredis.FakeServer()
                _client = fakeredis.FakeRedis(server=_fake_server)
    return _client
