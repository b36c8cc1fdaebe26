"""The inbox draws sent templates as the customer sees them (the server's template_view): a limited-time offer
with its header image, expiry, copy-code and dynamic URL buttons; a media-card carousel; an authentication
template with its code; and a flow's answers as a form. Screenshots (1440×900 and 390×844) go to var/screenshots/
and, when it exists, /work/notes/shots/meta2/."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import pytest

from apps.contacts.models import Contact
from apps.conversations.models import Message
from apps.core import services as core_services
from apps.message_templates.models import MessageTemplate
from tests.browser.conftest import SCREENSHOTS
from tests.conversations.inbox_support import PASSWORD, make_agent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WABA_ID, PNID, DISPLAY = "880000000000777", "990000000000777", "+15550783777"
EXPIRES = 1924992000000
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200"><rect width="400" height="200" '
       'fill="#0f766e"/><text x="200" y="115" font-size="48" fill="#fff" text-anchor="middle" '
       'font-family="sans-serif">{}</text></svg>')


def _image(label: str) -> str:
    return "data:image/svg+xml," + quote(SVG.format(label))


def _wait_db(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _shots(page, name):
    targets = [SCREENSHOTS]
    notes = Path("/work/notes/shots/meta2")
    if notes.parent.exists():
        notes.mkdir(parents=True, exist_ok=True)
        targets.append(notes)
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        time.sleep(0.3)
        for target in targets:
            page.screenshot(path=str(target / f"{name}_{width}x{height}.png"))
    page.set_viewport_size({"width": 1440, "height": 900})


def _card(i):
    return {"components": [
        {"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Pot " + "ABC"[i] + ": {{1}} off"},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Buy", "url": "https://shop.example.com/p/{{1}}"}]}]}


def _templates(workspace, number):
    def make(name, category, components):
        return MessageTemplate.objects.create(workspace=workspace, waba=number.waba, name=name, language="en",
                                              category=category, status="APPROVED", components=components)

    return {
        "offer": make("flash_sale", "MARKETING", [
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Pots 20% off!", "has_expiration": True}},
            {"type": "BODY", "text": "Hi {{1}}, your code is below."},
            {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "SAVE20"},
                                            {"type": "URL", "text": "Shop now",
                                             "url": "https://shop.example.com/o/{{1}}"}]}]),
        "carousel": make("picks", "MARKETING", [{"type": "BODY", "text": "Picks for you, {{1}}"},
                                                {"type": "CAROUSEL", "cards": [_card(0), _card(1), _card(2)]}]),
        "auth": make("login_code", "AUTHENTICATION", [
            {"type": "BODY", "text": "{{1}} is your verification code."},
            {"type": "FOOTER", "text": "This code expires in 10 minutes."},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}]),
    }


def _send(workspace, conversation, contact, number, template, content, body):
    return Message.objects.create(workspace=workspace, conversation=conversation, contact=contact,
                                  phone_number=number, direction="outbound", type="template", status="read",
                                  to_phone=contact.phone, template=template, template_category=template.category,
                                  body=body, content={"name": template.name, "language": "en", **content},
                                  sent_by="campaign")


def test_offer_carousel_authentication_and_flow_answers_are_drawn_as_the_customer_sees_them(served, browser):
    from apps.wabas.services import waba_connect

    base, fake = served
    workspace = core_services.workspace_create(name="Acme Pots", slug="acme-meta2-cards")
    number = waba_connect(workspace=workspace, meta_waba_id=WABA_ID, phone_number_id=PNID,
                          display_phone_number=DISPLAY, access_token="EAAG-browser", name="Acme")
    fake.register_number(phone_number_id=PNID, waba_id=WABA_ID, display_phone_number=DISPLAY)
    make_agent(workspace, username="cards_agent", role="agent")
    fake.inject_inbound(phone_number_id=PNID, from_phone="+16505550177", name="Ana", message={
        "type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": {
            "name": "flow", "body": "Sent",
            "response_json": '{"flow_token":"ft-9","pot_size":"Large","delivery_date":"2026-12-12"}'}}})
    assert _wait_db(lambda: Message.objects.filter(workspace=workspace, direction="inbound").exists())
    contact = Contact.objects.get(workspace=workspace)
    conversation = Message.objects.get(workspace=workspace).conversation
    tpl = _templates(workspace, number)
    _send(workspace, conversation, contact, number, tpl["offer"], {"variables": ["Ana"], "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": _image("SALE")}}]},
        {"type": "limited_time_offer", "parameters": [{"type": "limited_time_offer", "limited_time_offer": {
            "expiration_time_ms": EXPIRES}}]},
        {"type": "button", "sub_type": "copy_code", "index": "0", "parameters": [
            {"type": "coupon_code", "coupon_code": "ANA20"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "ord-1"}]}]},
        "Hi Ana, your code is below.")
    _send(workspace, conversation, contact, number, tpl["carousel"], {"variables": ["Ana"], "components": [
        {"type": "carousel", "cards": [{"card_index": i, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": _image("Pot " + "ABC"[i])}}]},
            {"type": "body", "parameters": [{"type": "text", "text": f"{10 * (i + 1)}%"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": f"sku{i}"}]}]}
            for i in range(3)]}]}, "Picks for you, Ana")
    _send(workspace, conversation, contact, number, tpl["auth"], {"variables": ["482913"], "components": [
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "482913"}]}]},
        "482913 is your verification code.")

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/inbox/")
    page.fill("#id_username", "cards_agent")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/inbox/")
    page.wait_for_selector(".conv:has-text('Ana')", timeout=15000)
    page.click(".conv:has-text('Ana')")
    page.wait_for_selector(".flow-form:has-text('Large')")
    offer = page.wait_for_selector(".tpl-card:has(.tpl-offer)")
    text = offer.inner_text()
    assert "Pots 20% off!" in text and "Offer ends" in text and "Hi Ana, your code is below." in text
    assert offer.query_selector("img.tpl-media").get_attribute("src").startswith("data:image/svg")
    assert offer.query_selector(".tpl-copy").get_attribute("data-code") == "ANA20"
    assert offer.query_selector("a.tpl-btn").get_attribute("href") == "https://shop.example.com/o/ord-1"
    cells = page.query_selector_all(".tpl-cards .tpl-cell")
    assert len(cells) == 3 and "Pot B: 20% off" in cells[1].inner_text()
    assert cells[2].query_selector("a.tpl-btn").get_attribute("href") == "https://shop.example.com/p/sku2"
    auth = page.wait_for_selector(".tpl-card:has-text('is your verification code')")
    assert auth.query_selector(".tpl-copy").get_attribute("data-code") == "482913"
    assert "This code expires in 10 minutes." in auth.inner_text()
    page.evaluate("document.querySelector('.tpl-card:has(.tpl-offer)').scrollIntoView()")
    _shots(page, "inbox_template_cards")
    page.evaluate("document.querySelector('.tpl-cards').scrollIntoView()")
    _shots(page, "inbox_template_carousel")
    page.evaluate("Array.from(document.querySelectorAll('.tpl-card')).pop().scrollIntoView()")
    _shots(page, "inbox_template_authentication")
    context.close()
