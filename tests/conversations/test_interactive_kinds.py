"""Interactive kinds beyond buttons and lists: cta_url, location_request_message and WhatsApp Flows
(navigate and data_exchange, with a flow token) — validated locally, the Graph request fakemeta receives, the
sandbox simulator, and a flow's answers tied back to their flow and exported as CSV."""

from __future__ import annotations

import copy
import csv
import io

import pytest

from apps.contacts.models import Contact
from apps.conversations.models import Message
from apps.conversations.services import dispatch
from apps.core.models import Event
from apps.providers import registry
from apps.providers.simulator.testing import start_fakemeta_in_thread
from apps.webhooks.services import inbound
from tests.conversations.send_support import contact, live_number, redis_keys_clear
from tests.webhooks.inbound_support import META_PHONE_ID, META_WABA_ID, deliver, fixture

pytestmark = pytest.mark.django_db

CTA = {"kind": "cta_url", "body": "See the offer", "display_text": "Open shop", "url": "https://shop.example.com/x",
       "footer": "Acme"}
LOCATION = {"kind": "location_request", "body": "Where should we deliver?"}
FLOW_NAV = {"kind": "flow", "body": "Book a table", "flow_id": "1234567890", "flow_cta": "Book now",
            "flow_token": "ft-abc", "screen": "WELCOME", "data": {"party": 2}}
FLOW_DX = {"kind": "flow", "body": "Sign up", "flow_name": "signup", "flow_cta": "Sign up", "mode": "draft",
           "flow_action": "data_exchange"}


def test_the_graph_bodies_of_cta_url_location_request_and_flows(workspace, settings):
    redis_keys_clear()
    fake = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, pair_limit_enabled=False,
                                    enforce_window=False)
    try:
        fake.register_number(phone_number_id=META_PHONE_ID, waba_id=META_WABA_ID, display_phone_number="15550783881")
        settings.META_GRAPH_URL = fake.base_url
        registry.reset_for_tests()
        number = live_number(workspace)
        c = contact(workspace)
        from apps.conversations.services.sending import message_send_internal

        ids = [message_send_internal(workspace=workspace, phone_number=number, contact=c, message_type="interactive",
                                     content=body, sent_by="api").pk for body in (CTA, LOCATION, FLOW_NAV, FLOW_DX)]
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
        assert list(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == ["sent"] * 4
        bodies = {r["body"]["interactive"]["type"]: r["body"]["interactive"] for r in fake.requests("/messages")}
        assert bodies["cta_url"] == {"type": "cta_url", "body": {"text": "See the offer"}, "footer": {"text": "Acme"},
                                     "action": {"name": "cta_url", "parameters": {
                                         "display_text": "Open shop", "url": "https://shop.example.com/x"}}}
        assert bodies["location_request_message"] == {"type": "location_request_message",
                                                      "body": {"text": "Where should we deliver?"},
                                                      "action": {"name": "send_location"}}
        flows = [r["body"]["interactive"] for r in fake.requests("/messages")
                 if r["body"]["interactive"]["type"] == "flow"]
        flows.sort(key=lambda f: "flow_name" in f["action"]["parameters"])  # sends run concurrently
        assert flows[0]["action"] == {"name": "flow", "parameters": {
            "flow_message_version": "3", "flow_token": "ft-abc", "flow_cta": "Book now", "mode": "published",
            "flow_action": "navigate", "flow_id": "1234567890",
            "flow_action_payload": {"screen": "WELCOME", "data": {"party": 2}}}}
        dx = flows[1]["action"]["parameters"]
        assert (dx["flow_name"], dx["mode"], dx["flow_action"]) == ("signup", "draft", "data_exchange")
        assert dx["flow_token"].startswith("ft_") and "flow_action_payload" not in dx
    finally:
        fake.stop()
        registry.reset_for_tests()


@pytest.mark.parametrize("body, field", [
    ({**CTA, "display_text": "x" * 21}, "interactive.display_text"),
    ({**CTA, "url": "http://shop.example.com"}, "interactive.url"),
    ({**FLOW_NAV, "flow_cta": "Book 📅"}, "interactive.flow_cta"),
    ({**FLOW_NAV, "flow_cta": "x" * 31}, "interactive.flow_cta"),
    ({k: v for k, v in FLOW_NAV.items() if k != "screen"}, "interactive.screen"),
    ({**FLOW_NAV, "flow_name": "also"}, "interactive.flow_id"),
    ({**FLOW_DX, "screen": "X"}, "interactive.screen"),
    ({**FLOW_NAV, "mode": "live"}, "interactive.mode"),
])
def test_local_validation_names_the_field_and_writes_nothing(workspace, live_api, body, field):
    live_number(workspace)
    contact(workspace)
    r = live_api.post("/api/v1/messages", {"to": "+15557654321", "interactive": body}, format="json")
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == field
    assert not Message.objects.exists()


def test_sandbox_sends_each_kind_through_the_simulator(workspace, sandbox_api):
    sandbox_api.post("/api/v1/sandbox/inbound", {"from": "+16505551234", "text": {"body": "hi"}}, format="json")
    inbound.inbound_webhooks_sweep()
    ids = []
    for body in (CTA, LOCATION, FLOW_NAV):
        r = sandbox_api.post("/api/v1/messages", {"to": "+16505551234", "interactive": body}, format="json")
        assert r.status_code == 202, r.content
        ids.append(r.json()["id"])
    redis_keys_clear()
    dispatch.dispatch_drain(phone_number_id=Message.objects.get(pk=ids[0]).phone_number_id, budget_seconds=3)
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"sent"}


def test_flow_answers_are_tied_to_their_flow_and_exported_as_csv(workspace, live_api):
    number = live_number(workspace)
    c = Contact.objects.create(workspace=workspace, phone="+16505551234", name="Ana")
    Message.objects.create(workspace=workspace, phone_number=number, contact=c, type="interactive", status="sent",
                           direction="outbound", provider_message_id="wamid.FLOWMSG", to_phone=c.phone,
                           content={**FLOW_NAV, "flow_token": "tok"})
    deliver(fixture("inbound_media_voice_sticker_nfm.json"))  # Meta's shape: context.id = the flow message
    second = copy.deepcopy(fixture("inbound_media_voice_sticker_nfm.json"))
    for change in second["entry"][0]["changes"]:
        for m in change["value"].get("messages", []):
            m["id"] = m["id"] + "-2"
            if m["type"] == "interactive":
                m.pop("context")  # no quote: found by its flow token
                m["interactive"]["nfm_reply"]["response_json"] = '{"flow_token":"tok","a":2,"note":"=SUM(A1)"}'
    deliver(second)
    answers = Message.objects.filter(content__flow_response__flow_id="1234567890").order_by("created_at")
    assert [a.content["flow_response"]["fields"] for a in answers] == [{"a": 1}, {"a": 2, "note": "=SUM(A1)"}]
    event = Event.objects.filter(type="message.inbound", data__message_id=answers[0].pk).get()
    assert event.data["flow_response"]["flow_id"] == "1234567890"
    listed = live_api.get("/api/v1/flows/1234567890/responses").json()
    assert [x["fields"] for x in listed["data"]] == [{"a": 1}, {"a": 2, "note": "=SUM(A1)"}]
    r = live_api.get("/api/v1/flows/1234567890/responses", HTTP_ACCEPT="text/csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0] == ["message_id", "contact_id", "phone", "bsuid", "name", "received_at", "flow_token", "a", "note"]
    bsuid = Contact.objects.get().bsuid or ""  # Meta's payload names the BSUID too
    assert [row[2:5] + row[6:] for row in rows[1:]] == [["+16505551234", bsuid, "Ana", "tok", "1", ""],
                                                        ["+16505551234", bsuid, "Ana", "tok", "2", "'=SUM(A1)"]]
    assert live_api.get("/api/v1/flows/999/responses").status_code == 404
