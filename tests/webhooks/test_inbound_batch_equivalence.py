"""The receive road's batch form (a drain of many stored webhooks: senders locked and their wamids and
conversations read once per batch, each message's writes sent together) is pinned to its plain form (one
webhook per transaction): the same payloads leave the same contacts, conversations, messages and events
either way, and the batch costs a pinned number of queries."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.contacts.models import ConsentRecord, Contact
from apps.conversations.models import Conversation, Message
from apps.conversations.services import inbox as inbox_services
from apps.core import services as core_services
from apps.core.models import Event
from apps.webhooks.services import inbound
from tests.webhooks.inbound_support import body_of, connect_number, text_payload

pytestmark = pytest.mark.django_db

T0 = 1749416383


def _text(pnid: str, wamid: str, wa_id: str, body: str, ts: int, *, context: str | None = None) -> dict:
    payload = text_payload(wamid=wamid, body=body, wa_id=wa_id, name=f"Customer {wa_id[-4:]}", timestamp=ts,
                           phone_number_id=pnid)
    if context:
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["context"] = {"from": "15550783881", "id": context}
    return payload


def _world(slug: str, pnid: str):
    workspace = core_services.workspace_create(name=slug, slug=slug)
    number = connect_number(workspace, meta_waba_id=f"10229{pnid[-6:]}", phone_number_id=pnid,
                            display=f"+1555078{pnid[-4:]}")
    # Before the batch: A has an open conversation, B a snoozed one; C and D have never written.
    for wamid, wa_id in (("a0", "16505550001"), ("b0", "16505550002")):
        assert inbound.inbound_webhook_process(webhook_id=inbound.inbound_webhook_store(
            body=body_of(_text(pnid, f"{pnid}.{wamid}", wa_id, "first", T0)))).status == "processed"
    snoozed = Conversation.objects.get(workspace=workspace, contact__phone="+16505550002")
    inbox_services.conversation_update(conversation=snoozed, actor=None, snooze_until=timezone.now() + timedelta(days=1))
    return workspace, number


def _batch_payloads(pnid: str) -> list[dict]:
    duplicate = _text(pnid, f"{pnid}.a0", "16505550001", "first", T0)
    duplicate["entry"][0]["id"] = "redelivered"  # another body, the same wamid: a duplicate, not a new row
    return [
        _text(pnid, f"{pnid}.a1", "16505550001", "second", T0 + 5),
        _text(pnid, f"{pnid}.a2", "16505550001", "an older one arriving late", T0 + 2),
        _text(pnid, f"{pnid}.b1", "16505550002", "wake up", T0 + 6, context=f"{pnid}.b0"),
        _text(pnid, f"{pnid}.c1", "16505550003", "new here", T0 + 7),
        _text(pnid, f"{pnid}.c2", "16505550003", "still here", T0 + 8),
        _text(pnid, f"{pnid}.d1", "16505550004", "STOP", T0 + 9),
        duplicate,
    ]


def _state(workspace) -> dict:
    """What a person or an API client can see, with the world's own ids and wamid prefix taken out."""
    def wamid(value):
        return (value or "").split(".", 1)[-1]

    contacts = {c.phone: (c.name, c.last_inbound_at, c.opted_in) for c in Contact.objects.filter(workspace=workspace)}
    conversations = sorted((c.contact.phone, c.state, c.snooze_until is None, c.last_inbound_at, c.last_message_preview,
                            c.unread_count, c.opened_by) for c in Conversation.objects.filter(workspace=workspace)
                           .select_related("contact"))
    messages = sorted((wamid(m.provider_message_id), m.contact.phone, m.conversation.contact.phone, m.body, m.type,
                       m.status, wamid(m.reply_to.provider_message_id) if m.reply_to else None)
                      for m in Message.objects.filter(workspace=workspace).select_related("contact", "conversation__contact",
                                                                                          "reply_to"))
    events = [(e.type, e.data.get("body"), e.data.get("from"), e.data.get("state"), e.data.get("previous_state"))
              for e in Event.objects.filter(workspace=workspace).order_by("sequence")]
    consent = sorted((r.contact.phone, r.status, r.source) for r in ConsentRecord.objects.filter(workspace=workspace)
                     .select_related("contact"))
    return {"contacts": contacts, "conversations": conversations, "messages": messages, "events": events,
            "consent": consent}


def test_a_batch_leaves_what_one_webhook_at_a_time_leaves(django_capture_on_commit_callbacks):
    plain_ws, _ = _world("plain", "990000000001111")
    batch_ws, _ = _world("batch", "990000000002222")
    plain_ids = [inbound.inbound_webhook_store(body=body_of(p)) for p in _batch_payloads("990000000001111")]
    batch_ids = [inbound.inbound_webhook_store(body=body_of(p)) for p in _batch_payloads("990000000002222")]
    # The plain form, one transaction per webhook, in the batch's own order (by sender, then row).
    rows = {row.pk: row for row in inbound.InboundWebhook.objects.filter(pk__in=plain_ids)}
    import json

    order = sorted(plain_ids, key=lambda pk: (inbound._senders_key(json.loads(bytes(rows[pk].body))), pk))
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = [inbound.inbound_webhook_process(webhook_id=pk).status for pk in order]
    assert outcomes == ["processed"] * len(order)
    # The batch form: all of them in one transaction.
    with django_capture_on_commit_callbacks(execute=True):
        assert inbound._process_batch(batch_ids) == len(batch_ids)

    plain, batch = _state(plain_ws), _state(batch_ws)
    assert batch == plain
    # And the state is the one the rules say (so both forms cannot be wrong together unnoticed).
    conversations = {c[0]: c for c in plain["conversations"]}
    assert conversations["+16505550001"][3].timestamp() == T0 + 5  # the late older message does not move it back
    assert conversations["+16505550001"][5] == 3  # unread: first, second, the late one
    assert conversations["+16505550002"][1:3] == ("open", True)  # woken from snooze
    assert conversations["+16505550003"][5] == 2
    assert ("b1", "+16505550002", "+16505550002", "wake up", "text", "received", "b0") in plain["messages"]
    assert len([m for m in plain["messages"] if m[0] == "a0"]) == 1
    assert plain["consent"] == [("+16505550004", "opt_out", "keyword")]
    assert [e[0] for e in plain["events"]].count("message.inbound") == 2 + 6


def test_a_batch_of_known_customers_costs_a_pinned_number_of_queries(django_assert_max_num_queries,
                                                                      django_capture_on_commit_callbacks):
    workspace, number = _world("pinned", "990000000003333")
    pnid = number.meta_phone_number_id
    senders = [f"1650555{n:04d}" for n in range(100, 120)]

    def store(round_: int) -> list[str]:
        return [inbound.inbound_webhook_store(body=body_of(_text(pnid, f"{pnid}.{round_}.{n}", wa_id, f"hi {n}",
                                                                 T0 + round_)))
                for n, wa_id in enumerate(senders)]

    with django_capture_on_commit_callbacks(execute=True):  # first contact: contacts and conversations created
        assert inbound._process_batch(store(1)) == 20
    ids = store(2)
    # PostgreSQL: per batch the rows, the number, the senders (locked), their stored wamids, their conversations,
    # the auto-reply EXISTS, the events, the rows marked processed; per message ONE round trip (the message, the
    # contact's and the conversation's last inbound together). Elsewhere the three writes go one by one.
    budget = 12 + 20 if connection.vendor == "postgresql" else 12 + 20 * 3
    with django_assert_max_num_queries(budget), django_capture_on_commit_callbacks(execute=True):
        assert inbound._process_batch(ids) == 20
    assert Message.objects.filter(workspace=workspace, provider_message_id__startswith=f"{pnid}.2.").count() == 20
    assert set(Conversation.objects.filter(workspace=workspace, contact__phone__startswith="+1650555")
               .exclude(contact__phone__in=["+16505550001", "+16505550002"]).values_list("unread_count", flat=True)) == {2}


def test_a_merge_inside_a_batch_reads_again_what_it_moved(django_capture_on_commit_callbacks):
    """A phone's contact and a BSUID-only contact tied together mid-batch: the batch forgets what it had
    read, and the next message of the merged person lands in the survivor's conversation."""
    workspace, number = _world("merge", "990000000004444")
    pnid = number.meta_phone_number_id
    bsuid_only = copy.deepcopy(_text(pnid, f"{pnid}.u1", "16505550009", "from a username", T0))
    value = bsuid_only["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": "Uma"}, "user_id": "US.13491208655302741918"}]
    del value["messages"][0]["from"]
    value["messages"][0]["from_user_id"] = "US.13491208655302741918"
    assert inbound.inbound_webhook_process(webhook_id=inbound.inbound_webhook_store(
        body=body_of(bsuid_only))).status == "processed"
    tied = _text(pnid, f"{pnid}.u2", "16505550009", "now with my phone", T0 + 1)
    tied["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = "US.13491208655302741918"
    tied["entry"][0]["changes"][0]["value"]["messages"][0]["from_user_id"] = "US.13491208655302741918"
    again = _text(pnid, f"{pnid}.u3", "16505550009", "and again", T0 + 2)
    ids = [inbound.inbound_webhook_store(body=body_of(p)) for p in (tied, again)]
    with django_capture_on_commit_callbacks(execute=True):
        assert inbound._process_batch(ids) == 2
    contact = Contact.objects.get(workspace=workspace, phone="+16505550009")
    assert Contact.objects.filter(workspace=workspace, bsuid="US.13491208655302741918").get() == contact
    conversation = Conversation.objects.get(workspace=workspace, contact=contact)
    assert set(Message.objects.filter(workspace=workspace, provider_message_id__startswith=f"{pnid}.u")
               .values_list("conversation_id", flat=True)) == {conversation.pk}
    assert conversation.unread_count == 3 and conversation.last_message_preview == "and again"


def test_a_batch_of_first_messages_creates_its_new_customers_together(django_assert_max_num_queries,
                                                                       django_capture_on_commit_callbacks):
    """Twenty customers nobody knows write at once: their contacts are created in one INSERT and their
    conversations opened in another, not one by one (a burst of first contacts used to queue behind itself),
    and every customer ends with one contact, one open conversation and their message in it."""
    workspace, number = _world("firsts", "990000000005555")
    pnid = number.meta_phone_number_id
    senders = [f"1650556{n:04d}" for n in range(20)]
    ids = [inbound.inbound_webhook_store(body=body_of(_text(pnid, f"{pnid}.{n}", wa_id, f"hello {n}", T0)))
           for n, wa_id in enumerate(senders)]
    # The known-customers budget (12 + one per message) plus the INSERT of the contacts and their lock, and the
    # conversations' INSERT between two reads; one by one each first message cost some eight more.
    budget = 17 + 20 if connection.vendor == "postgresql" else 17 + 20 * 3
    with django_assert_max_num_queries(budget), django_capture_on_commit_callbacks(execute=True):
        assert inbound._process_batch(ids) == 20
    contacts = Contact.objects.filter(workspace=workspace, phone__in=[f"+{s}" for s in senders])
    assert sorted(contacts.values_list("name", flat=True)) == sorted(f"Customer {s[-4:]}" for s in senders)
    conversations = Conversation.objects.filter(workspace=workspace, contact__in=contacts)
    assert conversations.count() == 20 and set(conversations.values_list("state", "unread_count")) == {("open", 1)}
    assert Message.objects.filter(workspace=workspace, conversation__in=conversations).count() == 20


def test_a_batch_welcomes_each_new_customer_once_as_one_webhook_at_a_time_does(django_capture_on_commit_callbacks):
    """Whether a message is its sender's first (the welcome auto-reply's trigger) survives the batch creating
    the contacts ahead of their messages: a new customer writing twice in one batch is welcomed once, a
    known one not at all; the same as the plain form. The cooldown is off, so a second welcome would show."""
    from apps.conversations.services import autoreplies

    now = int(timezone.now().timestamp())  # inside the window, or nobody is answered

    def payloads(pnid: str) -> list[dict]:
        return [_text(pnid, f"{pnid}.e1", "16505550005", "hi", now - 4),
                _text(pnid, f"{pnid}.e2", "16505550005", "hello?", now - 3),
                _text(pnid, f"{pnid}.f1", "16505550006", "hey", now - 2),
                _text(pnid, f"{pnid}.a9", "16505550001", "me again", now - 1)]

    welcomed = {}
    for form, pnid in (("plain", "990000000006666"), ("batch", "990000000007777")):
        workspace, _ = _world(f"welcome-{form}", pnid)
        autoreplies.auto_reply_settings_set(workspace=workspace, cooldown_seconds=0)
        autoreplies.auto_reply_rule_create(workspace=workspace, kind="welcome", reply_text="Welcome!")
        ids = [inbound.inbound_webhook_store(body=body_of(p)) for p in payloads(pnid)]
        with django_capture_on_commit_callbacks(execute=True):
            if form == "plain":
                assert [inbound.inbound_webhook_process(webhook_id=pk).status for pk in ids] == ["processed"] * 4
            else:
                assert inbound._process_batch(ids) == 4
        welcomed[form] = sorted(Message.objects.filter(workspace=workspace, sent_by="auto_reply")
                                .values_list("to_phone", "body"))
    assert welcomed["batch"] == welcomed["plain"] == [("+16505550005", "Welcome!"), ("+16505550006", "Welcome!")]
