"""Meta's Marketing Messages API: a per-WABA switch sends MARKETING templates to
/{phone-number-id}/marketing_messages (Meta's OAS request shape) and everything else to /messages; click
tracking webhooks become `link.clicked` — against fakemeta, through the simulator and /webhooks/meta."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.conversations.models import Message
from apps.conversations.services import dispatch
from apps.core.models import API_SCOPES, Event
from apps.core.tenancy import Tenant
from apps.providers import registry
from apps.providers.meta_cloud.payloads import marketing_messages_payload, send_endpoint
from apps.providers.simulator.testing import start_fakemeta_in_thread
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.conversations.send_support import contact, live_number, redis_keys_clear, template
from tests.webhooks.inbound_support import FIXTURES, META_PHONE_ID, META_WABA_ID, fixture, signed_post

pytestmark = pytest.mark.django_db


def test_the_request_shape_is_meta_s_own_example():
    oas = json.loads((FIXTURES / "send" / "oas_marketing_message_with_product_policy.json").read_text())
    plain = {k: v for k, v in oas.items() if k not in ("product_policy", "message_activity_sharing")}
    assert marketing_messages_payload(plain) == oas
    assert send_endpoint(oas) == "marketing_messages" and send_endpoint(plain) == "messages"


def test_switch_routes_marketing_templates_to_marketing_messages(workspace, settings, live_api):
    redis_keys_clear()
    fake = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, pair_limit_enabled=False)
    try:
        fake.register_number(phone_number_id=META_PHONE_ID, waba_id=META_WABA_ID, display_phone_number="15550783881")
        for name, category in (("promo", "MARKETING"), ("receipt", "UTILITY")):
            fake.seed_template(waba_id=META_WABA_ID, name=name, language="en", category=category,
                               body_text="Hi {{1}}, order {{2}}.")
        settings.META_GRAPH_URL = fake.base_url
        registry.reset_for_tests()
        number = live_number(workspace)
        for name, category in (("promo", "MARKETING"), ("receipt", "UTILITY")):
            template(workspace, number.waba, name=name, category=category)
        r = live_api.patch(f"/api/v1/wabas/{number.waba_id}", {"marketing_messages_enabled": True}, format="json")
        assert r.status_code == 200 and r.json()["marketing_messages_enabled"] is True
        from apps.conversations.services.sending import message_send

        tenant = Tenant(workspace=workspace, scopes=frozenset(API_SCOPES))
        contact(workspace, "+16505551234")  # opted in: marketing goes only to those who did
        ids = [message_send(tenant=tenant, data={"to": "+16505551234", "template": {
            "name": name, "language": "en", "variables": ["Ann", "7"]}}).pk for name in ("promo", "receipt")]
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
        assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"sent"}
        requests = fake.requests()
        assert [r["path"].rsplit("/", 1)[1] for r in requests] == ["marketing_messages", "messages"]
        mm, plain = requests[0]["body"], requests[1]["body"]
        assert (mm["product_policy"], mm["message_activity_sharing"], mm["template"]["name"]) == (
            "CLOUD_API_FALLBACK", True, "promo")
        assert "product_policy" not in plain and plain["template"]["name"] == "receipt"
        # Off again: MARKETING goes to /messages.
        live_api.patch(f"/api/v1/wabas/{number.waba_id}", {"marketing_messages_enabled": False}, format="json")
        message_send(tenant=tenant, data={"to": "+16505551234", "template": {
            "name": "promo", "language": "en", "variables": ["Ann", "8"]}})
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
        assert fake.requests()[-1]["path"].endswith("/messages")
    finally:
        fake.stop()
        registry.reset_for_tests()


def test_fakemeta_refuses_a_utility_template_on_marketing_messages(settings):
    fake = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, pair_limit_enabled=False)
    try:
        fake.register_number(phone_number_id=META_PHONE_ID, waba_id=META_WABA_ID, display_phone_number="15550783881")
        fake.seed_template(waba_id=META_WABA_ID, name="receipt", language="en", category="UTILITY", body_text="Hi")
        body = marketing_messages_payload({"messaging_product": "whatsapp", "recipient_type": "individual",
                                           "to": "+16505551234", "type": "template",
                                           "template": {"name": "receipt", "language": {"code": "en"}}})
        result = fake.call(fake.engine.send, phone_number_id=META_PHONE_ID, body=body, endpoint="marketing_messages")
        assert result.status == 400 and result.body["error"]["code"] == 131009
        misrouted = fake.call(fake.engine.send, phone_number_id=META_PHONE_ID, body=body, endpoint="messages")
        assert misrouted.body["error"]["code"] == 100
    finally:
        fake.stop()


def test_sandbox_marketing_send_through_the_simulator(workspace, sandbox_api):
    sandbox = workspace.sandbox
    number = sandbox.phone_numbers.get()
    template(sandbox, number.waba, category="MARKETING")
    contact(sandbox, "+16505551234")  # opted in: marketing goes only to those who did
    assert sandbox_api.patch(f"/api/v1/wabas/{number.waba_id}", {"marketing_messages_enabled": True},
                             format="json").status_code == 200
    r = sandbox_api.post("/api/v1/messages", {"to": "+16505551234", "template": {
        "name": "order_update", "language": "en", "variables": ["Ann", "7"]}}, format="json")
    assert r.status_code == 202
    redis_keys_clear()
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
    m = Message.objects.get(pk=r.json()["id"])
    assert m.status == "sent" and m.provider_message_id.startswith("wamid.")


def test_a_click_webhook_through_the_endpoint_is_link_clicked(workspace):
    number = live_number(workspace)
    m = Message.objects.create(workspace=workspace, phone_number=number, type="template", status="delivered",
                               provider_message_id="wamid.MM1", to_phone="+16505551234", campaign_id="cmp_9")
    from apps.providers.simulator.engine import SimulatorEngine

    engine = SimulatorEngine()
    engine.register_number(phone_number_id=META_PHONE_ID, waba_id=META_WABA_ID, display_phone_number="15550783881")
    payload = engine.link_click_payload(phone_number_id=META_PHONE_ID, wamid="wamid.MM1", wa_id="16505551234")
    assert signed_post(Client(), payload).status_code == 200
    inbound.inbound_webhook_process(webhook_id=InboundWebhook.objects.get().pk)
    event = Event.objects.get(type="link.clicked")
    assert (event.data["message_id"], event.data["campaign_id"], event.data["source"]) == (m.pk, "cmp_9", "meta")
    assert event.data["meta"]["click_component"] == "cta"
    # Meta's documented example names no message: still a click, tied to nothing.
    assert signed_post(Client(), fixture("mm_link_click.json")).status_code == 200
    inbound.inbound_webhook_process(webhook_id=InboundWebhook.objects.latest("pk").pk)
    bare = Event.objects.filter(type="link.clicked").latest("sequence")
    assert bare.data["message_id"] is None and bare.data["meta"]["tracking_token"] == "example_token"
