"""Concurrent inbound drainers on real PostgreSQL: batches that hold the same customers in different
orders must neither deadlock (each deadlock costs a second of PostgreSQL's detection and, before the fix,
a 10 s retry backoff) nor lose, double or reorder anything."""

from __future__ import annotations

import logging
import random
import threading

import pytest
from django.db import connection, connections

from apps.conversations.models import Message
from apps.core.models import Event, Workspace
from apps.core.services import workspace_create
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.webhooks.inbound_support import body_of, connect_number, text_payload

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and SKIP LOCKED are PostgreSQL's"),
]

CUSTOMERS = [f"1650555{i:04d}" for i in range(8)]
DRAINERS = 4
ROUNDS = 6


def _store_round(round_no: int, rng: random.Random) -> list[list[str]]:
    """One batch per drainer, each holding every customer once, in its own shuffled order."""
    batches = []
    for drainer in range(DRAINERS):
        order = CUSTOMERS[:]
        rng.shuffle(order)
        ids = []
        for wa_id in order:
            payload = text_payload(wamid=f"wamid.conc.{round_no}.{drainer}.{wa_id}", wa_id=wa_id,
                                   body=f"round {round_no} from {drainer}")
            ids.append(inbound.inbound_webhook_store(body=body_of(payload)))
        batches.append(ids)
    return batches


def test_drainers_sharing_customers_never_deadlock(caplog):
    workspace = workspace_create(name="Acme", slug="acme")
    connect_number(workspace)
    rng = random.Random(7)
    caplog.set_level(logging.INFO, logger="reach.webhooks.inbound")
    errors: list[BaseException] = []
    for round_no in range(ROUNDS):
        batches = _store_round(round_no, rng)
        start = threading.Barrier(DRAINERS)

        def drain(ids: list[str]) -> None:
            try:
                start.wait(10)
                claimed = list(InboundWebhook.objects.filter(pk__in=ids))
                inbound.inbound_webhooks_process_claimed(webhook_ids=ids, rows=claimed)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=drain, args=(ids,)) for ids in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    fell_back = [r.getMessage() for r in caplog.records if "fell back" in r.getMessage()]
    assert fell_back == []  # every batch committed as one: no deadlock, no retry
    total = DRAINERS * len(CUSTOMERS) * ROUNDS
    assert InboundWebhook.objects.filter(processed_at__isnull=False, last_error="").count() == total
    assert Message.objects.filter(workspace=workspace, direction="inbound").count() == total
    sequences = list(Event.objects.filter(workspace=workspace).order_by("sequence")
                     .values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    assert Event.objects.filter(workspace=workspace, type="message.inbound").count() == total
    assert Workspace.objects.get(pk=workspace.pk).event_sequence == sequences[-1]
