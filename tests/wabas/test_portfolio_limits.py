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
