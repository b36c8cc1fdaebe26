"""Tracked links: `{{track:URL}}` in a campaign variable, a message body and a URL-button parameter ->
per-recipient unguessable short links; /l/<code> redirects (302) and records the click; campaign stats
count clicks and unique clicks; link.clicked; an unknown code is a plain 404."""

from __future__ import annotations

import random
import re

import pytest
from django.test import Client

from apps.campaigns import selectors, services
from apps.conversations.models import Message
from apps.core.models import API_SCOPES, Event
from apps.core.tenancy import Tenant
from apps.links.models import LinkClick, TrackedLink
from tests.campaigns.factories import make_contacts, make_number, make_template

pytestmark = pytest.mark.django_db

SALE = "https://shop.example/sale?utm=wa"
SHORT = re.compile(r"http://testserver/l/([A-Za-z0-9_-]{22})")
PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.REACH_PUBLIC_URL = "http://testserver"


def test_campaign_links_100_recipients_30_visits_from_20(workspace, settings, live_api):
    settings.CAMPAIGN_BATCH_SIZE = 100
    number = make_number(workspace)
    make_template(number, body="Hi {{1}}, the sale: {{2}}")
    make_contacts(workspace, 100)
    tenant = Tenant(workspace=workspace, scopes=frozenset(API_SCOPES))
    audience = services.audience_create(workspace=workspace, name="all", filter={})
    campaign = services.campaign_create(tenant=tenant, data={
        "name": "sale", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": {"1": "{{contact.name}}", "2": "{{track:" + SALE + "}}"}})
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    messages = list(Message.objects.filter(campaign_id=campaign.pk))
    assert len(messages) == 100
    codes = {}
    for m in messages:
        [code] = SHORT.findall(m.body)
        assert m.content["variables"][1] == f"http://testserver/l/{code}"
        codes[m.contact_id] = code
    assert len(set(codes.values())) == 100  # one per recipient
    assert TrackedLink.objects.filter(campaign_id=campaign.pk).count() == 100

    client = Client()
    clickers = random.Random(7).sample(sorted(codes), 20)
    visits = clickers + clickers[:10]  # 30 visits from 20 recipients
    for contact_id in visits:
        r = client.get(f"/l/{codes[contact_id]}", HTTP_USER_AGENT=PHONE_UA)
        assert (r.status_code, r["Location"]) == (302, SALE)
    stats = selectors.campaign_stats_with_clicks(campaign=campaign)
    assert (stats["clicks"], stats["unique_clicks"]) == (30, 20)
    api = live_api.get(f"/api/v1/campaigns/{campaign.pk}").json()["stats"]
    assert (api["clicks"], api["unique_clicks"], api["total"]) == (30, 20, 100)
    listed = live_api.get("/api/v1/campaigns").json()["data"][0]["stats"]
    assert (listed["clicks"], listed["unique_clicks"]) == (30, 20)
    clicked = Event.objects.filter(workspace=workspace, type="link.clicked")
    assert clicked.count() == 30 and sum(e.data["first_click"] for e in clicked) == 20
    assert set(LinkClick.objects.values_list("agent", flat=True)) == {"mobile"}


def test_body_and_url_button_links_and_the_api(workspace, live_api, settings):
    from tests.conversations.send_support import contact, live_number, template

    number = live_number(workspace)
    contact(workspace, "+15557654321")
    r = live_api.post("/api/v1/messages", {"to": "+15557654321", "text": {
        "body": "See {{track:" + SALE + "}} and again {{track:" + SALE + "}} or {{track:https://b.example/}}"}},
        format="json")
    assert r.status_code == 202, r.content
    m = Message.objects.get(pk=r.json()["id"])
    a, a2, b = SHORT.findall(m.body)
    assert a == a2 != b and m.content["body"] == m.body
    links = {lk.url: lk for lk in TrackedLink.objects.filter(message_id=m.pk)}
    assert set(links) == {SALE, "https://b.example/"} and links[SALE].contact_id == m.contact_id

    btn = template(workspace, number.waba, name="promo_btn", body="Hi {{1}}")
    btn.components = [*btn.components, {"type": "BUTTONS", "buttons": [  # a URL button ending in our /l/ + code
        {"type": "URL", "text": "See the sale", "url": "http://testserver/l/{{1}}"}]}]
    btn.save(update_fields=["components"])
    r = live_api.post("/api/v1/messages", {"to": "+15557654321", "template": {
        "name": "promo_btn", "language": "en", "variables": ["Ann"],
        "components": [{"type": "button", "sub_type": "url", "index": "0",
                        "parameters": [{"type": "text", "text": "{{track:" + SALE + "}}"}]}]}}, format="json")
    assert r.status_code == 202, r.content
    t = Message.objects.get(pk=r.json()["id"])
    code = t.content["components"][0]["parameters"][0]["text"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", code)  # the bare code: the button's base URL ends in /l/
    link = TrackedLink.objects.get(code=code)

    got = live_api.get(f"/api/v1/links/{link.pk}").json()
    assert (got["url"], got["short_url"], got["clicks"], got["message_id"]) == (
        SALE, f"http://testserver/l/{code}", 0, t.pk)
    Client().get(f"/l/{code}", HTTP_USER_AGENT="curl/8")
    assert live_api.get(f"/api/v1/links/{link.pk}").json()["clicks"] == 1
    assert LinkClick.objects.get().agent == "bot"


def test_unknown_code_bad_url_and_foreign_link(workspace, other_workspace, live_api, api_client_for):
    from tests.conversations.send_support import contact, live_number

    before = Event.objects.count()
    r = Client().get("/l/AAAAAAAAAAAAAAAAAAAAAA")
    assert r.status_code == 404 and r.content == b"Not found" and r["Content-Type"].startswith("text/plain")
    assert Client().post("/l/AAAAAAAAAAAAAAAAAAAAAA").status_code == 405
    assert Event.objects.count() == before and not LinkClick.objects.exists()

    live_number(workspace)
    contact(workspace, "+15557654321")
    r = live_api.post("/api/v1/messages", {"to": "+15557654321", "text": {"body": "{{track:javascript:alert(1)}}"}},
                      format="json")
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "text.body"
    assert not Message.objects.exists() and not TrackedLink.objects.exists()

    r = live_api.post("/api/v1/messages", {"to": "+15557654321", "text": {"body": "{{track:" + SALE + "}}"}},
                      format="json")
    link = TrackedLink.objects.get()
    assert api_client_for(other_workspace).get(f"/api/v1/links/{link.pk}").status_code == 404
