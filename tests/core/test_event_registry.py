"""The event type registry: each type declared once with its schema, appends of unknown types refused,
every builder's output valid, the public list that of API.md, the docs generated from it."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test import Client

from apps.campaigns import events as campaign_events
from apps.campaigns.models import Campaign
from apps.contacts import events as contact_events
from apps.contacts.models import ConsentRecord, Contact
from apps.conversations import events as conversation_events
from apps.conversations.models import Conversation, ConversationNote, Message
from apps.core.events import (
    DuplicateEventType,
    UnknownEventType,
    event_data_errors,
    event_type_get,
    event_type_register,
    event_types,
    public_event_types,
)
from apps.core.models import Event, Workspace
from apps.core.services import event_append, event_append_many, event_append_with_writes
from apps.message_templates import events as template_events
from apps.message_templates.models import MessageTemplate
from apps.wabas import events as waba_events
from apps.wabas.models import PhoneNumber
from tests.conftest import TEST_EVENT_TYPE

# API.md, "Webhook subscriptions": "Event types: …"
API_MD_EVENT_TYPES = {
    "message.inbound", "message.status_changed", "message.sent", "message.delivered", "message.read",
    "message.failed", "conversation.assigned", "conversation.status_changed", "contact.opted_out",
    "contact.opted_in", "template.status_changed", "phone_number.quality_changed", "campaign.completed",
    "wallet.low_balance", "wallet.topped_up",  # API.md "Money"
    "link.clicked",  # API.md, "Tracked links": event link.clicked
    "contact.merged",  # API.md "Identity"
}
T = datetime(2026, 5, 23, 14, 22, 17, tzinfo=UTC)


def test_the_public_list_is_api_md_s():
    assert set(public_event_types()) == API_MD_EVENT_TYPES
    assert list(public_event_types()) == sorted(API_MD_EVENT_TYPES)


def test_internal_types_are_registered_but_not_public():
    assert event_type_get("conversation.note_added").public is False
    assert "conversation.note_added" not in public_event_types()


def test_every_type_has_one_builder_named_after_it_in_its_app():
    modules = [importlib.import_module(f"apps.{app}.events")
               for app in ("conversations", "contacts", "message_templates", "wabas", "campaigns", "billing", "links")]
    for entry in event_types():
        if entry.name == TEST_EVENT_TYPE:
            continue
        builder = entry.name.replace(".", "_")
        owners = [m.__name__ for m in modules if callable(getattr(m, builder, None))]
        assert len(owners) == 1, (entry.name, owners)


def test_every_example_validates_and_every_schema_is_closed():
    for entry in event_types():
        assert event_data_errors(entry.name, entry.example) == [], entry.name
        if entry.name != TEST_EVENT_TYPE:
            assert entry.schema["additionalProperties"] is False, entry.name
            assert entry.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert entry.description


def test_a_second_registration_of_a_type_is_refused():
    before = event_type_get("message.inbound")
    with pytest.raises(DuplicateEventType):
        event_type_register("message.inbound", public=False, description="again", schema={"type": "object"},
                            example={})
    assert event_type_get("message.inbound") is before


def test_an_invalid_schema_or_a_wrong_example_is_refused():
    from jsonschema.exceptions import SchemaError

    with pytest.raises(SchemaError):
        event_type_register("test.bad_schema", public=False, description="x", schema={"type": 12}, example={})
    with pytest.raises(ValueError, match="does not match"):
        event_type_register("test.bad_example", public=False, description="x",
                            schema={"type": "object", "required": ["a"]}, example={})
    assert {t.name for t in event_types()}.isdisjoint({"test.bad_schema", "test.bad_example"})


def test_unknown_types_are_named_in_the_errors():
    assert event_data_errors("message.nope", {}) == ["unregistered event type 'message.nope'"]
    with pytest.raises(UnknownEventType):
        event_type_get("message.nope")


def test_data_errors_name_the_key():
    data = {**event_type_get("conversation.assigned").example, "extra": 1}
    data.pop("by_user_id")
    assert event_data_errors("conversation.assigned", data) == [
        "(data): 'by_user_id' is a required property",
        "(data): Additional properties are not allowed ('extra' was unexpected)",
    ]


@pytest.mark.django_db
def test_appending_an_unknown_type_is_refused_and_writes_nothing(workspace):
    before = Workspace.objects.get(pk=workspace.pk).event_sequence
    with transaction.atomic():
        with pytest.raises(UnknownEventType, match="message.queued"):
            event_append(workspace=workspace, type="message.queued", data={})
        with pytest.raises(UnknownEventType):  # one unknown type refuses the whole batch
            event_append_many(workspace=workspace, events=[("conversation.note_added", {
                "conversation_id": "cnv_1", "note_id": "note_1", "author_user_id": None}), ("nope", {})])
    assert Event.objects.count() == 0
    assert Workspace.objects.get(pk=workspace.pk).event_sequence == before


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement form is PostgreSQL's")
def test_the_one_statement_form_refuses_an_unknown_type_before_its_writes(workspace):
    before = Workspace.objects.get(pk=workspace.pk).event_sequence
    with pytest.raises(UnknownEventType):
        event_append_with_writes(workspace=workspace, type="nope", data={}, writes=[
            ("UPDATE core_workspace SET name = %s WHERE id = %s", ["renamed", workspace.pk])])
    row = Workspace.objects.get(pk=workspace.pk)
    assert (row.name, row.event_sequence, Event.objects.count()) == ("Acme", before, 0)


# --- each builder's output validates ------------------------------------------------------------------


def _outbound(**kw) -> Message:
    fields = {"id": "msg_1", "workspace_id": "ws_1", "conversation_id": "cnv_1", "contact_id": "ct_1",
              "direction": "outbound", "type": "text", "to_phone": "+15551234567", "client_reference": "ref-1",
              "campaign_id": "", "provider_message_id": "wamid.1", "sent_at": T, "status": "sent"}
    return Message(**{**fields, **kw})


@pytest.mark.parametrize("message, previous, kwargs, types", [
    (_outbound(status="queued", provider_message_id=None, sent_at=None), None, {}, ["message.status_changed"]),
    (_outbound(), "queued", {}, ["message.status_changed", "message.sent"]),
    (_outbound(status="delivered", delivered_at=T, pricing={"billable": True, "category": "utility"}), "sent",
     {"timestamp": T}, ["message.status_changed", "message.delivered"]),
    (_outbound(status="read", delivered_at=T, read_at=T), "delivered", {"timestamp": T},
     ["message.status_changed", "message.read"]),
    (_outbound(status="failed", failed_at=T, error_code="RECIPIENT_NOT_ON_WHATSAPP", error_message="Not on WA",
               upstream_code=131026), "sent", {}, ["message.status_changed", "message.failed"]),
    (_outbound(status="queued", channel="sms", provider_message_id=None, sent_at=None), None,
     {"fallback_for": "msg_0"}, ["message.status_changed"]),
])
def test_message_status_builders(message, previous, kwargs, types):
    events = conversation_events.message_status_events(message=message, previous_status=previous, **kwargs)
    assert [t for t, _ in events] == types
    for event_type, data in events:
        assert event_data_errors(event_type, data) == []
    data = events[0][1]
    assert (data["message_id"], data["status"], data["previous_status"]) == ("msg_1", message.status, previous)
    assert ("error" in data) == (message.status == "failed") and ("pricing" in data) == bool(message.pricing)
    if message.status in conversation_events.STATUS_EVENT_TYPES:
        builder = getattr(conversation_events, f"message_{message.status}")
        assert builder(message=message, previous_status=previous, timestamp=kwargs.get("timestamp")) == data


def test_a_claim_is_not_a_public_status_move():
    claimed = _outbound(status="sending", provider_message_id=None, sent_at=None)
    assert conversation_events.message_status_events(message=claimed, previous_status="queued") == []
    sent = conversation_events.message_status_events(message=_outbound(), previous_status="sending")
    assert sent[0][1]["previous_status"] == "queued"
    assert event_data_errors("message.status_changed", {**sent[0][1], "status": "sending"}) == [
        "status: 'sending' is not one of ['scheduled', 'queued', 'sent', 'delivered', 'read', 'failed', 'canceled']"]


def test_a_per_status_builder_refuses_another_status():
    with pytest.raises(ValueError):
        conversation_events.message_delivered(message=_outbound(), previous_status="queued")


def test_message_inbound_builder():
    contact = Contact(id="ct_1", phone="+15551234567", wa_id="", bsuid=None, name="")
    message = Message(id="msg_2", conversation_id="cnv_1", contact_id="ct_1", phone_number_id="pn_1",
                      direction="inbound", type="text", body="hi", content={"body": "hi"},
                      provider_message_id="wamid.2", created_at=T)
    data = conversation_events.message_inbound(message=message, contact=contact, sender="+15551234567",
                                               wa_id="15551234567", profile_name="Ada", timestamp=T, received_at=T)
    assert event_data_errors("message.inbound", data) == []
    assert data["contact"] == {"id": "ct_1", "phone": "+15551234567", "wa_id": "15551234567", "bsuid": None,
                               "name": "Ada", "parent_bsuid": None, "username": None}


def test_conversation_builders():
    conversation = Conversation(id="cnv_1", state="snoozed", snooze_until=T, assigned_user_id="usr_2")
    cases = [
        ("conversation.assigned", conversation_events.conversation_assigned(
            conversation=conversation, previous_assigned_user_id=None, by_user_id="usr_1")),
        ("conversation.status_changed", conversation_events.conversation_status_changed(
            conversation=conversation, previous_state="open", by_user_id="usr_1")),
        ("conversation.status_changed", conversation_events.conversation_status_changed(
            conversation=Conversation(id="cnv_1", state="open"), previous_state="pending", reason="inbound")),
        ("conversation.note_added", conversation_events.conversation_note_added(
            note=ConversationNote(id="note_1", conversation_id="cnv_1", author_id=None))),
    ]
    for event_type, data in cases:
        assert event_data_errors(event_type, data) == [], event_type
    assert cases[1][1]["snooze_until"] == "2026-05-23T14:22:17Z"


@pytest.mark.parametrize("status", ["opt_in", "opt_out"])
def test_contact_consent_builders(status):
    record = ConsentRecord(id="cst_1", contact_id="ct_1", status=status, source="api", created_at=T)
    event_type, data = contact_events.contact_consent_event(record=record, phone="+15551234567")
    assert event_type == ("contact.opted_in" if status == "opt_in" else "contact.opted_out")
    assert event_data_errors(event_type, data) == []
    other = contact_events.contact_opted_out if status == "opt_in" else contact_events.contact_opted_in
    with pytest.raises(ValueError):
        other(record=record, phone=None)


@pytest.mark.parametrize("change, extra", [
    ("created", {}), ("status", {}), ("category_notice", {"correct_category": "MARKETING"}),
    ("category", {"previous_category": "UTILITY"}), ("quality", {"previous_quality": None, "quality": "GREEN"}),
])
def test_template_builder(change, extra):
    template = MessageTemplate(id="tpl_1", waba_id="waba_1", name="hello", language="en", category="UTILITY",
                               status="APPROVED")
    data = template_events.template_status_changed(template=template, previous_status="PENDING", change=change,
                                                   **extra)
    assert event_data_errors("template.status_changed", data) == []
    assert set(data) - set(template_events.template_status_changed(
        template=template, previous_status="", change="status")) == set(extra)


def test_phone_number_and_campaign_builders():
    number = PhoneNumber(id="pn_1", display_phone_number="+15550001111", quality_rating="RED",
                         messaging_tier="TIER_250")
    data = waba_events.phone_number_quality_changed(number=number, event="DOWNGRADE", previous_quality_rating="YELLOW",
                                                    previous_messaging_tier="TIER_1K")
    assert event_data_errors("phone_number.quality_changed", data) == []
    stats = {k: 0 for k in ("total", "pending", "queued", "sent", "delivered", "read", "failed", "skipped_opted_out",
                            "skipped_invalid", "expired", "canceled")}
    data = campaign_events.campaign_completed(campaign=Campaign(id="cmp_1", name="May"), stats=stats, completed_at=T)
    assert event_data_errors("campaign.completed", data) == []
    assert data["completed_at"] == "2026-05-23T14:22:17Z"


# --- the docs come from the registry ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_openapi_document_lists_every_public_type_with_its_schema():
    from apps.core.schema import event_component_name

    schema = Client().get("/api/v1/schema", HTTP_ACCEPT="application/json").json()
    assert schema["openapi"].startswith("3.1")
    assert set(schema["webhooks"]) == API_MD_EVENT_TYPES
    components = schema["components"]["schemas"]
    for name in API_MD_EVENT_TYPES:
        component = components[event_component_name(name)]
        documented = component["properties"]
        assert documented["type"] == {"type": "string", "const": name}
        assert set(component["required"]) >= {"id", "type", "created_at", "data"}
        assert documented["data"] == {k: v for k, v in event_type_get(name).schema.items() if k != "$schema"}
        body = schema["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{event_component_name(name)}"}
        assert body["example"]["data"] == event_type_get(name).example
    request = components["SubscriptionInputRequest"]["properties"]["events"]["items"]
    assert request["enum"] == [*sorted(API_MD_EVENT_TYPES), "*"]
