"""Which provider serves a send: the in-process simulator for sandbox workspaces, Meta's Graph API (or a
fakemeta server, when META_GRAPH_URL points at one) for live ones. One instance per process."""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_instances: dict[str, object] = {}


def _one(key: str, make: Callable[[], object]):
    """The process's one instance under `key`, made on first use (double-checked under the lock)."""
    inst = _instances.get(key)
    if inst is None:
        with _lock:
            inst = _instances.get(key)
            if inst is None:
                inst = _instances[key] = make()
    return inst


def _sandbox_provider():
    from apps.providers.simulator.inprocess import SandboxProvider

    return SandboxProvider()


def _graph_client():
    from apps.providers.meta_cloud.client import GraphClient

    return GraphClient()


def _async_graph_sender():
    from apps.providers.meta_cloud.client import AsyncGraphSender

    return AsyncGraphSender()


def _social_send_client():
    from apps.providers.meta_social.client import SocialSendClient

    return SocialSendClient()


def _social_simulator():
    from apps.providers.simulator.social import SocialSimulator

    return SocialSimulator(strict=False)


def whatsapp_provider(*, simulated: bool):
    return _one("sandbox", _sandbox_provider) if simulated else _one("graph", _graph_client)


def async_whatsapp_sender():
    return _one("async", _async_graph_sender)


def social_send_client():
    """Meta's Send API (Messenger, Instagram) at META_GRAPH_URL, like the Graph client."""
    return _one("social", _social_send_client)


def social_sandbox_sender():
    """The sandbox's Messenger / Instagram: the simulator in process (Reach's policy states the windows)."""
    return _one("social_sandbox", _social_simulator)


def reset_for_tests() -> None:
    """Forget cached instances (tests that override META_GRAPH_URL call this)."""
    with _lock:
        _instances.clear()
