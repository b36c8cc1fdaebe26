"""Which provider serves a send: the in-process simulator for sandbox workspaces, Meta's Graph API (or a
fakemeta server, when META_GRAPH_URL points at one) for live ones. One instance per process."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_instances: dict[str, object] = {}


def whatsapp_provider(*, simulated: bool):
    key = "sandbox" if simulated else "graph"
    inst = _instances.get(key)
    if inst is None:
        with _lock:
            inst = _instances.get(key)
            if inst is None:
                if simulated:
                    from apps.providers.simulator.inprocess import SandboxProvider

                    inst = SandboxProvider()
                else:
                    from apps.providers.meta_cloud.client import GraphClient

                    inst = GraphClient()
                _instances[key] = inst
    return inst


def async_whatsapp_sender():
    inst = _instances.get("async")
    if inst is None:
        with _lock:
            inst = _instances.get("async")
            if inst is None:
                from apps.providers.meta_cloud.client import AsyncGraphSender

                inst = _instances["async"] = AsyncGraphSender()
    return inst


def social_send_client():
    """Meta's Send API (Messenger, Instagram) at META_GRAPH_URL, like the Graph client."""
    inst = _instances.get("social")
    if inst is None:
        with _lock:
            inst = _instances.get("social")
            if inst is None:
                from apps.providers.meta_social.client import SocialSendClient

                inst = _instances["social"] = SocialSendClient()
    return inst


def social_sandbox_sender():
    """The sandbox's Messenger / Instagram: the simulator in process (Reach's policy states the windows)."""
    inst = _instances.get("social_sandbox")
    if inst is None:
        with _lock:
            inst = _instances.get("social_sandbox")
            if inst is None:
                from apps.providers.simulator.social import SocialSimulator

                inst = _instances["social_sandbox"] = SocialSimulator(strict=False)
    return inst


def reset_for_tests() -> None:
    """Forget cached instances (tests that override META_GRAPH_URL call this)."""
    with _lock:
        _instances.clear()
