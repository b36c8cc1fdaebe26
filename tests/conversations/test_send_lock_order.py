"""The one-statement sends (a template's, and a free-form reply's through the window guard) take their row
locks in the plain road's order: the contact before the wallet and the workspace's event counter. It used to lock the wallet first and take the contact's KEY SHARE (its message's foreign key) only
at commit, while the plain road holds the contact (contact_upsert_by_address: FOR UPDATE) before it
reserves: two sends met in opposite orders and one lost a deadlock (retried, services.sending.SEND_ATTEMPTS).

Real commits and a second connection (transactional_db): the test holds the contact's row lock as the plain
road does, and looks whether the blocked send already holds the wallet."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone

from apps.billing import services as billing
from apps.contacts.services import contact_consent_set
from apps.conversations.models import Conversation, Message
from apps.core.services import api_key_create, workspace_create
from tests.conversations.send_support import TO, contact, live_number, template

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement send is PostgreSQL's"),
]


def _dsn() -> str:
    s = connection.settings_dict
    return psycopg.conninfo.make_conninfo(dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"] or None,
                                          host=s["HOST"] or None, port=s["PORT"] or None)


def _waits_for_a_row_lock(thread: threading.Thread, holder: psycopg.Connection) -> bool:
    """Watch until `thread`'s transaction waits for a row lock (only `holder` holds any) or has finished;
    True if it is waiting."""
    watcher = psycopg.connect(_dsn(), autocommit=True)
    try:
        while thread.is_alive() and not watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND pid NOT IN (pg_backend_pid(), %s)", [holder.info.backend_pid]).fetchone():
            thread.join(0.01)
    finally:
        watcher.close()
    return thread.is_alive()


@pytest.mark.parametrize("kind", ["template-paid", "template-free", "text"])
def test_the_contact_is_locked_before_the_wallet_and_the_workspace(kind):
    """template-paid: a reservation (the wallet row); template-free: none (Austria's marketing priced at 0
    here, as in bench/wallet_send.py); text: a free-form reply inside the window (message_write_guarded,
    which the API fuzzer caught locking the contact only at commit, after the counter: a deadlock with the
    receive road). Each way the workspace's event counter is the statement's last lock."""
    from rest_framework.test import APIClient

    paid = kind == "template-paid"
    to = TO if paid else "+436601234567"
    body = ({"to": to, "type": "text", "text": {"body": "On its way"}} if kind == "text" else
            {"to": to, "template": {"name": "promo", "language": "en", "variables": ["Ann", "7"]}})
    billing.ratecard_import(text="Market,Currency,Marketing\nRest of Western Europe,USD,0.0000\n",
                            effective=timezone.now().date() - timedelta(days=1))
    ws = workspace_create(name="Acme", slug="acme", plan="enterprise")
    number = live_number(ws)
    template(ws, number.waba, name="promo", category="MARKETING")
    billing.wallet_topup(workspace=ws, amount="100", note="test")
    billing.wallet_settings_update(workspace=ws, low_balance_threshold=0)
    known = contact(ws, to, inbound_hours_ago=1)
    contact_consent_set(contact=known, opted_in=True)
    Conversation.objects.create(workspace=ws, contact=known, phone_number=number, state=Conversation.State.OPEN,
                                last_message_at=timezone.now())
    _, secret = api_key_create(workspace=ws, name="k", sandbox=False, scopes=["messages:send"])
    assert (billing.cost_estimate(category="MARKETING", to_phone=to, workspace=ws) > 0) is paid

    holder = psycopg.connect(_dsn())  # the plain road's side: it holds the contact, then wants the wallet
    answers: list = []

    def send() -> None:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        try:
            answers.append(api.post("/api/v1/messages", body, format="json"))
        finally:
            connections.close_all()

    try:
        holder.execute("SELECT id FROM contacts_contact WHERE id = %s FOR UPDATE", [known.pk])
        sender = threading.Thread(target=send)
        sender.start()
        assert _waits_for_a_row_lock(sender, holder), "the send did not wait for the contact's row lock"
        # The waiting send holds neither the wallet nor the workspace row: the plain road's next steps (its
        # reservation, its event's counter) go through.
        # NOWAIT: held by the send, they would fail here at once (and, waited for, deadlock with it).
        holder.execute("SELECT 1 FROM billing_wallet WHERE workspace_id = %s FOR UPDATE NOWAIT", [ws.pk])
        holder.execute("SELECT 1 FROM core_workspace WHERE id = %s FOR NO KEY UPDATE NOWAIT", [ws.pk])
        holder.commit()
    finally:
        holder.close()
    sender.join(30)
    assert [r.status_code for r in answers] == [202], [r.content for r in answers]
    assert Message.objects.filter(workspace=ws, contact=known).count() == 1


def test_a_write_into_a_callers_batch_locks_the_contact_before_the_batch_takes_the_counter():
    """The plain road writing into a caller's batch of events (the dispatcher's SMS fallback, inside the
    transaction that records a batch's outcomes) must hold the contact before the caller's events take the
    workspace's event counter. Left to the foreign key at commit, after the counter, it met the receive road
    (contact, then counter) in the opposite order: the deadlock the API fuzzer's server log showed in CI."""
    from django.db import transaction

    from apps.conversations import policy
    from apps.conversations.services import transitions, writer

    ws = workspace_create(name="Acme", slug="acme", plan="enterprise")
    number = live_number(ws)
    known = contact(ws, TO, inbound_hours_ago=1)
    Conversation.objects.create(workspace=ws, contact=known, phone_number=number, state=Conversation.State.OPEN,
                                last_message_at=timezone.now())
    holder = psycopg.connect(_dsn())  # the receive road's side: it holds the contact, then wants the counter
    written: list = []

    def record_a_batch() -> None:
        try:
            with transaction.atomic():
                events: list = []
                ctx = policy.send_context(workspace=ws, channel="whatsapp", message_type="text", to=TO,
                                          content={"body": "hi"}, now=timezone.now(), resolve_sender=True)
                written.append(writer.message_write(ctx, sent_by="api", events=events))
                transitions.events_flush({ws.pk: events})
        finally:
            connections.close_all()

    try:
        holder.execute("SELECT id FROM contacts_contact WHERE id = %s FOR UPDATE", [known.pk])
        recorder = threading.Thread(target=record_a_batch)
        recorder.start()
        assert _waits_for_a_row_lock(recorder, holder), "the write did not wait for the contact's row lock"
        # Waiting for the contact, it holds no counter yet: the receive road's next step goes through.
        holder.execute("SELECT 1 FROM core_workspace WHERE id = %s FOR NO KEY UPDATE NOWAIT", [ws.pk])
        holder.commit()
    finally:
        holder.close()
    recorder.join(30)
    assert len(written) == 1 and Message.objects.filter(pk=written[0].pk, contact=known).exists()
