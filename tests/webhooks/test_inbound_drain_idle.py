"""The drain out of rows idles a moment on its doorbell, and a ring that finds the doorbell held wakes it:
under steady traffic the next webhook is applied by the running drain, with no new task through the broker.
A batch uses the rows as its claim returned them; the compare-and-set that marks them processed keeps a row
another finisher got first from being applied twice."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.conversations.models import Message
from apps.core.models import Event
from apps.core.redis import get_redis
from apps.core.services import workspace_create
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.webhooks.inbound_support import body_of, connect_number, text_payload


@pytest.fixture
def published(monkeypatch):
    """Drain tasks the worker was rung for (the broker's publish, recorded instead of sent)."""
    from apps.webhooks.tasks.inbound import inbound_webhooks_drain_task

    calls: list[tuple] = []
    monkeypatch.setattr(inbound_webhooks_drain_task, "delay", lambda *slot: calls.append(slot))
    inbound._kick_release()
    get_redis().delete(inbound._doorbell.wake_key("0"))
    yield calls
    inbound._kick_release()
    get_redis().delete(inbound._doorbell.wake_key("0"))


def test_a_ring_takes_a_free_doorbell_and_leaves_the_holder_one_wake_up(published):
    bell = inbound._doorbell
    assert bell.acquire_or_wake("0") is True  # free: this ring enqueues the drain
    assert get_redis().llen(bell.wake_key("0")) == 0
    for _ in range(5):  # held: each ring only leaves a wake-up, and they collapse into one
        assert bell.acquire_or_wake("0") is False
    assert get_redis().llen(bell.wake_key("0")) == 1
    assert bell.wait_wake("0", 0.1) is True
    assert bell.wait_wake("0", 0.1) is False  # consumed; nothing rang since


@pytest.mark.django_db(transaction=True)
def test_an_idle_drain_applies_a_webhook_rung_while_it_waits_and_no_task_is_published(published, monkeypatch):
    workspace = workspace_create(name="Acme", slug="acme")
    connect_number(workspace)
    first_pass_done = threading.Event()
    real_claim = inbound._claim_due_rows

    def claim_and_tell(**kwargs):
        rows = real_claim(**kwargs)
        first_pass_done.set()
        return rows

    monkeypatch.setattr(inbound, "_claim_due_rows", claim_and_tell)
    assert inbound._kick_acquire(0)  # the ring that started this drain's task holds the doorbell
    result: list[int] = []
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            result.append(inbound.inbound_webhooks_drain(idle_seconds=2.0, budget_seconds=30))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=drain)
    thread.start()
    assert first_pass_done.wait(10)  # the drain found nothing and went idle on its doorbell
    webhook_id = inbound.inbound_webhook_store(body=body_of(text_payload(wamid="wamid.IDLE1")))  # rings on commit
    thread.join(30)
    assert not thread.is_alive() and not errors, errors
    assert result == [1]  # the waiting drain applied it…
    assert published == []  # …and no drain task went through the broker for it
    assert InboundWebhook.objects.get(pk=webhook_id).processed_at is not None
    assert Message.objects.filter(provider_message_id="wamid.IDLE1").count() == 1
    assert inbound._kick_acquire(0)  # idle for its wait and nothing came: it let the doorbell go


@pytest.mark.django_db
def test_a_batch_whose_row_another_finisher_took_first_applies_every_row_once(published):
    workspace = workspace_create(name="Acme", slug="acme")
    connect_number(workspace)
    ids = [inbound.inbound_webhook_store(body=body_of(text_payload(wamid=f"wamid.CAS{i}", body=f"cas {i}")))
           for i in range(3)]
    rows = inbound._claim_due_rows(limit=3)
    assert sorted(row.pk for row in rows) == sorted(ids)
    # The admin's reprocess (force) finishes one of the claimed rows while the batch is on its way.
    assert inbound.inbound_webhook_process(webhook_id=ids[1], force=True).status == "processed"
    assert inbound.inbound_webhooks_process_claimed(webhook_ids=[row.pk for row in rows], rows=rows) == 2
    for i in range(3):
        assert Message.objects.filter(provider_message_id=f"wamid.CAS{i}").count() == 1
        assert Event.objects.filter(type="message.inbound", data__provider_message_id=f"wamid.CAS{i}").count() == 1
    assert InboundWebhook.objects.filter(pk__in=ids, processed_at__isnull=True).count() == 0
