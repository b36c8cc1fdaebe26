"""Every sender asks the one policy: each rule refuses each sender it applies to with the same error code,
and nothing is written. Fast forms of a rule (SQL guards and filters) are pinned to the policy's function.

Senders: the API send, the inbox reply, the internal send auto-replies and the opt-out confirmation use
(message_send_internal, sent_by=auto_reply), campaign creation, the campaign hand-out (a refused batch pauses
the campaign with the code as its reason; a refused recipient is skipped), the campaign preflight (reports
the refusal) and the SMS fallback (refused: no SMS, the code logged). Scheduled release re-checks nothing
(policy.py's docstring), so it has no row here."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.campaigns import services as campaign_services
from apps.campaigns.models import Campaign, CampaignRecipient
from apps.contacts.models import Contact
from apps.conversations import policy
from apps.conversations.models import Conversation, Message
from apps.conversations.services import inbox, sending
from apps.conversations.services.fallback import fallback_sms_create
from apps.core.errors import ApplicationError, InsufficientBalance
from apps.core.models import API_SCOPES
from apps.core.tenancy import Tenant
from apps.message_templates.models import MessageTemplate
from tests.conversations.send_support import TO, contact, live_number, template

NOW_OFFSET_HOURS = 1


@pytest.fixture
def world(workspace, live_api):
    number = live_number(workspace)
    person = contact(workspace, inbound_hours_ago=NOW_OFFSET_HOURS)
    utility = template(workspace, number.waba)
    marketing = template(workspace, number.waba, name="promo", category="MARKETING", body="Hi {{1}}, {{2}}!")
    conversation = Conversation.objects.create(workspace=workspace, contact=person, phone_number=number,
                                               state=Conversation.State.OPEN)
    return {"ws": workspace, "number": number, "contact": person, "utility": utility, "marketing": marketing,
            "conversation": conversation, "api": live_api}


# --- the rules: each arranges the world and names the payload that breaks it ------------------------------


def _no_sender(w):
    w["pin"] = "pn_nosuchnumber"
    w["number_override"] = None


def _template_paused(w):
    MessageTemplate.objects.filter(pk=w["utility"].pk).update(status="PAUSED")
    w["utility"].refresh_from_db()
    w["payload"] = {"type": "template", "template": {"name": "order_update", "language": "en",
                                                     "variables": ["Ann", "42"]}}


def _template_language(w):
    w["payload"] = {"type": "template", "template": {"name": "order_update", "language": "fr",
                                                     "variables": ["Ann", "42"]}}


def _template_variables(w):
    w["payload"] = {"type": "template", "template": {"name": "order_update", "language": "en",
                                                     "variables": ["Ann"]}}
    w["campaign_variables"] = {"1": "{{contact.name|x}}"}


def _outside_window(w):
    Contact.objects.filter(pk=w["contact"].pk).update(last_inbound_at=timezone.now() - timedelta(hours=30))
    w["contact"].refresh_from_db()


def _opted_out_marketing(w):
    Contact.objects.filter(pk=w["contact"].pk).update(opted_in=False)
    w["contact"].refresh_from_db()
    w["payload"] = {"type": "template", "template": {"name": "promo", "language": "en", "variables": ["Ann", "x"]}}
    w["campaign_template"] = "promo"


def _wallet(w):
    w["wallet_refuses"] = True


RULES = {
    "no_sender": (_no_sender, "PHONE_NOT_FOUND"),
    "template_not_approved": (_template_paused, "TEMPLATE_NOT_APPROVED"),
    "template_language": (_template_language, "TEMPLATE_LANGUAGE_MISMATCH"),
    "template_variables": (_template_variables, "TEMPLATE_VARIABLE_COUNT_MISMATCH"),
    "outside_window": (_outside_window, "OUTSIDE_24H_WINDOW"),
    "opted_out_marketing": (_opted_out_marketing, "CONTACT_OPTED_OUT"),
    "wallet": (_wallet, "INSUFFICIENT_BALANCE"),
}
TEXT = {"type": "text", "text": {"body": "hello"}}


def _code(call) -> str | None:
    try:
        call()
    except ApplicationError as exc:
        return exc.code
    return None


# --- the senders: each tries once and answers (the refusal's code or None, outbound rows written) ------------


def _api(w):
    payload = {"to": TO, **w.get("payload", TEXT)}
    if w.get("pin"):
        payload["phone_number_id"] = w["pin"]
    response = w["api"].post("/api/v1/messages", payload, format="json")
    return None if response.status_code == 202 else response.json()["error"]["code"]


def _internal_content(w):
    payload = w.get("payload", TEXT)
    return payload["type"], payload[payload["type"]]


def _inbox(w):
    conversation = w["conversation"]
    if "number_override" in w:
        Conversation.objects.filter(pk=conversation.pk).update(phone_number=None)
    conversation = Conversation.objects.select_related("contact", "phone_number", "workspace").get(pk=conversation.pk)
    mtype, content = _internal_content(w)
    return _code(lambda: inbox.conversation_reply(conversation=conversation, user=None, message_type=mtype,
                                                  content=content))


def _auto_reply(w):
    mtype, content = _internal_content(w)
    number = w.get("number_override", w["number"])
    return _code(lambda: sending.message_send_internal(workspace=w["ws"], phone_number=number, contact=w["contact"],
                                                       message_type=mtype, content=content, sent_by="auto_reply"))


def _tenant(w):
    return Tenant(workspace=w["ws"], scopes=frozenset(API_SCOPES))


def _campaign_create(w):
    from apps.campaigns.services import audience_create

    payload = w.get("payload") or {"type": "template", "template": {"name": "order_update", "language": "en"}}
    audience = audience_create(workspace=w["ws"], name="all", filter={})
    return _code(lambda: campaign_services.campaign_create(tenant=_tenant(w), data={
        "name": "c", "template": {"name": payload["template"]["name"], "language": payload["template"]["language"]},
        "audience_id": audience.pk, "phone_number_id": w.get("pin") or w["number"].pk,
        "variables": w.get("campaign_variables", {"1": "{{contact.name|x}}", "2": "y"})}))


def _running_campaign(w) -> Campaign:
    """A campaign created while every rule held (the rule under test broke afterwards, or per recipient)."""
    name = w.get("campaign_template", "order_update")
    tpl = MessageTemplate.objects.get(workspace=w["ws"], name=name)
    status = tpl.status
    MessageTemplate.objects.filter(pk=tpl.pk).update(status="APPROVED")
    audience = campaign_services.audience_create(workspace=w["ws"], name="all", filter={})
    campaign = campaign_services.campaign_create(tenant=_tenant(w), data={
        "name": "c", "template": {"name": name, "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": w["number"].pk, "variables": {"1": "{{contact.name|x}}", "2": "y"}})
    MessageTemplate.objects.filter(pk=tpl.pk).update(status=status)
    campaign.refresh_from_db()
    return campaign


def _hand_out(w):
    if "pin" in w or "campaign_variables" in w or w.get("payload", {}).get("template", {}).get("language") == "fr":
        return "n/a"  # decided once, at creation (the campaign_create row)
    if w.get("payload") is None and not w.get("wallet_refuses"):
        return "n/a"  # campaigns send templates only: no window
    campaign = _running_campaign(w)
    campaign_services.campaign_start(campaign=campaign)
    campaign_services.campaign_materialize(campaign=campaign)
    CampaignRecipient.objects.filter(campaign=campaign).update(status="pending")  # classified at hand-out
    campaign_services.campaign_hand_out_batch(campaign_id=campaign.pk, limit=10)
    campaign.refresh_from_db()
    if campaign.status == "paused":
        return campaign.pause_reason.split(":")[0]
    skipped = CampaignRecipient.objects.get(campaign=campaign).status
    return {"skipped_opted_out": "CONTACT_OPTED_OUT"}.get(skipped)


def _preflight(w):
    if "pin" in w or "campaign_variables" in w or w.get("wallet_refuses") \
            or w.get("payload", {}).get("template", {}).get("language") == "fr" or w.get("payload") is None:
        return "n/a"  # a dry run reserves nothing; the rest is decided at creation
    report = campaign_services.campaign_preflight(campaign=_running_campaign(w))
    if report["refused"]:
        return report["refused"]["code"]
    return "CONTACT_OPTED_OUT" if report["skipped"]["opted_out"] == 1 and report["recipients"] == 0 else None


def _fallback(w, caplog):
    if w.get("payload") is not None:
        return "n/a"  # the SMS is text: no template, no consent rule
    number = w.get("number_override", w["number"])
    failed = Message.objects.create(
        workspace=w["ws"], conversation=w["conversation"], contact=w["contact"], phone_number=number,
        direction="outbound", channel="whatsapp", type="text", to_phone=TO, content={"body": "x"}, body="x",
        status="failed", fallback={"sms": {"text": "by sms"}})
    failed = Message.objects.select_related("workspace", "contact", "phone_number").get(pk=failed.pk)
    with caplog.at_level(logging.INFO, logger="reach.fallback"):
        sms = fallback_sms_create(message=failed, now=timezone.now())
    if sms is not None:
        return None
    (record,) = [r for r in caplog.records if r.name == "reach.fallback"]
    return record.getMessage().split(" refused: ")[1].split()[0]


SENDERS = ["api", "inbox", "auto_reply", "campaign_create", "hand_out", "preflight", "fallback"]
# Where a rule does not apply to a sender, and why.
NOT_APPLICABLE = {
    ("template_not_approved", "fallback"), ("template_language", "fallback"), ("template_variables", "fallback"),
    ("opted_out_marketing", "fallback"), ("outside_window", "campaign_create"), ("wallet", "campaign_create"),
    ("no_sender", "hand_out"), ("template_language", "hand_out"), ("template_variables", "hand_out"),
    ("outside_window", "hand_out"), ("no_sender", "preflight"), ("template_language", "preflight"),
    ("template_variables", "preflight"), ("outside_window", "preflight"), ("wallet", "preflight"),
    ("opted_out_marketing", "campaign_create"),
}
# SMS has no window: the fallback goes.
ALLOWED = {("outside_window", "fallback")}


def _outbound(ws) -> int:
    return Message.objects.filter(workspace=ws, direction="outbound").exclude(status="failed").count()


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("rule", list(RULES))
def test_each_sender_is_refused_by_the_same_rule_with_the_same_code(world, rule, sender, monkeypatch, caplog):
    if (rule, sender) in NOT_APPLICABLE:
        pytest.skip("the rule does not apply to this sender (see NOT_APPLICABLE)")
    arrange, code = RULES[rule]
    arrange(world)
    if world.get("wallet_refuses"):
        def refuse(**kwargs):
            raise InsufficientBalance()

        monkeypatch.setattr("apps.billing.services.wallet_reserve", refuse)
    before = (_outbound(world["ws"]), Conversation.objects.count())
    run = {"api": _api, "inbox": _inbox, "auto_reply": _auto_reply, "campaign_create": _campaign_create,
           "hand_out": _hand_out, "preflight": _preflight, "fallback": lambda w: _fallback(w, caplog)}[sender]
    answer = run(world)
    assert answer != "n/a", "listed as applicable but the sender has no such case"
    if (rule, sender) in ALLOWED:
        assert answer is None
        assert _outbound(world["ws"]) == before[0] + 1
        return
    assert answer == code
    assert (_outbound(world["ws"]), Conversation.objects.count()) == before


def test_every_rule_refuses_the_api_send_in_apimd_order(world, monkeypatch):
    """All rules broken at once: the first in API.md's order answers, and so on as each is fixed."""
    Contact.objects.filter(pk=world["contact"].pk).update(opted_in=False, last_inbound_at=None)
    monkeypatch.setattr("apps.billing.services.wallet_reserve",
                        lambda **kw: (_ for _ in ()).throw(InsufficientBalance()))
    MessageTemplate.objects.filter(pk=world["marketing"].pk).update(status="PAUSED")
    api = world["api"]

    def code(payload):
        return api.post("/api/v1/messages", {"to": TO, **payload}, format="json").json()["error"]["code"]

    promo = {"type": "template", "template": {"name": "promo", "language": "en", "variables": ["a", "b"]}}
    assert code({**promo, "phone_number_id": "pn_nope"}) == "PHONE_NOT_FOUND"
    assert code(promo) == "TEMPLATE_NOT_APPROVED"
    MessageTemplate.objects.filter(pk=world["marketing"].pk).update(status="APPROVED")
    assert code({**promo, "template": {**promo["template"], "variables": ["a"]}}) == \
        "TEMPLATE_VARIABLE_COUNT_MISMATCH"
    assert code(TEXT) == "OUTSIDE_24H_WINDOW"
    assert code(promo) == "CONTACT_OPTED_OUT"
    Contact.objects.filter(pk=world["contact"].pk).update(opted_in=True)
    assert code(promo) == "INSUFFICIENT_BALANCE"
    assert Message.objects.filter(workspace=world["ws"]).count() == 0


# --- fast forms pinned to the policy ------------------------------------------------------------------------

HOURS = 24
BOUNDARY_OFFSETS = [None, timedelta(hours=HOURS, seconds=1), timedelta(hours=HOURS),
                    timedelta(hours=HOURS, seconds=-1), timedelta(hours=1), timedelta(0)]


def test_window_is_open_per_channel():
    now = timezone.now()
    assert policy.window_is_open(channel="sms", last_inbound_at=None, now=now) is True
    assert policy.window_is_open(channel="whatsapp", last_inbound_at=None, now=now) is False
    assert policy.window_is_open(channel="whatsapp", last_inbound_at=now - timedelta(hours=HOURS), now=now) is False
    assert policy.window_is_open(channel="whatsapp", last_inbound_at=now - timedelta(hours=23), now=now) is True
    assert policy.window_expires_at(channel="whatsapp", last_inbound_at=now - timedelta(hours=23), now=now) == \
        now + timedelta(hours=1)
    assert policy.window_expires_at(channel="whatsapp", last_inbound_at=now - timedelta(hours=HOURS), now=now) is None


def test_the_tier_selectors_window_filter_is_window_is_open(workspace):
    from apps.campaigns import selectors as campaign_selectors

    number = live_number(workspace)
    now = timezone.now()
    people = [Contact.objects.create(workspace=workspace, phone=f"+1555000{i:04d}",
                                     last_inbound_at=(now - off) if off is not None else None)
              for i, off in enumerate(BOUNDARY_OFFSETS)]
    free = campaign_selectors.tier_free_contact_ids(phone_number=number, now=now, contact_ids=[p.pk for p in people])
    assert free == {p.pk for p in people
                    if policy.window_is_open(channel="whatsapp", last_inbound_at=p.last_inbound_at, now=now)}


def test_the_inbox_window_is_window_expires_at(workspace):
    from apps.conversations.selectors.conversations import window_expires_at

    number = live_number(workspace)
    now = timezone.now()
    for i, off in enumerate(BOUNDARY_OFFSETS):
        person = Contact.objects.create(workspace=workspace, phone=f"+1555100{i:04d}",
                                        last_inbound_at=(now - off) if off is not None else None)
        conversation = Conversation.objects.create(workspace=workspace, contact=person, phone_number=number)
        expected = policy.window_expires_at(channel="whatsapp", last_inbound_at=person.last_inbound_at, now=now)
        assert window_expires_at(conversation, now=now) == expected
        assert (expected is not None) == policy.window_is_open(channel="whatsapp",
                                                               last_inbound_at=person.last_inbound_at, now=now)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the send guard is PostgreSQL's")
def test_the_send_guards_window_is_window_is_open(workspace):
    from apps.conversations.selectors.sending import send_target_guard

    number = live_number(workspace)
    now = timezone.now()
    for i, off in enumerate(BOUNDARY_OFFSETS):
        phone = f"+1555200{i:04d}"
        person = Contact.objects.create(workspace=workspace, phone=phone,
                                        last_inbound_at=(now - off) if off is not None else None)
        Conversation.objects.create(workspace=workspace, contact=person, phone_number=number)
        sql, params = send_target_guard(workspace=workspace, waba_id="", phone_number_id=None, to=phone,
                                        channel_kind="whatsapp", window_opened_after=policy.window_opened_after(now))
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {sql} SELECT count(*) FROM ok", params)  # noqa: S608 - our SQL
            found = cursor.fetchone()[0] == 1
        assert found == policy.window_is_open(channel="whatsapp", last_inbound_at=person.last_inbound_at, now=now)


def test_consent_reads_the_one_source_and_the_sql_forms_agree(workspace):
    from apps.campaigns.services.lifecycle import _status_expression

    people = [Contact.objects.create(workspace=workspace, phone=phone, opted_in=opted_in)
              for phone, opted_in in (("+15553000001", True), ("+15553000002", False), ("+15553000003", None),
                                      ("", False))]
    for requires_opt_in in (True, False):
        for category in ("MARKETING", "UTILITY", "AUTHENTICATION"):
            marketing = policy.consent_applies(category)
            sql = dict(Contact.objects.filter(pk__in=[p.pk for p in people])
                       .annotate(_st=_status_expression(marketing=marketing,
                                                        requires_opt_in=marketing and requires_opt_in))
                       .values_list("pk", "_st"))
            for person in people:
                assert policy.contact_opted_in(person) is person.opted_in
                skip = policy.recipient_classify(phone=person.phone, opted_in=policy.contact_opted_in(person),
                                                 requires_opt_in=requires_opt_in, category=category,
                                                 missing_variable=False)
                assert sql[person.pk] == {None: "pending", policy.INVALID_NUMBER: "skipped_invalid",
                                          policy.OPTED_OUT: "skipped_opted_out",
                                          policy.NOT_OPTED_IN: "skipped_not_opted_in"}[skip]


def test_recipient_classify_checks_number_then_consent_then_variables():
    def classify(*, opted_in, requires_opt_in=True, **kw):
        return policy.recipient_classify(opted_in=opted_in, requires_opt_in=requires_opt_in, **kw)

    assert classify(phone="", opted_in=False, category="MARKETING", missing_variable=True) == policy.INVALID_NUMBER
    assert classify(phone="+1", opted_in=False, category="MARKETING", missing_variable=True) == policy.OPTED_OUT
    assert classify(phone="+1", opted_in=None, category="MARKETING", missing_variable=True) == policy.NOT_OPTED_IN
    assert classify(phone="+1", opted_in=None, requires_opt_in=False, category="MARKETING",
                    missing_variable=True) == policy.MISSING_VARIABLE
    assert classify(phone="+1", opted_in=False, category="UTILITY", missing_variable=True) == policy.MISSING_VARIABLE
    assert classify(phone="+1", opted_in=None, category="UTILITY", missing_variable=False) is None
    assert classify(phone="+1", opted_in=True, category="MARKETING", missing_variable=False) is None


def test_a_wallet_refusal_of_an_auto_reply_writes_nothing(world, monkeypatch, caplog):
    from apps.conversations.services import autoreplies

    inbound = Message.objects.create(workspace=world["ws"], conversation=world["conversation"],
                                     contact=world["contact"], phone_number=world["number"], direction="inbound",
                                     type="text", to_phone=world["number"].display_phone_number,
                                     content={"body": "hi"}, body="hi", status="received", sent_by="customer")
    autoreplies.auto_reply_rule_create(workspace=world["ws"], kind="keyword", reply_text="pong", keywords=["hi"])
    monkeypatch.setattr("apps.billing.services.wallet_reserve",
                        lambda **kw: (_ for _ in ()).throw(InsufficientBalance()))
    with caplog.at_level(logging.INFO, logger="reach.autoreplies"):
        assert autoreplies.auto_reply_for_inbound(message_id=inbound.pk, contact_created=False,
                                                  consent_keyword=None) is None
    assert Message.objects.filter(direction="outbound").count() == 0
    assert [r.getMessage().split(" refused: ")[1].split()[0] for r in caplog.records
            if r.name == "reach.autoreplies"] == ["INSUFFICIENT_BALANCE"]
