"""Auto-replies through the receive road: welcome, keyword (exact/contains, language), out-of-office
with business hours, time zone and holidays; never on a stop word, never on our own messages, only
inside the window, at most one per conversation per cooldown. Plus the API and its validation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from apps.conversations.models import AutoReplyRule, Message
from apps.conversations.services import autoreplies as ar
from tests.conversations.inbox_support import make_agent, session_client
from tests.webhooks.inbound_support import connect_number, deliver, text_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def number(workspace):
    return connect_number(workspace)


def inbound(django_capture_on_commit_callbacks, *, wamid: str, body: str, wa_id: str = "16505551234"):
    with django_capture_on_commit_callbacks(execute=True):
        outcome = deliver(text_payload(wamid=wamid, body=body, wa_id=wa_id, timestamp=int(time.time())))
    assert outcome.status == "processed", outcome.error


def auto_replies():
    return list(Message.objects.filter(sent_by="auto_reply").order_by("created_at").values_list("body", flat=True))


def test_welcome_answers_the_first_message_of_a_new_contact_only(workspace, number, django_capture_on_commit_callbacks):
    ar.auto_reply_rule_create(workspace=workspace, kind="welcome", reply_text="Hi! We'll be right with you.")
    inbound(django_capture_on_commit_callbacks, wamid="wamid.A1", body="hello")
    assert auto_replies() == ["Hi! We'll be right with you."]
    reply = Message.objects.get(sent_by="auto_reply")
    assert reply.direction == "outbound" and reply.status == "queued" and reply.to_phone == "+16505551234"
    inbound(django_capture_on_commit_callbacks, wamid="wamid.A2", body="anyone?")
    assert auto_replies() == ["Hi! We'll be right with you."]


def test_keyword_exact_and_contains(workspace, number, django_capture_on_commit_callbacks, settings):
    ar.auto_reply_settings_set(workspace=workspace, cooldown_seconds=0)
    ar.auto_reply_rule_create(workspace=workspace, kind="keyword", keywords=["Opening hours"], match="exact",
                              reply_text="Mon-Fri 9-17")
    ar.auto_reply_rule_create(workspace=workspace, kind="keyword", keywords=["price"], match="contains",
                              reply_text="See reach.example/pricing")
    inbound(django_capture_on_commit_callbacks, wamid="wamid.K1", body="what are your opening hours?")
    assert auto_replies() == []  # exact means the whole message
    inbound(django_capture_on_commit_callbacks, wamid="wamid.K2", body="  Opening HOURS! ")
    inbound(django_capture_on_commit_callbacks, wamid="wamid.K3", body="the price, please")
    inbound(django_capture_on_commit_callbacks, wamid="wamid.K4", body="priceless")  # a word, not a substring
    assert auto_replies() == ["Mon-Fri 9-17", "See reach.example/pricing"]


def test_keyword_language(workspace, number, django_capture_on_commit_callbacks):
    from apps.contacts.models import Contact

    ar.auto_reply_settings_set(workspace=workspace, cooldown_seconds=0)
    ar.auto_reply_rule_create(workspace=workspace, kind="keyword", keywords=["info"], language="es",
                              reply_text="Hola, aquí la información")
    ar.auto_reply_rule_create(workspace=workspace, kind="keyword", keywords=["info"], language="en",
                              reply_text="Hello, here is the info")
    inbound(django_capture_on_commit_callbacks, wamid="wamid.L1", body="info")
    Contact.objects.filter(phone="+16505551234").update(custom_fields={"language": "es_MX"})
    inbound(django_capture_on_commit_callbacks, wamid="wamid.L2", body="info")
    # Unknown language: the first by priority/creation; then Spanish for the Spanish speaker.
    assert auto_replies() == ["Hola, aquí la información", "Hola, aquí la información"]
    Contact.objects.filter(phone="+16505551234").update(custom_fields={"language": "en_US"})
    inbound(django_capture_on_commit_callbacks, wamid="wamid.L3", body="info")
    assert auto_replies()[-1] == "Hello, here is the info"


def test_never_answers_a_stop_word(workspace, number, django_capture_on_commit_callbacks):
    ar.auto_reply_rule_create(workspace=workspace, kind="welcome", reply_text="Welcome!")
    ar.auto_reply_rule_create(workspace=workspace, kind="keyword", keywords=["stop"], reply_text="bot says hi")
    inbound(django_capture_on_commit_callbacks, wamid="wamid.S1", body="STOP")
    assert auto_replies() == []


def test_cooldown_allows_one_per_conversation_per_period(workspace, number, django_capture_on_commit_callbacks):
    ar.auto_reply_settings_set(workspace=workspace, cooldown_seconds=600)
    ar.auto_reply_rule_create(workspace=workspace, kind="keyword", keywords=["help"], reply_text="Help is coming")
    inbound(django_capture_on_commit_callbacks, wamid="wamid.C1", body="help")
    inbound(django_capture_on_commit_callbacks, wamid="wamid.C2", body="help!!")
    assert auto_replies() == ["Help is coming"]
    third = Message.objects.filter(direction="inbound").latest("created_at")
    later = datetime.now(UTC) + timedelta(seconds=601)
    # Still inside the 24 h window 10 minutes later, and past the cooldown: answers again.
    assert ar.auto_reply_for_inbound(message_id=third.pk, contact_created=False, consent_keyword=None, now=later)
    assert auto_replies() == ["Help is coming", "Help is coming"]


def test_only_inside_the_window_and_never_on_our_own_messages(workspace, number, django_capture_on_commit_callbacks):
    ar.auto_reply_rule_create(workspace=workspace, kind="keyword", keywords=["hello"], reply_text="Hi there")
    ar.auto_reply_settings_set(workspace=workspace, cooldown_seconds=0)
    with django_capture_on_commit_callbacks(execute=False):
        deliver(text_payload(wamid="wamid.W1", body="hello", timestamp=int(time.time())))
    message = Message.objects.get(direction="inbound")
    too_late = datetime.now(UTC) + timedelta(hours=25)
    assert ar.auto_reply_for_inbound(message_id=message.pk, contact_created=False, consent_keyword=None,
                                     now=too_late) is None
    assert auto_replies() == []
    reply = ar.auto_reply_for_inbound(message_id=message.pk, contact_created=False, consent_keyword=None)
    assert reply is not None
    # An auto-reply (outbound) can never trigger another one: no loops.
    assert ar.auto_reply_for_inbound(message_id=reply.pk, contact_created=False, consent_keyword=None) is None
    assert auto_replies() == ["Hi there"]


def test_out_of_office_with_business_hours_time_zone_and_holidays(workspace):
    hours = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    config = ar.auto_reply_settings_set(workspace=workspace, timezone="Europe/Berlin", business_hours=hours,
                                        holidays=["2026-12-25"])
    # 2026-11-23 is a Monday. 08:30 UTC is 09:30 in Berlin (CET, UTC+1).
    assert ar.is_within_business_hours(config=config, at=datetime(2026, 11, 23, 8, 30, tzinfo=UTC)) is True
    assert ar.is_within_business_hours(config=config, at=datetime(2026, 11, 23, 7, 30, tzinfo=UTC)) is False
    assert ar.is_within_business_hours(config=config, at=datetime(2026, 11, 23, 16, 30, tzinfo=UTC)) is False
    assert ar.is_within_business_hours(config=config, at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC)) is False  # Sunday
    assert ar.is_within_business_hours(config=config, at=datetime(2026, 12, 25, 10, 0, tzinfo=UTC)) is False  # holiday
    ooo = ar.auto_reply_rule_create(workspace=workspace, kind="out_of_office", reply_text="We're closed")
    choose = {"workspace": workspace, "text": "hi", "contact_created": False, "contact_language": ""}
    assert ar.auto_reply_choose(**choose, at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC)) == ooo
    assert ar.auto_reply_choose(**choose, at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) is None


def test_out_of_office_answers_through_the_road(workspace, number, django_capture_on_commit_callbacks):
    ar.auto_reply_settings_set(workspace=workspace, timezone="UTC", business_hours={}, holidays=[
        datetime.now(UTC).date().isoformat()])
    ar.auto_reply_rule_create(workspace=workspace, kind="out_of_office", reply_text="Closed today")
    ar.auto_reply_rule_create(workspace=workspace, kind="welcome", reply_text="Welcome!")
    inbound(django_capture_on_commit_callbacks, wamid="wamid.O1", body="hi")
    assert auto_replies() == ["Closed today"]  # one reply, out-of-office before welcome


def test_api_rules_and_settings(workspace):
    client = session_client(make_agent(workspace), workspace)
    r = client.post("/api/v1/auto-replies", {"kind": "keyword", "keywords": ["Hours"], "reply_text": "9-5"},
                    content_type="application/json")
    assert r.status_code == 201 and r.json()["keywords"] == ["hours"] and r.json()["match"] == "contains"
    bad = client.post("/api/v1/auto-replies", {"kind": "keyword", "reply_text": "x"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "keywords"
    assert AutoReplyRule.objects.count() == 1
    listed = client.get("/api/v1/auto-replies").json()
    assert [x["id"] for x in listed["data"]] == [r.json()["id"]]
    assert listed["settings"]["cooldown_seconds"] == 3600
    bad_tz = client.patch("/api/v1/auto-replies/settings", {"timezone": "Mars/Olympus"}, content_type="application/json")
    assert bad_tz.status_code == 400 and bad_tz.json()["error"]["details"]["field"] == "timezone"
    bad_hours = client.patch("/api/v1/auto-replies/settings", {"business_hours": {"mon": [["18:00", "09:00"]]}},
                             content_type="application/json")
    assert bad_hours.status_code == 400
    ok = client.patch("/api/v1/auto-replies/settings", {"timezone": "Asia/Kolkata", "cooldown_seconds": 60,
                                                        "business_hours": {"mon": [["09:00", "18:00"]]}},
                      content_type="application/json")
    assert ok.status_code == 200 and ok.json()["timezone"] == "Asia/Kolkata"
    r2 = client.patch(f"/api/v1/auto-replies/{r.json()['id']}", {"enabled": False}, content_type="application/json")
    assert r2.json()["enabled"] is False
    assert client.delete(f"/api/v1/auto-replies/{r.json()['id']}").status_code == 204
    assert AutoReplyRule.objects.count() == 0


def test_admin_forms_validate_like_the_api(workspace):
    from apps.conversations.admin.inbox import AutoReplyRuleForm, AutoReplySettingsForm

    bad = AutoReplyRuleForm(data={"workspace": workspace.pk, "kind": "keyword", "keywords": "[]", "match": "contains",
                                  "reply_text": "x", "priority": 100, "enabled": True})
    assert not bad.is_valid() and "keyword" in str(bad.errors)
    good = AutoReplyRuleForm(data={"workspace": workspace.pk, "kind": "keyword", "keywords": '["  Price! "]',
                                   "match": "contains", "reply_text": "x", "priority": 100, "enabled": True})
    assert good.is_valid(), good.errors
    assert good.save().keywords == ["price"]
    hours = AutoReplySettingsForm(data={"workspace": workspace.pk, "cooldown_seconds": 60, "timezone": "Nowhere/Land",
                                        "business_hours": "{}", "holidays": "[]"})
    assert not hours.is_valid()
