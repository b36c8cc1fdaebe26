"""POST /api/v1/sandbox/inbound and /api/v1/sandbox/contacts/{id}/age-window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound

pytestmark = pytest.mark.django_db


def _process_all() -> int:
    return inbound.inbound_webhooks_sweep()


def test_sandbox_inbound_goes_through_the_stored_webhook_road(workspace, sandbox_api):
    response = sandbox_api.post("/api/v1/sandbox/inbound", {"from": "+1 (650) 555-1234", "type": "text",
                                                            "text": {"body": "Hi there"}, "name": "Ana"},
                                format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["wamid"].startswith("wamid.")
    assert body["from"] == "+16505551234"
    row = InboundWebhook.objects.get()
    assert row.source == "simulator"
    assert Message.objects.count() == 0  # processing is asynchronous, like live traffic
    assert _process_all() == 1
    message = Message.objects.get()
    assert message.provider_message_id == body["wamid"]
    assert message.workspace == workspace.sandbox
    assert message.body == "Hi there"
    assert message.contact.name == "Ana"
    assert message.contact.last_inbound_at is not None


def test_sandbox_inbound_any_type_and_inferred_type(workspace, sandbox_api):
    response = sandbox_api.post("/api/v1/sandbox/inbound", {
        "from": "+16505551234",
        "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}}},
        format="json")
    assert response.status_code == 202, response.content
    assert response.json()["type"] == "interactive"
    response = sandbox_api.post("/api/v1/sandbox/inbound", {
        "from": "+16505551234", "type": "location", "location": {"latitude": 38.7, "longitude": -9.1}},
        format="json")
    assert response.status_code == 202
    _process_all()
    assert sorted(Message.objects.values_list("type", "body")) == [("interactive", "Yes please"),
                                                                   ("location", "38.7,-9.1")]


def test_stop_via_sandbox_opts_out(workspace, sandbox_api):
    sandbox_api.post("/api/v1/sandbox/inbound", {"from": "+16505551234", "text": {"body": "STOP"}}, format="json")
    _process_all()
    assert Contact.objects.get(workspace=workspace.sandbox).opted_in is False


@pytest.mark.parametrize("payload,field", [
    ({"type": "text", "text": {"body": "x"}}, "from"),
    ({"from": "not a phone", "type": "text", "text": {"body": "x"}}, "from"),
    ({"from": "+16505551234", "type": "text", "text": {"body": ""}}, "text.body"),
    ({"from": "+16505551234", "type": "text"}, "text"),
    ({"from": "+16505551234", "type": "fax", "fax": {}}, "type"),
    ({"from": "+16505551234"}, "type"),
])
def test_sandbox_inbound_validation(workspace, sandbox_api, payload, field):
    response = sandbox_api.post("/api/v1/sandbox/inbound", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"
    assert response.json()["error"]["details"]["field"] == field
    assert InboundWebhook.objects.count() == 0


def test_live_key_gets_403(workspace, live_api):
    response = live_api.post("/api/v1/sandbox/inbound", {"from": "+16505551234", "text": {"body": "x"}},
                             format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "PERMISSION_DENIED"
    assert InboundWebhook.objects.count() == 0


def test_scope_messages_send_required(workspace, api_client_for):
    client = api_client_for(workspace, sandbox=True, scopes=["messages:read"])
    response = client.post("/api/v1/sandbox/inbound", {"from": "+16505551234", "text": {"body": "x"}},
                           format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_SCOPE"


def test_age_window_moves_last_inbound_into_the_past(workspace, sandbox_api):
    sandbox_api.post("/api/v1/sandbox/inbound", {"from": "+16505551234", "text": {"body": "hi"}}, format="json")
    _process_all()
    contact = Contact.objects.get(workspace=workspace.sandbox)
    response = sandbox_api.post(f"/api/v1/sandbox/contacts/{contact.pk}/age-window", {"hours": 25}, format="json")
    assert response.status_code == 200, response.content
    contact.refresh_from_db()
    age = timezone.now() - contact.last_inbound_at
    assert timedelta(hours=25) <= age < timedelta(hours=25, minutes=1)
    conversation = Conversation.objects.get(contact=contact)
    assert conversation.last_inbound_at == contact.last_inbound_at
    assert response.json()["last_inbound_at"] is not None
    assert response.json()["window_expires_at"] is None  # closed: policy.window_expires_at's answer
    # The window is closed now: a free-form reply is refused before anything is stored.
    refused = sandbox_api.post("/api/v1/messages", {"to": "+16505551234", "text": {"body": "late"}}, format="json")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "OUTSIDE_24H_WINDOW"
    assert Message.objects.filter(direction="outbound").count() == 0


def test_age_window_never_moves_forward(workspace, sandbox_api):
    sandbox_api.post("/api/v1/sandbox/inbound", {"from": "+16505551234", "text": {"body": "hi"}}, format="json")
    _process_all()
    contact = Contact.objects.get(workspace=workspace.sandbox)
    sandbox_api.post(f"/api/v1/sandbox/contacts/{contact.pk}/age-window", {"hours": 30}, format="json")
    sandbox_api.post(f"/api/v1/sandbox/contacts/{contact.pk}/age-window", {"hours": 2}, format="json")
    contact.refresh_from_db()
    assert timezone.now() - contact.last_inbound_at >= timedelta(hours=30)


def test_age_window_for_live_contact_or_foreign_id(workspace, other_workspace, live_api, api_client_for):
    live_contact = Contact.objects.create(workspace=workspace, phone="+16505550001",
                                          last_inbound_at=timezone.now())
    response = live_api.post(f"/api/v1/sandbox/contacts/{live_contact.pk}/age-window", {"hours": 25},
                             format="json")
    assert response.status_code == 403
    foreign = Contact.objects.create(workspace=other_workspace.sandbox, phone="+16505550002",
                                     last_inbound_at=timezone.now())
    client = api_client_for(workspace, sandbox=True)
    response = client.post(f"/api/v1/sandbox/contacts/{foreign.pk}/age-window", {"hours": 25}, format="json")
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert timezone.now() - foreign.last_inbound_at < timedelta(minutes=1)


def test_age_window_scope_and_validation(workspace, api_client_for):
    contact = Contact.objects.create(workspace=workspace.sandbox, phone="+16505550003")
    no_scope = api_client_for(workspace, sandbox=True, scopes=["contacts:read"])
    assert no_scope.post(f"/api/v1/sandbox/contacts/{contact.pk}/age-window", {"hours": 25},
                         format="json").status_code == 403
    client = api_client_for(workspace, sandbox=True)
    response = client.post(f"/api/v1/sandbox/contacts/{contact.pk}/age-window", {"hours": -1}, format="json")
    assert response.status_code == 400
    response = client.post(f"/api/v1/sandbox/contacts/{contact.pk}/age-window", {"hours": 25}, format="json")
    assert response.status_code == 200
    assert response.json()["last_inbound_at"] is None  # never wrote: still no window


def test_sandbox_roundtrip_reply_reaches_read_through_the_same_road(workspace, sandbox_api):
    from apps.conversations.services.dispatch import dispatch_drain

    sandbox_api.post("/api/v1/sandbox/inbound", {"from": "+16505551234", "text": {"body": "hi"}}, format="json")
    _process_all()
    reply = sandbox_api.post("/api/v1/messages", {"to": "+16505551234", "text": {"body": "hello!"}}, format="json")
    assert reply.status_code == 202, reply.content
    message_id = reply.json()["id"]
    number = Message.objects.get(pk=message_id).phone_number
    dispatch_drain(phone_number_id=number.pk, budget_seconds=1)
    assert Message.objects.get(pk=message_id).status == "sent"
    for _ in range(10):  # the simulator delays its statuses via available_at; let time pass
        InboundWebhook.objects.filter(processed_at__isnull=True).update(available_at=timezone.now())
        _process_all()
        if Message.objects.get(pk=message_id).status == "read":
            break
    message = Message.objects.get(pk=message_id)
    assert message.status == "read"
    assert message.delivered_at is not None
    assert InboundWebhook.objects.filter(source="simulator", processed_at__isnull=True).count() == 0
