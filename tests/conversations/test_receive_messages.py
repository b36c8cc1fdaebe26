"""Inbound customer messages through the stored-webhook road: every Meta type, contacts by phone or
BSUID, the window, stop words, conversation states, idempotency, routing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.contacts.models import ConsentRecord, Contact
from apps.conversations.models import Conversation, Message
from apps.core.models import Event
from apps.webhooks.models import InboundWebhook
from tests.webhooks.inbound_support import connect_number, deliver, fixture, text_payload

pytestmark = pytest.mark.django_db

OAS_INBOUND = {
    "oas_text_message.json": ("text", "Does it come in another color?"),
    "oas_image_message.json": ("image", None),
    "oas_button_message.json": ("button", None),
    "oas_contact_sharing_message.json": ("contacts", None),
    "oas_interactive_button_reply_message.json": ("interactive", None),
    "oas_interactive_list_reply_message.json": ("interactive", None),
    "oas_location_message.json": ("location", None),
    "oas_order_message.json": ("order", None),
    "oas_reaction_message.json": ("reaction", None),
    "oas_system_message.json": ("system", None),
    "oas_text_message_from_click_to_whatsapp_ad.json": ("text", None),
    "oas_text_message_with_context_product_inquiry.json": ("text", None),
    "oas_unsupported_message.json": ("unsupported", None),
}


@pytest.fixture
def number(workspace):
    return connect_number(workspace)


@pytest.mark.parametrize("name", sorted(OAS_INBOUND))
def test_every_oas_inbound_type_stores_one_message(workspace, number, name):
    payload = fixture(name)
    raw = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    outcome = deliver(payload)
    assert outcome.status == "processed", outcome.error
    message = Message.objects.get()
    expected_type, expected_body = OAS_INBOUND[name]
    assert message.type == expected_type
    assert message.direction == "inbound"
    assert message.status == "received"
    assert message.provider_message_id == raw["id"]
    assert message.workspace == workspace
    assert message.phone_number == number
    assert message.sent_by == "customer"
    assert message.contact.phone == "+16505551234"
    if expected_body is not None:
        assert message.body == expected_body
    assert message.conversation.contact == message.contact
    assert message.conversation.last_inbound_at is not None
    event = Event.objects.get(workspace=workspace, type="message.inbound")
    assert event.data["message_id"] == message.pk
    assert event.data["conversation_id"] == message.conversation_id
    assert event.data["type"] == expected_type
    assert event.data["from"] == "+16505551234"
    assert event.data["contact"]["id"] == message.contact_id
    assert InboundWebhook.objects.get().summary["messages"] == 1


def test_bodies_people_see(workspace, number):
    deliver(fixture("oas_interactive_button_reply_message.json"))
    deliver(fixture("oas_location_message.json"))
    bodies = {m.type: m.body for m in Message.objects.all()}
    interactive = fixture("oas_interactive_button_reply_message.json")["entry"][0]["changes"][0]["value"]["messages"][0]
    assert bodies["interactive"] == interactive["interactive"]["button_reply"]["title"]
    assert bodies["location"] != ""


def test_media_voice_sticker_and_flow_batch_stores_each(workspace, number):
    payload = fixture("inbound_media_voice_sticker_nfm.json")
    outcome = deliver(payload)
    assert outcome.status == "processed", outcome.error
    types = sorted(Message.objects.values_list("type", flat=True))
    assert types == sorted(["audio", "sticker", "document", "video", "reaction", "text", "interactive"])
    audio = Message.objects.get(type="audio")
    # Media is downloaded after commit; until then the message keeps Meta's media id and a due retry.
    assert audio.content["id"]
    assert audio.media_id is None
    assert audio.next_attempt_at is not None
    assert Message.objects.get(type="text").next_attempt_at is None


def test_text_creates_contact_with_profile_name_and_opens_window(workspace, number):
    deliver(text_payload(wamid="wamid.T1", body="hi", name="Ana", timestamp=int(timezone.now().timestamp())))
    contact = Contact.objects.get(workspace=workspace)
    assert contact.phone == "+16505551234"
    assert contact.wa_id == "16505551234"
    assert contact.name == "Ana"
    assert contact.last_inbound_at is not None
    assert timezone.now() - contact.last_inbound_at < timedelta(minutes=1)
    conversation = Conversation.objects.get()
    assert conversation.state == "open"
    assert conversation.unread_count == 1
    assert conversation.last_message_preview == "hi"


def test_bsuid_only_sender_is_keyed_by_bsuid(workspace, number):
    payload = fixture("inbound_bsuid_no_from.json")
    outcome = deliver(payload)
    assert outcome.status == "processed", outcome.error
    message = Message.objects.get()
    assert message.contact.phone is None
    assert message.contact.bsuid
    event = Event.objects.get(type="message.inbound")
    assert event.data["from"] == message.contact.bsuid


def test_duplicate_payload_one_row_one_message(workspace, number):
    payload = text_payload(wamid="wamid.DUP")
    assert deliver(payload).status == "processed"
    assert deliver(payload).status == "skipped"
    assert InboundWebhook.objects.count() == 1
    assert Message.objects.count() == 1
    assert Event.objects.filter(type="message.inbound").count() == 1


def test_same_wamid_in_another_body_is_a_noop(workspace, number):
    deliver(text_payload(wamid="wamid.DUP2", body="hi"))
    conversation = Conversation.objects.get()
    second = text_payload(wamid="wamid.DUP2", body="hi")
    second["entry"][0]["time"] = 1  # a different body (Meta's redelivery) carrying the same wamid
    outcome = deliver(second)
    assert outcome.status == "processed"
    assert outcome.summary == {"duplicate_messages": 1}
    assert InboundWebhook.objects.count() == 2
    assert Message.objects.count() == 1
    conversation.refresh_from_db()
    assert conversation.unread_count == 1
    assert Event.objects.filter(type="message.inbound").count() == 1


def test_unknown_phone_number_is_recorded_as_ignored(workspace, number):
    outcome = deliver(text_payload(wamid="wamid.X", phone_number_id="999999"))
    assert outcome.status == "processed"
    row = InboundWebhook.objects.get()
    assert row.processed_at is not None
    assert row.summary["ignored"] == [{"kind": "message", "wamid": "wamid.X", "reason": "unknown phone_number_id"}]
    assert Message.objects.count() == 0
    assert Contact.objects.count() == 0


def test_stop_word_opts_out_and_start_opts_in(workspace, number):
    deliver(text_payload(wamid="wamid.S1", body="  Stop "))
    contact = Contact.objects.get()
    assert contact.opted_in is False
    record = ConsentRecord.objects.get(contact=contact)
    assert (record.status, record.source) == ("opt_out", "keyword")
    assert record.inbound_message_id == Message.objects.get().pk
    assert Event.objects.filter(type="contact.opted_out").count() == 1
    deliver(text_payload(wamid="wamid.S2", body="START"))
    contact.refresh_from_db()
    assert contact.opted_in is True
    assert Event.objects.filter(type="contact.opted_in").count() == 1


def test_plain_text_records_no_consent(workspace, number):
    deliver(text_payload(wamid="wamid.S3", body="please stop by tomorrow"))
    assert ConsentRecord.objects.count() == 0


@pytest.mark.parametrize("state", ["snoozed", "pending"])
def test_inbound_reopens_snoozed_or_pending(workspace, number, state):
    deliver(text_payload(wamid="wamid.R1"))
    conversation = Conversation.objects.get()
    Conversation.objects.filter(pk=conversation.pk).update(
        state=state, snooze_until=timezone.now() + timedelta(hours=3) if state == "snoozed" else None)
    deliver(text_payload(wamid="wamid.R2", body="again"))
    conversation.refresh_from_db()
    assert conversation.state == "open"
    assert conversation.snooze_until is None
    assert Conversation.objects.count() == 1
    change = Event.objects.get(type="conversation.status_changed")
    assert change.data["previous_state"] == state
    assert change.data["state"] == "open"
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_inbound_after_resolved_opens_a_new_conversation(workspace, number):
    deliver(text_payload(wamid="wamid.V1"))
    first = Conversation.objects.get()
    Conversation.objects.filter(pk=first.pk).update(state="resolved")
    deliver(text_payload(wamid="wamid.V2"))
    assert Conversation.objects.count() == 2
    second = Conversation.objects.exclude(pk=first.pk).get()
    assert second.state == "open"
    assert Message.objects.get(provider_message_id="wamid.V2").conversation == second


def test_late_older_message_does_not_move_the_window_back(workspace, number):
    now = int(timezone.now().timestamp())
    deliver(text_payload(wamid="wamid.L1", timestamp=now))
    deliver(text_payload(wamid="wamid.L2", timestamp=now - 3600))
    contact = Contact.objects.get()
    conversation = Conversation.objects.get()
    assert contact.last_inbound_at == datetime.fromtimestamp(now, tz=UTC)
    assert conversation.last_inbound_at == datetime.fromtimestamp(now, tz=UTC)


def test_reply_links_to_the_quoted_outbound(workspace, number):
    deliver(text_payload(wamid="wamid.Q0"))
    contact = Contact.objects.get()
    outbound = Message.objects.create(workspace=workspace, contact=contact, phone_number=number, type="text",
                                      direction="outbound", status="sent", provider_message_id="wamid.OUT1")
    payload = text_payload(wamid="wamid.Q1", body="yes")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["context"] = {"from": "15550783881", "id": "wamid.OUT1"}
    deliver(payload)
    reply = Message.objects.get(provider_message_id="wamid.Q1")
    assert reply.reply_to == outbound
    assert reply.content["context"]["id"] == "wamid.OUT1"


def test_rolled_back_processing_leaves_nothing(workspace, number, monkeypatch):
    from apps.conversations.services import receiving

    def explode(**kwargs):
        raise RuntimeError("boom after the writes")

    monkeypatch.setattr(receiving, "event_append_many", explode)
    outcome = deliver(text_payload(wamid="wamid.RB"))
    assert outcome.status == "failed"
    assert Message.objects.count() == 0
    assert Contact.objects.count() == 0
    assert Conversation.objects.count() == 0
    assert Event.objects.count() == 0
    row = InboundWebhook.objects.get()
    assert row.processed_at is None
    assert row.attempts == 1
    assert "boom" in row.last_error
    assert row.available_at > timezone.now()  # backed off, the sweeper retries later
    monkeypatch.undo()
    from apps.webhooks.services import inbound

    InboundWebhook.objects.filter(pk=row.pk).update(available_at=timezone.now())
    assert inbound.inbound_webhooks_sweep() == 1
    assert Message.objects.count() == 1


def test_live_and_sandbox_numbers_route_to_their_own_workspace(workspace, number):
    sandbox_number = workspace.sandbox.phone_numbers.get()
    payload = copy.deepcopy(text_payload(wamid="wamid.SB1", phone_number_id=sandbox_number.meta_phone_number_id))
    deliver(payload)
    message = Message.objects.get()
    assert message.workspace == workspace.sandbox
    assert Contact.objects.get().workspace == workspace.sandbox


def test_after_commit_calls_the_auto_reply_hook(workspace, number, monkeypatch,
                                                django_capture_on_commit_callbacks):
    from apps.conversations.models import AutoReplyRule
    from apps.conversations.services import autoreplies

    AutoReplyRule.objects.create(workspace=workspace, kind="welcome", name="hi", reply_text="Hello!")
    calls: list[dict] = []
    monkeypatch.setattr(autoreplies, "auto_reply_for_inbound", lambda **kw: calls.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        deliver(text_payload(wamid="wamid.AR1", body="hello"))
    with django_capture_on_commit_callbacks(execute=True):
        deliver(text_payload(wamid="wamid.AR2", body="stop"))
    first = Message.objects.get(provider_message_id="wamid.AR1").pk
    # A STOP word never reaches the auto-reply hook (consent handling answers it).
    assert calls == [{"message_id": first, "contact_created": True, "consent_keyword": None}]
    assert Message.objects.filter(provider_message_id="wamid.AR2").exists()


def test_opt_out_confirmation_is_sent_when_the_workspace_asks(workspace, number, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    from apps.conversations.services import dispatch

    monkeypatch.setattr(dispatch, "dispatch_kick", lambda **kw: None)
    workspace.settings = {"opt_out_confirmation_text": "You are unsubscribed. Reply START to undo."}
    workspace.save(update_fields=["settings"])
    now = int(timezone.now().timestamp())
    with django_capture_on_commit_callbacks(execute=True):
        deliver(text_payload(wamid="wamid.OPT1", body="STOP", timestamp=now))
    reply = Message.objects.get(direction="outbound")
    assert reply.body == "You are unsubscribed. Reply START to undo."
    assert reply.sent_by == "auto_reply"
    assert reply.to_phone == "+16505551234"


def test_no_opt_out_confirmation_by_default(workspace, number, django_capture_on_commit_callbacks):
    now = int(timezone.now().timestamp())
    with django_capture_on_commit_callbacks(execute=True):
        deliver(text_payload(wamid="wamid.OPT2", body="STOP", timestamp=now))
    assert Message.objects.filter(direction="outbound").count() == 0
