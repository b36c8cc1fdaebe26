"""The web process applies the webhooks it stored (apps/webhooks/applier.py) through the worker's own claim
and lease: each row is applied once whoever sees it, and what the web process never applied (it died, it
was behind, its claim failed) is still applied by the worker or the sweeper."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.conversations.models import Message
from apps.core.models import Event
from apps.core.services import workspace_create
from apps.providers.meta_cloud.signatures import sign_body
from apps.webhooks import applier as applier_module
from apps.webhooks.applier import InboundApplier, apply_batch
from apps.webhooks.asgi_inbound import MetaWebhookFastPath
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.webhooks.inbound_support import body_of, connect_number, text_payload


@pytest.fixture
def number(workspace):
    return connect_number(workspace)


@pytest.fixture
def published(monkeypatch):
    """Drain tasks the worker was rung for (the broker's publish, recorded instead of sent)."""
    from apps.webhooks.tasks.inbound import inbound_webhooks_drain_task

    calls: list[tuple] = []
    monkeypatch.setattr(inbound_webhooks_drain_task, "delay", lambda *slot: calls.append(slot))
    inbound._kick_release()
    yield calls
    inbound._kick_release()


def _store(wamid: str, *, taken: list[str] | None = None, **payload) -> str:
    """Store as the fast path does, handing the row (on commit) to an applier that only records it."""
    def hand_over(webhook_id: str) -> bool:
        taken.append(webhook_id)
        return True

    return inbound.inbound_webhook_store(body=body_of(text_payload(wamid=wamid, **payload)),
                                         hand_over=hand_over if taken is not None else None)


def _applied_once(wamid: str) -> None:
    assert Message.objects.filter(provider_message_id=wamid).count() == 1
    assert Event.objects.filter(type="message.inbound", data__provider_message_id=wamid).count() == 1


@pytest.mark.django_db
def test_a_row_the_web_process_takes_rings_no_worker_and_is_applied_there(number, published,
                                                                          django_capture_on_commit_callbacks):
    taken: list[str] = []
    with django_capture_on_commit_callbacks(execute=True):
        webhook_id = _store("wamid.WEB1", taken=taken)
    assert taken == [webhook_id]
    assert published == []  # no hop to a worker
    assert apply_batch(taken) == 1
    row = InboundWebhook.objects.get(pk=webhook_id)
    assert row.processed_at is not None and row.claimed_until is None and row.attempts == 1
    _applied_once("wamid.WEB1")
    # The worker and the sweeper see it too, later: nothing left to do.
    assert inbound.inbound_webhooks_drain() == 0
    assert inbound.inbound_webhooks_sweep() == 0
    assert apply_batch(taken) == 0
    _applied_once("wamid.WEB1")
    assert InboundWebhook.objects.get(pk=webhook_id).attempts == 1


@pytest.mark.django_db
def test_a_row_the_worker_claimed_first_is_skipped_by_the_web_process(number, published):
    first, second = _store("wamid.RACE1"), _store("wamid.RACE2")
    taken = [first, second]
    # The sweeper got there between the store and the web process's claim.
    assert inbound.inbound_webhooks_claim_due(limit=1) == [first]
    assert apply_batch(taken) == 1  # only the row nobody held
    assert inbound.inbound_webhooks_process_claimed(webhook_ids=[first]) == 1
    assert inbound.inbound_webhooks_sweep() == 0
    _applied_once("wamid.RACE1")
    _applied_once("wamid.RACE2")
    assert InboundWebhook.objects.filter(pk__in=[first, second], processed_at__isnull=False).count() == 2


@pytest.mark.django_db
def test_a_row_the_web_process_never_applied_is_applied_by_the_sweeper(number, published,
                                                                      django_capture_on_commit_callbacks):
    """The process died after the 200: the row was handed over (no worker rung) but never claimed."""
    taken: list[str] = []
    with django_capture_on_commit_callbacks(execute=True):
        webhook_id = _store("wamid.CRASH1", taken=taken)
    assert (taken, published) == ([webhook_id], [])
    assert Message.objects.count() == 0
    assert inbound.inbound_webhooks_sweep() == 1
    assert InboundWebhook.objects.get(pk=webhook_id).processed_at is not None
    _applied_once("wamid.CRASH1")


@pytest.mark.django_db
def test_a_row_claimed_by_a_web_process_that_died_is_applied_after_its_lease(number, published, settings):
    """The process died between its claim and its commit: the row waits for the lease, like a worker's."""
    webhook_id = _store("wamid.CRASH2")
    taken = [webhook_id]
    assert [row.pk for row in inbound._claim_due_rows(limit=1, ids=taken)] == [webhook_id]  # …and then died
    assert inbound.inbound_webhooks_sweep() == 0
    assert apply_batch(taken) == 0  # a restarted web process does not take it early either
    InboundWebhook.objects.filter(pk=webhook_id).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert inbound.inbound_webhooks_sweep() == 1
    assert InboundWebhook.objects.get(pk=webhook_id).attempts == 2
    _applied_once("wamid.CRASH2")


@pytest.mark.django_db
def test_a_failed_apply_in_the_web_process_rings_the_worker(number, published, monkeypatch):
    webhook_id = _store("wamid.FAIL1")
    taken = [webhook_id]

    def database_gone(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(inbound, "inbound_webhooks_apply_stored", database_gone)
    assert apply_batch(taken) is None
    assert published == [()]
    monkeypatch.undo()
    assert inbound.inbound_webhooks_drain() == 1
    assert InboundWebhook.objects.get(pk=webhook_id).processed_at is not None
    _applied_once("wamid.FAIL1")


@pytest.mark.django_db
def test_turned_off_or_behind_the_worker_is_rung_as_before(number, published, settings,
                                                           django_capture_on_commit_callbacks):
    idle = InboundApplier()
    settings.INBOUND_APPLY_IN_WEB = False
    with django_capture_on_commit_callbacks(execute=True):
        inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.OFF")), hand_over=idle.offer)
    assert published == [()]
    inbound._kick_release()
    settings.INBOUND_APPLY_IN_WEB, settings.INBOUND_APPLY_IN_WEB_MAX_PENDING = True, 0
    with django_capture_on_commit_callbacks(execute=True):
        inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.BEHIND")), hand_over=idle.offer)
    assert published == [(), ()]
    assert idle._thread is None  # it never started
    assert inbound.inbound_webhooks_drain() == 2


# --- on real PostgreSQL, with threads: the applier's own thread, and a worker racing it ---------------------------

pg = pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent claims need a real server")


@pg
@pytest.mark.django_db(transaction=True)
def test_the_web_process_and_a_drainer_racing_for_the_same_rows_apply_each_once(published):
    workspace = workspace_create(name="Acme", slug="acme")
    connect_number(workspace)
    taken: list[str] = []
    ids = [_store(f"wamid.RACE.{i}", taken=taken, wa_id=f"1650555{i % 7:04d}", body=f"race {i}")
           for i in range(60)]
    start = threading.Barrier(3)
    done: list[int] = []
    errors: list[BaseException] = []

    def run(fn) -> None:
        try:
            start.wait(10)
            done.append(fn())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(lambda: sum(apply_batch(ids[k:k + 10])
                                                              for k in range(0, len(ids), 10)),)),
               threading.Thread(target=run, args=(lambda: inbound.inbound_webhooks_drain(),)),
               threading.Thread(target=run, args=(lambda: inbound.inbound_webhooks_sweep(limit=20),))]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    assert not errors, errors
    assert sum(done) == 60  # every row processed by exactly one of them
    assert InboundWebhook.objects.filter(pk__in=ids, processed_at__isnull=True).count() == 0
    assert Message.objects.filter(provider_message_id__startswith="wamid.RACE.").count() == 60
    assert Event.objects.filter(type="message.inbound").count() == 60
    assert not InboundWebhook.objects.filter(pk__in=ids, attempts__gt=1).exists()


@pg
@pytest.mark.django_db(transaction=True)
def test_a_webhook_posted_to_the_fast_path_is_applied_by_the_web_process(settings, published):
    """End to end through the ASGI fast path and the module's applier thread, no worker at all."""
    workspace = workspace_create(name="Acme", slug="acme")
    connect_number(workspace)
    settings.INBOUND_APPLY_IN_WEB = True
    app = MetaWebhookFastPath(None, threads=2)
    body = body_of(text_payload(wamid="wamid.ASGIWEB"))

    async def post() -> int:
        sent = []
        messages = [{"type": "http.request", "body": body}]

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message)

        await app({"type": "http", "method": "POST", "path": "/webhooks/meta", "headers": [
            (b"x-hub-signature-256", sign_body(body, settings.META_APP_SECRET).encode())]}, receive, send)
        return sent[0]["status"]

    assert asyncio.run(post()) == 200
    row = InboundWebhook.objects.get()
    deadline = timezone.now() + timedelta(seconds=30)  # a bound for a slow box, not a speed assertion
    while row.processed_at is None and timezone.now() < deadline:
        threading.Event().wait(0.05)
        row.refresh_from_db()
    assert row.processed_at is not None and row.attempts == 1
    assert published == []  # the worker was never needed
    _applied_once("wamid.ASGIWEB")
    applier_module.applier.close()  # its thread's connection must not outlive the test database



@pg
@pytest.mark.django_db(transaction=True)
def test_closing_the_applier_applies_what_it_had_taken_first(settings, published):
    """What a stopping server (SIGTERM) had taken is applied before its thread ends, not left to the sweeper."""
    workspace = workspace_create(name="Acme", slug="acme")
    connect_number(workspace)
    settings.INBOUND_APPLY_IN_WEB = True
    here = InboundApplier()
    ids = [inbound.inbound_webhook_store(body=body_of(text_payload(wamid=f"wamid.CLOSE{i}")), hand_over=here.offer)
           for i in range(3)]
    here.close()
    assert here._thread is None
    assert InboundWebhook.objects.filter(pk__in=ids, processed_at__isnull=False).count() == 3
    assert published == []
