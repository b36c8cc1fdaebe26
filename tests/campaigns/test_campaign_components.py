"""Campaigns take `components` (Meta's send shape) with per-recipient values: header media, a dynamic URL
button, a copy code, a limited-time offer's expiry and carousel cards, each string taking `{{contact.…}}` like
`variables`. Created through the campaign API (checked against the approved template: a bad one is a 400 naming
the field), filled per recipient at hand-out, sent through the one writer and dispatcher — the Graph request
fakemeta receives is asserted body by body."""

from __future__ import annotations

import pytest

from apps.billing.services import wallet_topup
from apps.campaigns import services
from apps.campaigns.models import CampaignRecipient
from apps.contacts.models import Contact
from apps.contacts.services import consent_record
from apps.conversations.models import Message
from apps.conversations.services import dispatch
from apps.message_templates.models import MessageTemplate
from apps.providers import registry
from apps.providers.simulator.testing import start_fakemeta_in_thread
from tests.conversations.send_support import live_number, redis_keys_clear
from tests.webhooks.inbound_support import META_PHONE_ID, META_WABA_ID

pytestmark = pytest.mark.django_db

EXPIRES = 1924992000000
OFFER = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1n"]}},
    {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Ends soon!", "has_expiration": True}},
    {"type": "BODY", "text": "Hi {{1}}, your code is inside", "example": {"body_text": [["Ana"]]}},
    {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "SAVE20"},
                                    {"type": "URL", "text": "Shop", "url": "https://shop.example.com/o/{{1}}",
                                     "example": ["https://shop.example.com/o/1"]}]},
]
OFFER_COMPONENTS = [
    {"type": "header", "parameters": [{"type": "image", "image": {
        "link": "https://cdn.example.com/{{contact.custom_fields.picture|sale}}.jpg"}}]},
    {"type": "limited_time_offer", "parameters": [{"type": "limited_time_offer", "limited_time_offer": {
        "expiration_time_ms": "{{contact.custom_fields.expires}}"}}]},
    {"type": "button", "sub_type": "copy_code", "index": "0", "parameters": [
        {"type": "coupon_code", "coupon_code": "{{contact.custom_fields.code}}"}]},
    {"type": "button", "sub_type": "url", "index": "1", "parameters": [
        {"type": "text", "text": "{{contact.external_id}}"}]},
]


def _card(i):
    return {"components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1n"]}},
        {"type": "BODY", "text": f"Card {i} {{{{1}}}} off", "example": {"body_text": [["10%"]]}},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Buy", "url": "https://shop.example.com/p/{{1}}",
                                         "example": ["https://shop.example.com/p/1"]}]}]}


CAROUSEL = [{"type": "BODY", "text": "Picks for you"}, {"type": "CAROUSEL", "cards": [_card(0), _card(1)]}]


def _carousel_components(first_link="https://cdn.example.com/a.jpg"):
    return [{"type": "carousel", "cards": [
        {"card_index": i, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": link}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "{{contact.custom_fields.discount|5%}}"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [
                {"type": "text", "text": f"{sku}-{{{{contact.external_id}}}}"}]}]}
        for i, (link, sku) in enumerate([(first_link, "A1"), ("https://cdn.example.com/b.jpg", "B2")])]}]


@pytest.fixture
def fake(workspace, settings):
    redis_keys_clear()
    server = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, pair_limit_enabled=False,
                                      enforce_window=False)
    server.register_number(phone_number_id=META_PHONE_ID, waba_id=META_WABA_ID, display_phone_number="15550783881")
    settings.META_GRAPH_URL = server.base_url
    registry.reset_for_tests()
    wallet_topup(workspace=workspace, amount="100.0000", note="test")
    yield server
    server.stop()
    registry.reset_for_tests()


def _template(number, name, components, category="MARKETING", fake=None):
    if fake is not None:  # approved at Meta too: fakemeta checks the name, language and body parameters
        body = next(c["text"] for c in components if c["type"] == "BODY")
        fake.seed_template(waba_id=META_WABA_ID, name=name, language="en", category=category, body_text=body,
                           components=components)
    return MessageTemplate.objects.create(workspace=number.workspace, waba=number.waba, name=name, language="en",
                                          category=category, status="APPROVED", components=components)


def _people(workspace, rows):
    out = []
    for phone, name, external_id, custom_fields in rows:
        c = Contact.objects.create(workspace=workspace, phone=phone, name=name, external_id=external_id,
                                   custom_fields=custom_fields)
        consent_record(contact=c, status="opt_in", source="api")
        out.append(c)
    return out


def _run(live_api, number, body):
    audience = live_api.post("/api/v1/audiences", {"name": "all", "filter": {}}, format="json").json()
    r = live_api.post("/api/v1/campaigns", {"name": "c", "audience_id": audience["id"],
                                            "phone_number_id": number.pk, **body}, format="json")
    assert r.status_code == 201, r.content
    campaign_id = r.json()["id"]
    assert live_api.post(f"/api/v1/campaigns/{campaign_id}/start").status_code == 200
    services.campaign_step(campaign_id=campaign_id)
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
    return r.json(), campaign_id


def _graph_by_to(fake) -> dict:
    return {r["body"]["to"]: r["body"]["template"] for r in fake.requests("/messages")}


def test_offer_campaign_fills_header_media_expiry_copy_code_and_url_button_per_recipient(workspace, live_api, fake):
    number = live_number(workspace)
    _template(number, "flash_sale", OFFER, fake=fake)
    ana, bo, cy = _people(workspace, [
        ("+447700900001", "Ana Lee", "ord-1", {"code": "ANA20", "expires": str(EXPIRES), "picture": "ana"}),
        ("+447700900002", "Bo", "ord-2", {"code": "BO15", "expires": str(EXPIRES + 1)}),
        ("+447700900003", "Cy", "ord-3", {"expires": str(EXPIRES)}),  # no code: skipped, not sent blank
    ])
    created, campaign_id = _run(live_api, number, {
        "template": {"name": "flash_sale", "language": "en", "components": OFFER_COMPONENTS},
        "variables": {"1": "{{contact.first_name}}"}})
    assert created["components"] == OFFER_COMPONENTS
    statuses = dict(CampaignRecipient.objects.filter(campaign_id=campaign_id).values_list("contact_id", "status"))
    assert statuses == {ana.pk: "queued", bo.pk: "queued", cy.pk: "skipped_missing_variable"}
    graph = _graph_by_to(fake)
    assert set(graph) == {"+447700900001", "+447700900002"}
    assert graph["+447700900001"] == {"name": "flash_sale", "language": {"code": "en"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/ana.jpg"}}]},
        {"type": "limited_time_offer", "parameters": [{"type": "limited_time_offer", "limited_time_offer": {
            "expiration_time_ms": EXPIRES}}]},
        {"type": "button", "sub_type": "copy_code", "index": "0", "parameters": [
            {"type": "coupon_code", "coupon_code": "ANA20"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "ord-1"}]}]}
    bo_parts = graph["+447700900002"]["components"]
    assert bo_parts[1]["parameters"][0]["image"]["link"] == "https://cdn.example.com/sale.jpg"  # the default
    assert bo_parts[2]["parameters"][0]["limited_time_offer"]["expiration_time_ms"] == EXPIRES + 1
    assert (bo_parts[3]["parameters"][0]["coupon_code"], bo_parts[4]["parameters"][0]["text"]) == ("BO15", "ord-2")
    sent = Message.objects.get(contact=ana)
    assert sent.status == "sent" and sent.content["components"][2]["parameters"][0]["coupon_code"] == "ANA20"
    assert sent.body == "Hi Ana, your code is inside"
    # The inbox's thread shows it as Ana sees it (template_view).
    [view] = [m["template_view"] for m in live_api.get(
        f"/api/v1/conversations/{sent.conversation_id}/messages").json()["data"] if m["id"] == sent.pk]
    assert view["header"] == {"format": "IMAGE", "link": "https://cdn.example.com/ana.jpg", "filename": None}
    assert view["offer"] == {"text": "Ends soon!", "expires_at_ms": EXPIRES}
    assert view["body"] == "Hi Ana, your code is inside"
    assert [(b["type"], b.get("code") or b.get("url")) for b in view["buttons"]] == [
        ("COPY_CODE", "ANA20"), ("URL", "https://shop.example.com/o/ord-1")]


def test_carousel_campaign_sends_every_card_with_its_media_and_button_per_recipient(workspace, live_api, fake):
    number = live_number(workspace)
    _template(number, "picks", CAROUSEL, fake=fake)
    (ana,) = _people(workspace, [("+447700900011", "Ana", "u7", {"discount": "20%"})])
    _, campaign_id = _run(live_api, number, {"template": {"name": "picks", "language": "en"},
                                             "components": _carousel_components()})
    [body] = fake.requests("/messages")
    cards = body["body"]["template"]["components"][0]["cards"]
    assert [c["card_index"] for c in cards] == [0, 1]
    assert cards[0]["components"] == [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/a.jpg"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "20%"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A1-u7"}]}]
    assert cards[1]["components"][2]["parameters"][0]["text"] == "B2-u7"
    assert Message.objects.get(contact=ana).status == "sent"


def test_authentication_campaign_sends_the_code_in_body_and_otp_button(workspace, live_api, fake):
    number = live_number(workspace)
    _template(number, "login_code", [
        {"type": "BODY", "text": "{{1}} is your verification code.", "add_security_recommendation": True},
        {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}],
        category="AUTHENTICATION", fake=fake)
    (ana,) = _people(workspace, [("+447700900021", "Ana", "", {"otp": "482913"})])
    Contact.objects.create(workspace=workspace, bsuid="US.13491208655302741918")  # no phone: no auth template
    _, campaign_id = _run(live_api, number, {
        "template": {"name": "login_code", "language": "en"}, "variables": {"1": "{{contact.custom_fields.otp}}"},
        "components": [{"type": "button", "sub_type": "url", "index": "0", "parameters": [
            {"type": "text", "text": "{{contact.custom_fields.otp}}"}]}]})
    [body] = fake.requests("/messages")
    assert body["body"]["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "482913"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "482913"}]}]
    assert sorted(CampaignRecipient.objects.filter(campaign_id=campaign_id).values_list("status", flat=True)) == [
        "queued", "skipped_invalid"]


@pytest.mark.parametrize("name, components, field", [
    ("flash_sale", OFFER_COMPONENTS[1:], "template.components"),  # the image header is missing
    ("flash_sale", [*OFFER_COMPONENTS[:2], {**OFFER_COMPONENTS[2], "parameters": [
        {"type": "coupon_code", "coupon_code": "WAY-TOO-LONG-CODE"}]}, OFFER_COMPONENTS[3]],
     "template.components[2].parameters[0].coupon_code"),
    ("flash_sale", [OFFER_COMPONENTS[0], *OFFER_COMPONENTS[2:]], "template.components"),  # no expiry
    ("flash_sale", [*OFFER_COMPONENTS[:3], {**OFFER_COMPONENTS[3], "sub_type": "quick_reply"}],
     "template.components[3].sub_type"),
    ("flash_sale", [*OFFER_COMPONENTS, {"type": "button", "sub_type": "url", "index": "5", "parameters": []}],
     "template.components[4].index"),
    ("picks", [{"type": "carousel", "cards": _carousel_components()[0]["cards"][:1]}],
     "template.components[0].cards"),
    ("picks", _carousel_components(first_link="http://cdn.example.com/a.jpg"),
     "template.components[0].cards[0].components[0].parameters[0].image.link"),
    ("flash_sale", [{**OFFER_COMPONENTS[0], "parameters": [{"type": "image", "image": {
        "link": "https://x.example/{{customer.name}}"}}]}, *OFFER_COMPONENTS[1:]],
     "template.components[0].parameters[0].image.link"),
])
def test_components_that_break_the_template_s_rules_are_a_400_naming_the_field(workspace, live_api, name, components,
                                                                              field):
    number = live_number(workspace)
    _template(number, "flash_sale", OFFER)
    _template(number, "picks", CAROUSEL)
    audience = live_api.post("/api/v1/audiences", {"name": "all", "filter": {}}, format="json").json()
    variables = {"1": "{{contact.name}}"} if name == "flash_sale" else None
    r = live_api.post("/api/v1/campaigns", {
        "name": "c", "audience_id": audience["id"], "phone_number_id": number.pk,
        "template": {"name": name, "language": "en", "components": components},
        **({"variables": variables} if variables else {})}, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["details"]["field"] == field
    assert not live_api.get("/api/v1/campaigns").json()["data"]


def test_sandbox_campaign_with_components_goes_through_the_simulator(workspace, sandbox_api):
    sandbox = workspace.sandbox
    number = sandbox.phone_numbers.get()
    _template(number, "flash_sale", OFFER)
    _people(sandbox, [("+447700900031", "Ana", "ord-9", {"code": "SIM20", "expires": str(EXPIRES)})])
    _, campaign_id = _run(sandbox_api, number, {
        "template": {"name": "flash_sale", "language": "en", "components": OFFER_COMPONENTS},
        "variables": {"1": "{{contact.first_name}}"}})
    sent = Message.objects.get(campaign_id=campaign_id)
    assert sent.status == "sent" and sent.provider_message_id.startswith("wamid.")
    assert sent.content["components"][2]["parameters"][0]["coupon_code"] == "SIM20"
