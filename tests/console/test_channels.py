"""Settings → Channels against fakemeta over a real socket: Embedded Signup's code exchange, WABA and number
discovery, registration and app subscription; the manual form; Settings → Auto-replies."""

from __future__ import annotations

import pytest
import requests

from apps.conversations.models import AutoReplyRule, AutoReplySettings, CannedResponse
from apps.core.crypto import decrypt_secret
from apps.providers import registry
from apps.providers.simulator.testing import TEST_APP_SECRET, start_fakemeta_in_thread
from apps.wabas.models import PhoneNumber, Waba
from tests.conversations.inbox_support import make_agent, session_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def fakemeta(settings):
    fake = start_fakemeta_in_thread(app_secret=TEST_APP_SECRET)
    settings.META_GRAPH_URL = fake.base_url
    settings.META_APP_SECRET = TEST_APP_SECRET
    settings.META_APP_ID = "1234567890"
    registry.reset_for_tests()
    yield fake
    registry.reset_for_tests()
    fake.stop()


@pytest.fixture
def owner(workspace):
    return make_agent(workspace, username="olivia", role="owner")


def _prepare(fake, code="CODE-1", waba="102290129340398", phone="106540352242922"):
    requests.post(f"{fake.base_url}/_admin/signup", timeout=5, json={
        "code": code, "waba_id": waba, "name": "Acme WABA",
        "phone_numbers": [{"id": phone, "display_phone_number": "+1 555-010-0999", "verified_name": "Acme"}],
    }).raise_for_status()


def test_embedded_signup_code_exchange_connects_registers_and_subscribes(workspace, owner, fakemeta):
    _prepare(fakemeta)
    client = session_client(owner, workspace)
    response = client.post("/settings/channels/signup", {"code": "CODE-1", "pin": "123456",
                                                         "waba_id": "102290129340398"})
    assert response.status_code == 302
    number = PhoneNumber.objects.get(workspace=workspace)
    assert (number.workspace, number.meta_phone_number_id, number.display_phone_number, number.verified_name,
            number.messaging_tier) == (workspace, "106540352242922", "+15550100999", "Acme", "TIER_1K")
    assert number.waba.meta_waba_id == "102290129340398"
    assert decrypt_secret(number.waba.access_token_encrypted).startswith("EAAG")
    state = requests.get(f"{fakemeta.base_url}/_admin/signup", timeout=5).json()
    assert state == {"registered": ["106540352242922"], "subscribed": ["102290129340398"]}
    page = client.get("/settings/channels/").content.decode()
    assert "+15550100999" in page and "Connected: +15550100999." in page
    # a code is good once: Meta refuses it, nothing more is written
    again = client.post("/settings/channels/signup", {"code": "CODE-1", "pin": "123456"}, follow=True)
    assert "Meta refused the signup" in again.content.decode()
    assert PhoneNumber.objects.filter(workspace=workspace).count() == 1


def test_embedded_signup_refuses_a_bad_pin_before_calling_meta(workspace, owner, fakemeta):
    _prepare(fakemeta)
    client = session_client(owner, workspace)
    client.post("/settings/channels/signup", {"code": "CODE-1", "pin": "12"})
    assert not Waba.objects.filter(workspace=workspace).exists()
    # the code was not spent
    client.post("/settings/channels/signup", {"code": "CODE-1", "pin": "654321"})
    assert PhoneNumber.objects.filter(workspace=workspace).count() == 1


def test_embedded_signup_is_refused_in_the_sandbox_and_for_agents(workspace, owner, fakemeta):
    _prepare(fakemeta)
    session_client(owner, workspace, sandbox=True).post("/settings/channels/signup",
                                                        {"code": "CODE-1", "pin": "123456"})
    agent = make_agent(workspace, username="ann", role="agent")
    assert session_client(agent, workspace).post("/settings/channels/signup",
                                                 {"code": "CODE-1", "pin": "123456"}).status_code == 403
    assert not Waba.objects.filter(workspace=workspace).exists()


def test_manual_connect_and_throughput(workspace, owner):
    client = session_client(owner, workspace)
    client.post("/settings/channels/manual", {"waba_id": "111", "phone_number_id": "222",
                                              "display_phone_number": "+15550101000", "access_token": "EAAG-x"})
    number = PhoneNumber.objects.get(workspace=workspace)
    client.post(f"/settings/numbers/{number.pk}/throughput", {"mps": "20"})
    number.refresh_from_db()
    assert number.throughput_mps == 20
    client.post(f"/settings/numbers/{number.pk}/throughput", {"mps": "0"})
    number.refresh_from_db()
    assert number.throughput_mps == 20


def test_auto_replies_business_hours_and_canned_responses(workspace, owner):
    client = session_client(owner, workspace)
    client.post("/settings/automation/hours", {"timezone": "America/Sao_Paulo", "mon_start": "09:00",
                                               "mon_end": "18:00", "cooldown_minutes": "30",
                                               "holidays": "2026-12-25"})
    config = AutoReplySettings.objects.get(workspace=workspace)
    assert (config.timezone, config.business_hours, config.cooldown_seconds, config.holidays) == (
        "America/Sao_Paulo", {"mon": [["09:00", "18:00"]]}, 1800, ["2026-12-25"])
    bad = client.post("/settings/automation/hours", {"timezone": "Mars/Base", "mon_start": "09:00",
                                                     "mon_end": "18:00"}, follow=True)
    assert "Unknown time zone" in bad.content.decode()
    config.refresh_from_db()
    assert config.timezone == "America/Sao_Paulo"
    client.post("/settings/automation/rule", {"kind": "keyword", "keywords": "price, cost", "match": "contains",
                                              "reply_text": "Prices: example.com/prices"})
    rule = AutoReplyRule.objects.get(workspace=workspace)
    assert (rule.keywords, rule.enabled) == (["price", "cost"], True)
    client.post(f"/settings/automation/rule/{rule.pk}")
    rule.refresh_from_db()
    assert rule.enabled is False
    client.post("/settings/automation/canned", {"shortcut": "thanks", "body": "Thank you!"})
    item = CannedResponse.objects.get(workspace=workspace)
    assert "/thanks" in client.get("/settings/automation/").content.decode()
    client.post(f"/settings/automation/canned/{item.pk}")
    client.post(f"/settings/automation/rule/{rule.pk}", {"action": "delete"})
    assert not CannedResponse.objects.exists() and not AutoReplyRule.objects.exists()
