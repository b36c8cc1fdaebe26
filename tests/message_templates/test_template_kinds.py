"""Template kinds of 2025–2026: limited-time offers and media-card carousels validated locally by Meta's
rules, and templates created from Meta's template library (`library_template_name`) — the Graph request
fakemeta receives and the sandbox simulator."""

from __future__ import annotations

import pytest

from apps.message_templates.models import MessageTemplate
from apps.message_templates.validation import template_validate
from apps.providers import registry
from apps.providers.simulator.testing import start_fakemeta_in_thread
from tests.conversations.send_support import live_number
from tests.webhooks.inbound_support import META_PHONE_ID, META_WABA_ID

pytestmark = pytest.mark.django_db


def _card(fmt="IMAGE", body="Card {{1}}", buttons=("QUICK_REPLY",)):
    return {"components": [
        {"type": "HEADER", "format": fmt, "example": {"header_handle": ["4::aW1n"]}},
        {"type": "BODY", "text": body, "example": {"body_text": [["A"]]}},
        {"type": "BUTTONS", "buttons": [{"type": b, "text": "Go", **({"url": "https://x.example/a"} if b == "URL" else {})}
                                        for b in buttons]}]}


def _errors(data) -> dict[str, str]:
    return {e["field"]: e["message"] for e in template_validate(data)[1]}


def test_carousel_rules():
    base = {"name": "spring", "language": "en", "category": "MARKETING"}
    ok = {**base, "components": [{"type": "BODY", "text": "Our picks"},
                                 {"type": "CAROUSEL", "cards": [_card(), _card()]}]}
    assert _errors(ok) == {}
    one = {**base, "components": [{"type": "BODY", "text": "x"}, {"type": "CAROUSEL", "cards": [_card()]}]}
    assert "components[1].cards" in _errors(one)
    mixed = {**base, "components": [{"type": "BODY", "text": "x"},
                                    {"type": "CAROUSEL", "cards": [_card(), _card(fmt="VIDEO")]}]}
    assert _errors(mixed)["components[1].cards"] == "Every card's header must have the same format."
    buttons = {**base, "components": [{"type": "BODY", "text": "x"}, {"type": "CAROUSEL", "cards": [
        _card(), _card(buttons=("URL",))]}]}
    assert _errors(buttons)["components[1].cards"] == "Every card must have the same buttons, in the same order."
    long_body = {**base, "components": [{"type": "BODY", "text": "x"}, {"type": "CAROUSEL", "cards": [
        _card(body="y" * 161), _card()]}]}
    assert "components[1].cards[0].body" in _errors(long_body)
    utility = {**ok, "category": "UTILITY"}
    assert _errors(utility)["components[1].type"] == "Carousels are for MARKETING templates only."


def test_limited_time_offer_rules():
    base = {"name": "flash", "language": "en", "category": "MARKETING"}
    lto = {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Ends soon!", "has_expiration": True}}
    body = {"type": "BODY", "text": "Use {{1}} today", "example": {"body_text": [["CODE"]]}}
    copy = {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "SAVE20"},
                                           {"type": "URL", "text": "Shop", "url": "https://x.example/{{1}}",
                                            "example": ["https://x.example/a"]}]}
    assert _errors({**base, "components": [lto, body, copy]}) == {}
    long = {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "x" * 17}}
    assert "components[0].limited_time_offer.text" in _errors({**base, "components": [long, body]})
    footer = {"type": "FOOTER", "text": "Terms apply"}
    assert _errors({**base, "components": [lto, body, footer]})["components[0].type"].startswith(
        "A limited-time offer template cannot have a footer")
    assert "components[0].type" in _errors({**base, "category": "UTILITY", "components": [lto, body]})


def test_library_template_is_created_at_meta_without_components(workspace, live_api, settings):
    fake = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET)
    try:
        fake.register_number(phone_number_id=META_PHONE_ID, waba_id=META_WABA_ID, display_phone_number="15550783881")
        settings.META_GRAPH_URL = fake.base_url
        registry.reset_for_tests()
        number = live_number(workspace)
        inputs = [{"type": "URL", "url": {"base_url": "https://shop.example.com/orders/{{1}}",
                                          "url_suffix_example": "https://shop.example.com/orders/123"}}]
        r = live_api.post(f"/api/v1/wabas/{number.waba_id}/templates", {
            "name": "order_shipped", "language": "en_US", "category": "UTILITY",
            "library_template_name": "shipment_confirmation_4", "library_template_button_inputs": inputs},
            format="json")
        assert r.status_code == 201, r.content
        [call] = fake.requests("/message_templates")
        assert call["body"] == {"name": "order_shipped", "language": "en_US", "category": "UTILITY",
                                "parameter_format": "POSITIONAL", "library_template_name": "shipment_confirmation_4",
                                "library_template_button_inputs": inputs}
        tpl = MessageTemplate.objects.get(name="order_shipped")
        assert tpl.status == "PENDING" and any(c["type"] == "BODY" for c in tpl.components)
        bad = live_api.post(f"/api/v1/wabas/{number.waba_id}/templates", {
            "name": "promo_lib", "language": "en", "category": "MARKETING", "library_template_name": "x_1"},
            format="json")
        assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "category"
        assert len(fake.requests("/message_templates")) == 1
    finally:
        fake.stop()
        registry.reset_for_tests()


def test_sandbox_library_authentication_template(workspace, sandbox_api):
    number = workspace.sandbox.phone_numbers.get()
    r = sandbox_api.post(f"/api/v1/wabas/{number.waba_id}/templates", {
        "name": "login_code", "language": "en", "category": "AUTHENTICATION",
        "library_template_name": "verification_code_1"}, format="json")
    assert r.status_code == 201, r.content
    tpl = MessageTemplate.objects.get(workspace=workspace.sandbox, name="login_code")
    assert [c["type"] for c in tpl.components] == ["BODY", "BUTTONS"]
    assert tpl.components[1]["buttons"][0]["otp_type"] == "COPY_CODE"
