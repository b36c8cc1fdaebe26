"""The one message writer: its fast SQL forms write the rows its ORM form writes (all columns but ids and
timestamps), and "one open conversation per contact, number and channel" holds under concurrent first sends."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations import policy
from apps.conversations.models import Conversation, Message
from apps.conversations.selectors.sending import send_target_guard
from apps.conversations.services import sending, writer
from apps.core.models import Event
from apps.core.services import workspace_create
from tests.conversations.send_support import contact, live_number, template

pg_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL forms are PostgreSQL's")
_VOLATILE = {"id", "created_at", "updated_at"}


def _row(model, pk, *, skip=()) -> dict:
    names = [f.attname for f in model._meta.concrete_fields if f.name not in _VOLATILE and f.attname not in skip]
    return model.objects.filter(pk=pk).values(*names).get()


def _event_data(message_id: str) -> dict:
    data = dict(Event.objects.get(type="message.status_changed", data__message_id=message_id).data)
    data.pop("message_id")
    return data


@pg_only
@pytest.mark.django_db
@pytest.mark.parametrize("payload", [
    {"type": "text", "text": {"body": "hello", "preview_url": True}},
    {"type": "location", "location": {"latitude": 1.5, "longitude": 2.5, "name": "Here"}},
    {"type": "image", "image": {"link": "https://example.com/a.png", "caption": "pic"}},
], ids=["text", "location", "image-link"])
def test_the_one_statement_send_writes_what_the_orm_form_writes(workspace, payload):
    from apps.conversations.services.validation import send_request_validate

    number = live_number(workspace)
    people = [contact(workspace, phone=phone) for phone in ("+15550001001", "+15550001002")]
    conversations = [Conversation.objects.create(workspace=workspace, contact=p, phone_number=number) for p in people]
    now = timezone.now()
    extra = {"client_reference": "ref-1", "fallback": {"sms": {"text": "sms"}}}
    written = []
    for person, sql_form in zip(people, (True, False), strict=True):
        req = send_request_validate({"to": person.phone, **payload, **extra}, now=now)
        if sql_form:
            ctx = policy.SendContext(workspace=workspace, channel=req.channel, message_type=req.type, to=req.to,
                                     content=req.content, now=now,
                                     body=sending.body_preview(req.type, req.content),
                                     cost=policy.cost_estimate(category="", to=req.to))
            guard = send_target_guard(workspace=workspace, waba_id="", phone_number_id=None, to=req.to,
                                      channel_kind=req.channel, window_opened_after=policy.window_opened_after(now))
            message = writer.message_write_guarded(ctx, guard=guard, sent_by="api", client_reference="ref-1",
                                                   fallback=req.fallback)
        else:
            ctx = policy.send_context(workspace=workspace, channel=req.channel, message_type=req.type, to=req.to,
                                      content=req.content, now=now, resolve_sender=True)
            message = writer.message_write(ctx, sent_by="api", client_reference="ref-1", fallback=req.fallback)
        assert message is not None
        written.append(message.pk)
    sql_row, orm_row = (_row(Message, pk, skip=("contact_id", "conversation_id", "to_phone")) for pk in written)
    assert sql_row == orm_row
    for pk, person, conversation in zip(written, people, conversations, strict=True):
        assert Message.objects.filter(pk=pk, contact=person, conversation=conversation, to_phone=person.phone).exists()
    sql_event, orm_event = (_event_data(pk) for pk in written)
    assert (sql_event.pop("conversation_id"), sql_event.pop("contact_id"), sql_event.pop("to")) == (
        conversations[0].pk, people[0].pk, people[0].phone)
    assert (orm_event.pop("conversation_id"), orm_event.pop("contact_id"), orm_event.pop("to")) == (
        conversations[1].pk, people[1].pk, people[1].phone)
    assert sql_event == orm_event
    sql_conv, orm_conv = (_row(Conversation, c.pk, skip=("contact_id",)) for c in conversations)
    assert sql_conv == orm_conv


@pg_only
@pytest.mark.django_db
def test_the_batch_statement_writes_what_the_batch_orm_form_writes(workspace):
    """messages_enqueue_query and messages_enqueue_bulk on two sets of contacts alike: the same messages and
    the same newly opened conversations (one contact of each set has an open conversation to reuse)."""
    number = live_number(workspace)
    tpl = template(workspace, number.waba)
    now = timezone.now()
    expires = now + timedelta(hours=2)
    sets = [[contact(workspace, phone=f"+1555000{s}{i:03d}", inbound_hours_ago=None) for i in range(3)]
            for s in (1, 2)]
    for people in sets:
        Conversation.objects.create(workspace=workspace, contact=people[0], phone_number=number)
    rows = [{"variables": ["Ann", str(i)], "body": f"Hi Ann, order {i} shipped.", "expires_at": expires if i else None}
            for i in range(3)]
    cost = Decimal("0.0125")
    orm_ids = writer.messages_enqueue_bulk(
        workspace=workspace, phone_number=number, template=tpl, campaign_id="cmp_x", now=now,
        rows=[{**row, "contact": person} for row, person in zip(rows, sets[0], strict=True)])
    Message.objects.filter(pk__in=orm_ids).update(cost_estimate=cost)  # the bulk form prices by the rate card
    values = ", ".join(["(%s::int, %s::text, %s::text, %s::jsonb, %s::text, %s::numeric, %s::timestamptz)"] * 3)
    params = [p for i, (row, person) in enumerate(zip(rows, sets[1], strict=True))
              for p in (i, person.pk, person.phone, json.dumps(row["variables"]), row["body"], cost, row["expires_at"])]
    writer.messages_enqueue_query(
        workspace=workspace, phone_number=number, template=tpl, campaign_id="cmp_x", now=now,
        ctes=[(f"_s(ord, contact_id, to_phone, variables, body, cost_estimate, expires_at) AS (VALUES {values})",
               params)], source="_s", after=[], select=("SELECT 1", []))
    sql_ids = list(Message.objects.exclude(pk__in=orm_ids).order_by("pk").values_list("pk", flat=True))
    assert len(sql_ids) == 3
    skip = ("contact_id", "conversation_id", "to_phone")
    by_contact = {m.contact_id: m for m in Message.objects.filter(pk__in=[*orm_ids, *sql_ids])}
    for orm_person, sql_person in zip(*sets, strict=True):
        assert _row(Message, by_contact[sql_person.pk].pk, skip=skip) == \
            _row(Message, by_contact[orm_person.pk].pk, skip=skip)
        orm_conv = Conversation.objects.get(contact=orm_person)
        sql_conv = Conversation.objects.get(contact=sql_person)
        assert by_contact[orm_person.pk].conversation_id == orm_conv.pk
        assert by_contact[sql_person.pk].conversation_id == sql_conv.pk
        assert (by_contact[orm_person.pk].to_phone, by_contact[sql_person.pk].to_phone) == (
            orm_person.phone, sql_person.phone)
        assert _row(Conversation, sql_conv.pk, skip=("contact_id",)) == \
            _row(Conversation, orm_conv.pk, skip=("contact_id",))
        # The list preview is the message's text; a campaign's new threads wait for the customer's reply.
        assert orm_conv.last_message_preview == by_contact[orm_person.pk].body
        assert orm_conv.opened_by == ("" if orm_person is sets[0][0] else "campaign")


@pytest.mark.django_db
def test_a_second_open_conversation_is_refused_by_the_constraint(workspace):
    from django.db import IntegrityError, transaction

    number = live_number(workspace)
    person = contact(workspace)
    Conversation.objects.create(workspace=workspace, contact=person, phone_number=number)
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(workspace=workspace, contact=person, phone_number=number)
    # Resolved ones do not count; SMS threads without a number are one value too.
    Conversation.objects.filter(contact=person).update(state="resolved")
    Conversation.objects.create(workspace=workspace, contact=person, phone_number=number)
    Conversation.objects.create(workspace=workspace, contact=person, phone_number=None, channel_kind="sms")
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(workspace=workspace, contact=person, phone_number=None, channel_kind="sms")
    assert Conversation.objects.filter(contact=person).exclude(state="resolved").count() == 2


@pg_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_first_sends_open_one_conversation():
    ws = workspace_create(name="Acme", slug="acme")
    number = live_number(ws)
    person = contact(ws, inbound_hours_ago=1)
    barrier = threading.Barrier(2)
    ids, errors = [], []

    def send(i: int) -> None:
        try:
            fresh = Contact.objects.get(pk=person.pk)
            barrier.wait(10)
            ids.append(sending.message_send_internal(workspace=ws, phone_number=number, contact=fresh,
                                                     message_type="text", content={"body": f"n{i}"},
                                                     sent_by="user").pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    (conversation,) = Conversation.objects.filter(contact=person)
    assert sorted(Message.objects.filter(conversation=conversation).values_list("pk", flat=True)) == sorted(ids)
    assert len(ids) == 2


@pg_only
@pytest.mark.django_db
def test_the_migration_resolves_existing_duplicates_keeping_the_newest_open(workspace):
    """Before the constraint existed a contact could have several open conversations on one number; the
    migration keeps the newest open and resolves the older ones (DDL is transactional on PostgreSQL, so
    dropping the constraint here is undone with the test's transaction)."""
    import importlib

    from django.apps import apps as django_apps

    migration = importlib.import_module("apps.conversations.migrations.0006_conversation_one_open")
    (constraint,) = [c for c in Conversation._meta.constraints if c.name == "cnv_one_open"]
    number = live_number(workspace)
    person, other = contact(workspace), contact(workspace, phone="+15550009999")
    with connection.schema_editor() as editor:
        editor.remove_constraint(Conversation, constraint)
    now = timezone.now()
    made = []
    for i, (who, phone_number, kind) in enumerate([(person, number, "whatsapp")] * 3
                                                  + [(person, None, "sms")] * 2 + [(other, number, "whatsapp")]):
        conv = Conversation.objects.create(workspace=workspace, contact=who, phone_number=phone_number,
                                           channel_kind=kind, state="pending" if i == 1 else "open")
        Conversation.objects.filter(pk=conv.pk).update(created_at=now - timedelta(minutes=10 - i))
        made.append(conv.pk)
    migration.resolve_duplicates(django_apps, None)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the inserts' deferred FK checks, before the DDL
    with connection.schema_editor() as editor:
        editor.add_constraint(Conversation, constraint)
    states = dict(Conversation.objects.values_list("pk", "state"))
    assert [states[pk] for pk in made] == ["resolved", "resolved", "open", "resolved", "open", "open"]
