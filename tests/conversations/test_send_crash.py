"""No double send after a crash: a real worker process SIGKILLed between Meta's answer and recording it.
Every send carries our id in `biz_opaque_callback_data`; fakemeta echoes it on its signed status webhooks
(like Meta) to a live server; the receive road settles the unrecorded sends from them, so the sweeper never
sends them again. Without a report, a lost claim waits the reconciliation window before any retry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from apps.conversations.models import Message, MessageAttempt
from apps.conversations.services import dispatch
from apps.conversations.services.receiving import ProcessLater, message_statuses_apply
from apps.providers import registry
from apps.providers.meta_cloud.webhooks import StatusUpdate
from apps.providers.simulator.testing import start_fakemeta_in_thread
from tests.conversations.send_support import live_number, redis_keys_clear
from tests.conversations.test_send_e2e import DISPLAY, META_PN, META_WABA, _queue_many
from tests.core.test_serve import _database_url

ROOT = Path(__file__).resolve().parents[2]

# The worker: a real process that drains the number and is SIGKILLed right after Meta's answers are back,
# before outcomes_record writes anything (the fault is injected in this script, not in the app).
WORKER = """
import os, signal, sys
import django
django.setup()
from apps.conversations.services.dispatch import drain

def die(**kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

drain.outcomes_record = die
drain.dispatch_drain(phone_number_id=sys.argv[1], budget_seconds=10)
"""


@pytest.fixture(autouse=True)
def _clean_buckets():
    redis_keys_clear()


@pytest.fixture
def fake(live_server, settings):
    """fakemeta over HTTP, posting its signed status webhooks to the live server (like Meta)."""
    handle = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, enforce_window=False,
                                      pair_limit_enabled=False, webhook_url=live_server.url + "/webhooks/meta")
    handle.register_number(phone_number_id=META_PN, waba_id=META_WABA, display_phone_number=DISPLAY)
    settings.META_GRAPH_URL = handle.base_url
    registry.reset_for_tests()
    yield handle
    handle.stop()
    registry.reset_for_tests()


def _settle(number, ids: list[str]) -> None:
    """Run the receive road, the sweeper and the drains until every message is read (bounded)."""
    from apps.webhooks.services.inbound import inbound_webhooks_sweep

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        inbound_webhooks_sweep()
        dispatch.dispatch_sweep()
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=1)
        if Message.objects.filter(pk__in=ids, status="read").count() == len(ids):
            return
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_worker_killed_between_answer_and_record_sends_each_message_once(fake, settings):
    from apps.core.services import workspace_create

    settings.INBOUND_STATUS_ORPHAN_RETRY_SECONDS = 0.2
    workspace = workspace_create(name="Crash", slug="crash")
    number = live_number(workspace, mps=100)
    ids = _queue_many(workspace, number, 5)
    env = {**os.environ, "DATABASE_URL": _database_url(), "META_GRAPH_URL": fake.base_url,
           "DISPATCH_LEASE_SECONDS": "1", "DJANGO_SETTINGS_MODULE": "tests.settings"}
    worker = subprocess.run([sys.executable, "-c", WORKER, number.pk], cwd=ROOT, env=env, timeout=120,
                            capture_output=True)
    assert worker.returncode == -signal.SIGKILL, worker.stderr.decode()[-3000:]
    assert fake.stats()["sends"] == 5
    # The dead worker's claims: sent, unrecorded.
    assert set(Message.objects.filter(pk__in=ids).values_list("status", "provider_message_id")) == {("sending", None)}
    assert fake.wait_for(lambda: fake.stats()["pending_webhooks"] == 0, timeout=30), fake.stats()
    statuses = fake.delivered_statuses()
    assert {s["biz_opaque_callback_data"] for s in statuses} == set(ids)  # our ids, echoed
    _settle(number, ids)  # past the lease, the sweeper and drains run while the webhooks are processed
    assert fake.stats()["sends"] == 5, "a message reached Meta twice"
    wamids = {s["id"]: s["biz_opaque_callback_data"] for s in statuses}
    rows = list(Message.objects.filter(pk__in=ids).values_list("pk", "status", "provider_message_id", "attempts",
                                                              "claim_token"))
    assert sorted(r[1] for r in rows) == ["read"] * 5
    assert {r[2]: r[0] for r in rows} == wamids  # each message carries the wamid Meta reported for it
    assert {(r[3], r[4]) for r in rows} == {(1, "")}
    assert MessageAttempt.objects.filter(message_id__in=ids, outcome="accepted").count() == 5


def _status(*, wamid: str, callback: str, status: str = "sent") -> StatusUpdate:
    return StatusUpdate(waba_id=META_WABA, phone_number_id=META_PN, wamid=wamid, status=status,
                        timestamp=datetime.now(UTC), recipient_id="15551000000", recipient_user_id=None,
                        pricing=None, errors=[], biz_opaque_callback_data=callback)


@pytest.mark.django_db
def test_a_live_claim_records_its_own_answer_and_an_unreported_one_waits_the_window(workspace, settings):
    number = live_number(workspace, mps=100)
    ids = _queue_many(workspace, number, 2)
    claim = dispatch.messages_claim(phone_number_id=number.pk, limit=2)
    assert len(claim.messages) == 2
    # A status for a claim still held by a live worker waits (that worker records its own answer).
    with pytest.raises(ProcessLater):
        message_statuses_apply(updates=[_status(wamid="wamid.X1", callback=ids[0])],
                               received_at=timezone.now())
    assert Message.objects.get(pk=ids[0]).provider_message_id is None
    lease = settings.DISPATCH_LEASE_SECONDS
    # The worker dies. Past the lease, within the window: no retry; a report settles its message.
    with time_machine.travel(timezone.now() + timedelta(seconds=lease + 1)):
        assert dispatch.leases_recover() == 0
        message_statuses_apply(updates=[_status(wamid="wamid.X1", callback=ids[0], status="delivered")],
                               received_at=timezone.now())
    m = Message.objects.get(pk=ids[0])
    assert (m.status, m.provider_message_id, m.attempts, m.claim_token) == ("delivered", "wamid.X1", 1, "")
    # The other one was never reported: only after the whole window does it go back to the queue, once.
    with time_machine.travel(timezone.now() + timedelta(seconds=lease + settings.DISPATCH_RECONCILE_SECONDS - 5)):
        assert dispatch.leases_recover() == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=lease + settings.DISPATCH_RECONCILE_SECONDS + 1)):
        assert dispatch.leases_recover() == 1
        assert dispatch.leases_recover() == 0
    assert Message.objects.get(pk=ids[1]).status == "queued"
    assert Message.objects.get(pk=ids[0]).status == "delivered"


def test_every_send_payload_carries_the_message_id():
    from types import SimpleNamespace

    from apps.conversations.services.dispatch.prepare import _payload

    message = Message(id="msg_abc", type="text", to_phone="+15551230000", content={"body": "hi"})
    body = _payload(message, SimpleNamespace())
    assert body["biz_opaque_callback_data"] == "msg_abc"
    assert body["text"]["body"] == "hi"


@pytest.mark.django_db(transaction=True)
def test_a_send_whose_answer_is_lost_is_settled_by_its_report_and_never_sent_again(fake):
    """Meta takes the send, then the connection is cut before its answer (fakemeta's `lose_answers` fault):
    the real client cannot know, so the message waits for Meta's report instead of being retried."""
    from apps.core.services import workspace_create

    workspace = workspace_create(name="Lost answer", slug="lost-answer")
    number = live_number(workspace, mps=100)
    ids = _queue_many(workspace, number, 3)
    fake.call(setattr, fake.server, "lose_answers", 2)
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    assert fake.stats()["sends"] == 3
    rows = list(Message.objects.filter(pk__in=ids).values_list("status", "provider_message_id", "error_code",
                                                              "claimed_until"))
    unknown = [r for r in rows if r[0] == "sending"]
    assert len(unknown) == 2, rows  # outcome unknown: still `sending`, no wamid, the claim lapsed
    assert all(r[1] is None and r[2] == "UPSTREAM_UNAVAILABLE" and r[3] <= timezone.now() for r in unknown)
    assert MessageAttempt.objects.filter(message_id__in=ids).count() == 1  # only the answered send
    _settle(number, ids)
    assert fake.stats()["sends"] == 3, "a message whose answer was lost reached Meta twice"
    wamids = {s["id"]: s["biz_opaque_callback_data"] for s in fake.delivered_statuses()}
    rows = list(Message.objects.filter(pk__in=ids).values_list("pk", "status", "provider_message_id", "attempts",
                                                              "error_code"))
    assert {(r[1], r[3], r[4]) for r in rows} == {("read", 1, "")}
    assert {r[2]: r[0] for r in rows} == wamids
    assert MessageAttempt.objects.filter(message_id__in=ids, outcome="accepted").count() == 3


def test_only_a_failed_connect_proves_a_send_never_left():
    """The client's split: refused/unreachable/connect-timeout -> never sent (retry at once); anything after
    the request left -> maybe sent (wait for Meta's report)."""
    import requests
    from urllib3.exceptions import NewConnectionError

    from apps.providers.meta_cloud.client import _never_sent

    refused = requests.ConnectionError(Exception())
    refused.args = (type("MaxRetryError", (), {"reason": NewConnectionError(None, "refused")})(),)
    assert _never_sent(refused)
    assert _never_sent(requests.ConnectTimeout())
    assert not _never_sent(requests.ReadTimeout())
    assert not _never_sent(requests.ConnectionError("Connection aborted: RemoteDisconnected"))


@pytest.mark.django_db
def test_a_report_still_in_the_receive_backlog_holds_the_resend(workspace, settings):
    """Workers down while the web kept storing webhooks, or a status row held by a dead worker's claim: the
    report may be stored and not yet applied. The claim goes back to the queue only once every webhook
    received up to the end of its window has been applied; a poison row does not hold it forever."""
    from apps.webhooks.models import InboundWebhook

    number = live_number(workspace, mps=100)
    ids = _queue_many(workspace, number, 1)
    assert len(dispatch.messages_claim(phone_number_id=number.pk, limit=1).messages) == 1
    window = settings.DISPATCH_LEASE_SECONDS + settings.DISPATCH_RECONCILE_SECONDS
    now = timezone.now()
    row = InboundWebhook.objects.create(dedupe_key="backlog-1", body=b"{}", available_at=now)
    poison = InboundWebhook.objects.create(dedupe_key="poison-1", body=b"{}", available_at=now, attempts=3)
    InboundWebhook.objects.filter(pk__in=[row.pk, poison.pk]).update(received_at=now + timedelta(seconds=5))
    with time_machine.travel(now + timedelta(seconds=window + 30)):
        assert dispatch.leases_recover() == 0  # a report may sit in `row`
        InboundWebhook.objects.filter(pk=row.pk).update(processed_at=timezone.now())
        assert dispatch.leases_recover() == 1  # applied, and nothing settled it: the send goes back once
    assert Message.objects.get(pk=ids[0]).status == "queued"
