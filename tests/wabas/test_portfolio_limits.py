"""Per-portfolio messaging limits (Meta, since Oct 2025): business_capability_update sets the limit of every
number of the business portfolio; the campaign tier check counts recipients across the portfolio's numbers;
a THROUGHPUT_UPGRADE raises throughput_mps — payloads from the simulator's builders through /webhooks/meta."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from apps.campaigns import selectors as campaign_selectors
from apps.contacts.models import Contact
from apps.conversations.models import Message
from apps.core.models import Event
from apps.providers.simulator.engine import SimulatorEngine
from apps.wabas.models import PhoneNumber
from apps.wabas.services import waba_connect
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.webhooks.inbound_support import deliver, signed_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio(workspace, live_api):
    a = waba_connect(workspace=workspace, meta_waba_id="111", phone_number_id="1001", display_phone_number="+15550001111",
                     access_token="EAAG-a", name="A")
    b = waba_connect(workspace=workspace, meta_waba_id="222", phone_number_id="2002", display_phone_number="+15550002222",
                     access_token="EAAG-b", name="B")
    for number in (a, b):
        r = live_api.patch(f"/api/v1/wabas/{number.waba_id}", {"business_id": "9001"}, format="json")
        assert r.status_code == 200 and r.json()["business_id"] == "9001"
    return a, b


def _tiers(a, b) -> set[str]:
    return set(PhoneNumber.objects.filter(pk__in=[a.pk, b.pk]).values_list("messaging_tier", flat=True))


def _engine(a):
    engine = SimulatorEngine()
    engine.register_number(phone_number_id="1001", waba_id="111", display_phone_number="+15550001111")
    return engine


def test_business_capability_update_sets_the_limit_of_every_portfolio_number(workspace, portfolio):
    a, b = portfolio
    payload = _engine(a).business_capability_payload(waba_id="111", max_daily_conversations_per_business="TIER_10K")
    assert signed_post(Client(), payload).status_code == 200
    inbound.inbound_webhook_process(webhook_id=InboundWebhook.objects.get().pk)
    assert _tiers(a, b) == {"TIER_10K"}
    events = Event.objects.filter(type="phone_number.quality_changed").order_by("sequence")
    assert sorted(e.data["phone_number_id"] for e in events) == sorted([a.pk, b.pk])
    assert {e.data["event"] for e in events} == {"BUSINESS_CAPABILITY_UPDATE"}
    # A number as a count of users maps to the tier it reaches.
    deliver(_engine(a).business_capability_payload(waba_id="222", max_daily_conversations_per_business=2000))
    assert _tiers(a, b) == {"TIER_2K"}


def test_the_campaign_tier_check_counts_the_whole_portfolio(workspace, portfolio, settings):
    a, b = portfolio
    PhoneNumber.objects.filter(pk__in=[a.pk, b.pk]).update(messaging_tier="TIER_250")
    settings.CAMPAIGN_TIER_LIMITS = {**settings.CAMPAIGN_TIER_LIMITS, "TIER_250": 3}
    for i in range(2):  # two templates from number B today
        c = Contact.objects.create(workspace=workspace, phone=f"+1555300000{i}")
        Message.objects.create(workspace=workspace, phone_number=b, contact=c, type="template", status="sent",
                               to_phone=c.phone)
    a.refresh_from_db()
    assert campaign_selectors.tier_headroom(phone_number=a, now=timezone.now()) == 1  # shared with B
    # A WABA outside the portfolio has its own.
    from apps.wabas.services import waba_business_set

    waba_business_set(waba=b.waba, business_id="")
    a.refresh_from_db()
    assert campaign_selectors.tier_headroom(phone_number=a, now=timezone.now()) == 3


def test_throughput_upgrade_raises_throughput_mps(workspace, portfolio, settings):
    a, _ = portfolio
    payload = _engine(a).phone_quality_payload(phone_number_id="1001", event="THROUGHPUT_UPGRADE")
    deliver(payload)
    a.refresh_from_db()
    assert a.throughput_mps == settings.UPGRADED_THROUGHPUT_MPS == 1000
    event = Event.objects.get(type="phone_number.quality_changed")
    assert event.data["throughput_mps"] == 1000 and event.data["event"] == "THROUGHPUT_UPGRADE"


def test_a_tier_change_on_one_number_moves_the_portfolio(workspace, portfolio):
    a, b = portfolio
    deliver(_engine(a).phone_quality_payload(phone_number_id="1001", event="ONBOARDING", current_limit="TIER_100K"))
    assert _tiers(a, b) == {"TIER_100K"}


# --- fakemeta: the portfolio's shared limit enforced, announced by business_capability_update ----------------


def test_fakemeta_portfolio_limit_is_shared_by_two_numbers_and_the_campaign_tier_check_keeps_inside_it(
        workspace, live_api, settings):
    """fakemeta puts both WABAs in one portfolio (3 users a day) and announces it with business_capability_update
    through /webhooks/meta; two templates from number B use 2 of the 3; a campaign on number A to 3 people sends
    1 and holds 2 (deferred), so fakemeta never refuses; a 4th person from B is refused by fakemeta (131064)
    and explained."""
    from apps.billing.services import wallet_topup
    from apps.campaigns import services as campaigns
    from apps.campaigns.models import CampaignRecipient
    from apps.contacts.services import consent_record
    from apps.conversations.services import dispatch
    from apps.conversations.services.sending import message_send
    from apps.core.models import API_SCOPES
    from apps.core.tenancy import Tenant
    from apps.providers import registry
    from apps.providers.simulator.testing import start_fakemeta_in_thread
    from tests.conversations.send_support import redis_keys_clear, template

    redis_keys_clear()
    fake = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, pair_limit_enabled=False,
                                    enforce_window=False)
    try:
        fake.register_number(phone_number_id="1001", waba_id="111", display_phone_number="15550001111")
        fake.register_number(phone_number_id="2002", waba_id="222", display_phone_number="15550002222")
        settings.META_GRAPH_URL = fake.base_url
        registry.reset_for_tests()
        settings.CAMPAIGN_TIER_LIMITS = {**settings.CAMPAIGN_TIER_LIMITS, "TIER_250": 3}
        a = waba_connect(workspace=workspace, meta_waba_id="111", phone_number_id="1001",
                         display_phone_number="+15550001111", access_token="EAAG-a", name="A")
        b = waba_connect(workspace=workspace, meta_waba_id="222", phone_number_id="2002",
                         display_phone_number="+15550002222", access_token="EAAG-b", name="B")
        for number in (a, b):
            assert live_api.patch(f"/api/v1/wabas/{number.waba_id}", {"business_id": "9001"},
                                  format="json").status_code == 200
        wallet_topup(workspace=workspace, amount="100.0000", note="test")
        payloads = fake.portfolio_set(business_id="9001", waba_ids=["111", "222"], limit="TIER_250", users=3)
        assert [p["entry"][0]["changes"][0]["field"] for p in payloads] == ["business_capability_update"] * 2
        for payload in payloads:
            assert signed_post(Client(), payload).status_code == 200
        for row in InboundWebhook.objects.order_by("pk"):
            inbound.inbound_webhook_process(webhook_id=row.pk)
        assert _tiers(a, b) == {"TIER_250"}
        for n in (a, b):
            fake.seed_template(waba_id=n.waba.meta_waba_id, name="promo", language="en", category="MARKETING",
                               body_text="Hi {{1}}")
            template(workspace, n.waba, name="promo", category="MARKETING", body="Hi {{1}}")
        people = []
        for i in range(6):
            c = Contact.objects.create(workspace=workspace, phone=f"+1555300100{i}", name=f"P{i}")
            consent_record(contact=c, status="opt_in", source="api")
            people.append(c)
        tenant = Tenant(workspace=workspace, scopes=frozenset(API_SCOPES))
        for c in people[:2]:  # two people reached from number B today
            message_send(tenant=tenant, data={"to": c.phone, "phone_number_id": b.pk,
                                              "template": {"name": "promo", "language": "en", "variables": ["x"]}})
        dispatch.dispatch_drain(phone_number_id=b.pk, budget_seconds=3)
        assert fake.portfolio_state("9001")["reached"] == 2
        audience = campaigns.audience_create(workspace=workspace, name="three", filter={})
        from apps.campaigns.models import AudienceMember

        audience.kind = "list"
        audience.save(update_fields=["kind"])
        AudienceMember.objects.bulk_create([AudienceMember(audience=audience, contact=c) for c in people[2:5]])
        campaign = campaigns.campaign_create(tenant=tenant, data={
            "name": "c", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
            "phone_number_id": a.pk, "variables": {"1": "{{contact.name}}"}})
        campaigns.campaign_start(campaign=campaign)
        campaigns.campaign_step(campaign_id=campaign.pk)
        dispatch.dispatch_drain(phone_number_id=a.pk, budget_seconds=3)
        statuses = sorted(CampaignRecipient.objects.filter(campaign=campaign).values_list("status", flat=True))
        assert statuses == ["deferred", "deferred", "queued"]
        assert Message.objects.get(campaign_id=campaign.pk).status == "sent"
        assert fake.portfolio_state("9001") == {"wabas": ["111", "222"], "limit": 3, "tier": "TIER_250", "reached": 3}
        # fakemeta enforces the shared limit: a 4th person, from number B, is refused and explained.
        extra = message_send(tenant=tenant, data={"to": people[5].phone, "phone_number_id": b.pk,
                                                  "template": {"name": "promo", "language": "en", "variables": ["x"]}})
        dispatch.dispatch_drain(phone_number_id=b.pk, budget_seconds=3)
        extra.refresh_from_db()
        assert (extra.status, extra.upstream_code) == ("failed", 131064)
        assert live_api.get(f"/api/v1/messages/{extra.pk}").json()["error"]["reason"] == "messaging_limit_reached"
    finally:
        fake.stop()
        registry.reset_for_tests()
