"""End to end over real sockets: our GraphClient/AsyncGraphSender -> fakemeta (apps.providers.simulator),
its signed status webhooks -> /webhooks/meta on a live server -> the receive road; a 130429 storm; a
worker killed mid-batch."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from apps.conversations.models import Message, MessageAttempt
from apps.conversations.services import dispatch
from apps.conversations.services.sending import message_send_internal
from apps.providers import registry
from apps.providers.simulator.testing import start_fakemeta_in_thread
from tests.conversations.send_support import contact, live_number, redis_keys_clear

META_PN, META_WABA, DISPLAY = "106540352242922", "102290129340398", "+15550783881"


@pytest.fixture(autouse=True)
def _clean_buckets():
    redis_keys_clear()


def _fake(settings, **config):
    handle = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, **config)
    handle.register_number(phone_number_id=META_PN, waba_id=META_WABA, display_phone_number=DISPLAY)
    settings.META_GRAPH_URL = handle.base_url
    registry.reset_for_tests()
    return handle


@pytest.fixture
def fake(settings):
    handle = _fake(settings, enforce_window=False, pair_limit_enabled=False)
    yield handle
    handle.stop()
    registry.reset_for_tests()


def _queue_many(workspace, number, n):
    ids = []
    for i in range(n):
        c = contact(workspace, f"+1555100{i:04d}")
        ids.append(message_send_internal(workspace=workspace, phone_number=number, contact=c, message_type="text",
                                         content={"body": f"hello {i}"}, sent_by="api").pk)
    return ids


def _drain_until_done(number, ids, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
        if not Message.objects.filter(pk__in=ids, status__in=["queued", "sending"]).exists():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db
def test_live_send_over_a_real_socket_to_fakemeta(workspace, fake):
    number = live_number(workspace, mps=200)
    ids = _queue_many(workspace, number, 40)
    totals = dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=10)
    assert totals["sent"] == 40
    rows = list(Message.objects.filter(pk__in=ids).values_list("status", "provider_message_id"))
    assert {s for s, _ in rows} == {"sent"}
    wamids = [w for _, w in rows]
    assert len(set(wamids)) == 40 and all(w.startswith("wamid.") for w in wamids)
    assert fake.stats()["sends"] == 40


@pytest.mark.django_db
def test_130429_storm_is_retried_paced_nothing_lost_nothing_doubled(workspace, settings):
    handle = _fake(settings, enforce_window=False, pair_limit_enabled=False, default_mps=10)
    try:
        number = live_number(workspace, mps=100)  # we believe 100 mps, Meta allows 10: a storm of 130429
        ids = _queue_many(workspace, number, 30)
        assert _drain_until_done(number, ids)
        stats = handle.stats()
    finally:
        handle.stop()
        registry.reset_for_tests()
    msgs = list(Message.objects.filter(pk__in=ids))
    assert Counter(m.status for m in msgs) == {"sent": 30}
    assert len({m.provider_message_id for m in msgs}) == 30
    outcomes = Counter(MessageAttempt.objects.filter(message_id__in=ids).values_list("outcome", flat=True))
    assert outcomes["accepted"] == 30 and outcomes["retryable"] > 0
    assert outcomes["accepted"] + outcomes["retryable"] == stats["sends"]  # every call has its attempt row
    throttled = MessageAttempt.objects.filter(message_id__in=ids, outcome="retryable")
    assert set(throttled.values_list("upstream_code", flat=True)) == {130429}
    # paced: each retry waited Retry-After (1 s) after the throttled call
    for m in msgs:
        rows = list(MessageAttempt.objects.filter(message=m).order_by("number"))
        for prev, nxt in zip(rows, rows[1:], strict=False):
            assert (nxt.started_at - prev.finished_at).total_seconds() >= 0.8


@pytest.mark.django_db
def test_worker_killed_mid_batch_every_message_ends_in_one_final_state(workspace, fake):
    number = live_number(workspace, mps=500)
    ids = _queue_many(workspace, number, 30)
    # worker A claims a batch and dies before recording anything (or sending everything)
    dead = dispatch.messages_claim(phone_number_id=number.pk, limit=20)
    assert len(dead.messages) == 20
    # worker B drains what is left; A's rows stay leased
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    assert Message.objects.filter(pk__in=ids, status="sending").count() == 20
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert dispatch.dispatch_sweep()["recovered"] == 0  # the reconciliation window: A may have sent them
    with time_machine.travel(timezone.now() + timedelta(seconds=61 + settings.DISPATCH_RECONCILE_SECONDS)):
        out = dispatch.dispatch_sweep()
        assert out["recovered"] == 20
        assert _drain_until_done(number, ids)
    assert Counter(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"sent": 30}
    assert MessageAttempt.objects.filter(message_id__in=ids, outcome="accepted").count() == 30
    assert fake.stats()["sends"] == 30


@pytest.mark.django_db(transaction=True)
def test_statuses_come_back_through_signed_webhooks_to_read(live_server, settings):
    from apps.core.services import workspace_create

    workspace = workspace_create(name="E2E", slug="e2e")
    handle = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, enforce_window=False,
                                      pair_limit_enabled=False, webhook_url=live_server.url + "/webhooks/meta")
    handle.register_number(phone_number_id=META_PN, waba_id=META_WABA, display_phone_number=DISPLAY)
    settings.META_GRAPH_URL = handle.base_url
    registry.reset_for_tests()
    try:
        number = live_number(workspace, mps=100)
        ids = _queue_many(workspace, number, 5)
        assert dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)["sent"] == 5
        # Deadlines, not pace (statuses are due within ~1 s): slack for a loaded CI machine.
        ok = handle.wait_for(lambda: handle.stats()["pending_webhooks"] == 0, timeout=30)
        assert ok, handle.stats()
        from apps.webhooks.services.inbound import inbound_webhooks_sweep

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            inbound_webhooks_sweep()
            if Message.objects.filter(pk__in=ids, status="read").count() == 5:
                break
            time.sleep(0.1)
    finally:
        handle.stop()
        registry.reset_for_tests()
    msgs = list(Message.objects.filter(pk__in=ids))
    assert [m.status for m in msgs] == ["read"] * 5
    assert all(m.sent_at and m.delivered_at and m.read_at for m in msgs)
