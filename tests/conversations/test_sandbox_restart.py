"""The sandbox simulator's window records live in Redis (in memory in the embedded default): after a restart
empties them, a reply inside the window still goes, because the simulator rebuilds the record from the
database. And the files a simulated customer sends are real, viewable media."""

from __future__ import annotations

import pytest

from apps.conversations.models import Message
from apps.conversations.services import dispatch
from apps.providers.simulator.rules import PLACEHOLDER_MEDIA
from apps.webhooks.services.inbound import inbound_webhooks_sweep
from tests.conversations.send_support import redis_keys_clear

pytestmark = pytest.mark.django_db


def _simulator_forgets() -> None:
    """What a restart of the embedded default does to the simulator: its Redis state is gone."""
    from apps.core.redis import get_redis

    r = get_redis()
    for key in r.scan_iter("sim:*"):
        r.delete(key)


def _drain_statuses(message: Message, until: set[str]) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        inbound_webhooks_sweep()
        message.refresh_from_db()
        if message.status in until:
            return
        time.sleep(0.1)


def test_reply_inside_the_window_after_the_simulator_forgot_everything(sandbox_api, workspace):
    redis_keys_clear()
    r = sandbox_api.post("/api/v1/sandbox/inbound", {"from": "+16505551234", "text": {"body": "Hi"}}, format="json")
    assert r.status_code == 202
    inbound_webhooks_sweep()
    _simulator_forgets()
    from apps.core import hooks

    hooks.process_started()  # what `manage.py serve` does when it starts
    number = workspace.sandbox.phone_numbers.get()
    r = sandbox_api.post("/api/v1/messages", {"to": "+16505551234", "text": {"body": "Hello again"}}, format="json")
    assert r.status_code == 202, r.content
    assert dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)["sent"] == 1
    message = Message.objects.get(pk=r.json()["id"])
    _drain_statuses(message, {"delivered", "read", "failed"})
    assert message.status in ("delivered", "read"), (message.status, message.upstream_code)
    assert message.upstream_code is None


def test_reply_outside_the_window_still_fails_after_a_restart(sandbox_api, workspace):
    """The rebuilt record is the real one: no inbound in the database means no window, as before."""
    from apps.providers.simulator.inprocess import RedisState

    _simulator_forgets()
    number = workspace.sandbox.phone_numbers.get()
    assert RedisState().get_window(number.meta_phone_number_id, "16505559999") is None


@pytest.mark.parametrize("kind,magic", [("image", b"\xff\xd8\xff"), ("audio", b"OggS"), ("video", b"ftyp"),
                                        ("document", b"%PDF-"), ("sticker", b"RIFF")])
def test_simulated_media_are_real_files(kind, magic):
    mime, data = PLACEHOLDER_MEDIA[kind]
    assert magic in data[:12]
    assert 500 < len(data) < 64 * 1024  # small, but not a stub
    if kind == "image":
        assert mime == "image/jpeg" and b"\xff\xd9" in data[-4:]  # a complete JPEG (EOI marker)
    if kind == "document":
        assert data.rstrip().endswith(b"%%EOF") and b"/Type /Page " in data
