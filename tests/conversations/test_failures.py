"""The failure taxonomy (apps.providers.failures): every documented Meta code has a stable reason, a
sentence and an action; they reach the API, the events and the campaign report the same; 131049 (the
per-user marketing limit) is queued again on a growing schedule inside the message's validity, through
/webhooks/meta and through the simulator; a synchronous Meta error from fakemeta is explained too."""

from __future__ import annotations

import copy
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.conversations.models import Message, MessageAttempt
from apps.conversations.services import dispatch
from apps.core.models import Event
from apps.providers import registry
from apps.providers.base import error_from_meta
from apps.providers.failures import BACKOFF, GROWING, META_FAILURES, failure_explain
from apps.providers.simulator.testing import start_fakemeta_in_thread
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.conversations.send_support import contact, live_number, redis_keys_clear, template
from tests.webhooks.inbound_support import META_PHONE_ID, META_WABA_ID, deliver, fixture, signed_post

pytestmark = pytest.mark.django_db

# Every code in META.md §2.2 (Meta's error-code table as the Cloud API documents it).
DOCUMENTED = {0, 190, 3, 10, 4, 80007, 130429, 131056, 131048, 131064, 133016, 368, 131031, 130497, 100, 131008,
              131009, 131000, 131016, 2, 131057, 131005, 131021, 131026, 131047, 131049, 131050, 130472, 131051,
              131052, 131053, 131042, 131030, 131037, 132000, 132001, 132005, 132007, 132008, 132012, 132015, 132016,
              132068, 132069, 133010, 131062, 131063, 135000}
FAILED_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA"  # status_failed.json (131049)


def test_every_documented_code_has_a_reason_sentence_and_action():
    assert set(META_FAILURES) >= DOCUMENTED
    for code, row in META_FAILURES.items():
        assert row.reason and row.reason == row.reason.lower() and " " not in row.reason, code
        assert row.sentence.endswith(".") and row.action.endswith("."), code
        assert error_from_meta(code, "").code == row.code  # the provider mapping reads the same table
        assert error_from_meta(code, "").retryable == (row.retry == BACKOFF)
    wanted = {131026: "recipient_not_on_whatsapp", 131047: "reengagement_window_closed",
              131049: "per_user_marketing_limit", 132015: "template_paused", 130429: "rate_limited",
              131056: "pair_rate_limited", 131048: "spam_rate_limited", 368: "account_restricted",
              131052: "media_download_failed"}
    assert {c: META_FAILURES[c].reason for c in wanted} == wanted
    assert [c for c, r in META_FAILURES.items() if r.retry == GROWING] == [131049]
    assert failure_explain(code="MESSAGE_EXPIRED", upstream_code=None).reason == "message_expired"
    assert failure_explain(code="X", upstream_code=987654).reason == "unknown"
    assert failure_explain(code="PERMISSION_DENIED", upstream_code=250).reason == "permission_denied"


def _campaign_message(workspace, number, *, valid_days: float, wamid: str = FAILED_WAMID) -> Message:
    c = contact(workspace, "+16505551234")
    now = timezone.now()
    return Message.objects.create(
        workspace=workspace, phone_number=number, contact=c, type="template", direction="outbound", status="sent",
        provider_message_id=wamid, to_phone="+16505551234", campaign_id="cmp_1", sent_at=now,
        content={"name": "promo", "language": "en"}, template_category="MARKETING",
        expires_at=now + timedelta(days=valid_days))


def _failed_131049(wamid: str) -> dict:
    payload = copy.deepcopy(fixture("status_failed.json"))
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid
    return payload


def test_131049_through_the_endpoint_is_queued_again_on_a_growing_schedule(workspace, live_api, settings):
    settings.PER_USER_MARKETING_RETRY_HOURS = [24.0, 48.0]
    number = live_number(workspace)
    m = _campaign_message(workspace, number, valid_days=4)
    before = timezone.now()
    assert signed_post(Client(), fixture("status_failed.json")).status_code == 200
    inbound.inbound_webhook_process(webhook_id=InboundWebhook.objects.get().pk)
    m.refresh_from_db()
    assert (m.status, m.provider_message_id, m.holds, m.upstream_code, m.sent_at) == ("queued", None, 1, 131049, None)
    assert m.content["previous_wamids"] == [FAILED_WAMID]
    assert before + timedelta(hours=24) <= m.next_attempt_at <= timezone.now() + timedelta(hours=24)
    event = Event.objects.filter(type="message.status_changed").latest("sequence")
    assert (event.data["previous_status"], event.data["status"]) == ("sent", "queued")
    assert event.data["retry"]["reason"] == "per_user_marketing_limit" and event.data["retry"]["holds"] == 1
    assert not Event.objects.filter(type="message.failed").exists()
    got = live_api.get(f"/api/v1/messages/{m.pk}").json()
    assert got["status"] == "queued" and got["error"]["reason"] == "per_user_marketing_limit"
    # Sent again, held again: the next step (48 h) still fits the 4-day window.
    Message.objects.filter(pk=m.pk).update(status="sent", provider_message_id="wamid.SECOND")
    deliver(_failed_131049("wamid.SECOND"))
    m.refresh_from_db()
    assert (m.status, m.holds) == ("queued", 2)
    assert m.next_attempt_at >= timezone.now() + timedelta(hours=47)
    # The schedule is spent: the third hold fails it, with the reason and the action.
    Message.objects.filter(pk=m.pk).update(status="sent", provider_message_id="wamid.THIRD")
    deliver(_failed_131049("wamid.THIRD"))
    m.refresh_from_db()
    assert (m.status, m.error_code, m.upstream_code) == ("failed", "MARKETING_LIMITED", 131049)
    failed = Event.objects.get(type="message.failed")
    assert failed.data["error"]["reason"] == "per_user_marketing_limit"
    assert failed.data["error"]["action"].startswith("Nothing now")


def test_a_late_status_of_the_held_send_does_not_settle_the_queued_message(workspace):
    """Crash reconciliation (biz_opaque_callback_data) and the 131049 hold together: Meta's late `sent` for the
    held wamid names our message id, but the message waits for its retry; it is not settled with the old wamid."""
    number = live_number(workspace)
    m = _campaign_message(workspace, number, valid_days=4)
    deliver(_failed_131049(FAILED_WAMID))
    m.refresh_from_db()
    assert (m.status, m.provider_message_id, m.holds) == ("queued", None, 1)
    late = _failed_131049(FAILED_WAMID)
    status = late["entry"][0]["changes"][0]["value"]["statuses"][0]
    status.update(status="sent", biz_opaque_callback_data=m.pk)
    status.pop("errors", None)
    deliver(late)
    m.refresh_from_db()
    assert (m.status, m.provider_message_id, m.holds, m.sent_at) == ("queued", None, 1, None)
    assert not MessageAttempt.objects.filter(message_id=m.pk).exists()


def test_131049_outside_the_validity_window_fails_at_once(workspace):
    number = live_number(workspace)
    m = _campaign_message(workspace, number, valid_days=0.5)  # 24 h later is past its window
    deliver(fixture("status_failed.json"))
    m.refresh_from_db()
    assert (m.status, m.holds, m.upstream_code) == ("failed", 0, 131049)


def test_campaign_detail_groups_failures_by_reason(workspace, live_api):
    from tests.campaigns.factories import make_number, make_template

    number = make_number(workspace)
    make_template(number)
    from apps.campaigns import services
    from apps.core.models import API_SCOPES
    from apps.core.tenancy import Tenant

    tenant = Tenant(workspace=workspace, scopes=frozenset(API_SCOPES))
    audience = services.audience_create(workspace=workspace, name="aud", filter={})
    campaign = services.campaign_create(tenant=tenant, data={
        "name": "c", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": {"1": "x", "2": "y"}})
    for i, (code, upstream) in enumerate([("RECIPIENT_NOT_ON_WHATSAPP", 131026)] * 3
                                         + [("MARKETING_LIMITED", 131049), ("MESSAGE_EXPIRED", None)]):
        Message.objects.create(workspace=workspace, phone_number=number, type="template", status="failed",
                               campaign_id=campaign.pk, to_phone=f"+1555000{i:04d}", error_code=code,
                               upstream_code=upstream)
    body = live_api.get(f"/api/v1/campaigns/{campaign.pk}").json()
    assert [(g["reason"], g["count"], g["upstream_codes"]) for g in body["failures_by_reason"]] == [
        ("recipient_not_on_whatsapp", 3, [131026]), ("message_expired", 1, []), ("per_user_marketing_limit", 1, [131049])]
    assert body["failures_by_reason"][0]["action"] == META_FAILURES[131026].action


def test_simulator_131049_on_a_single_send_fails_with_its_reason(workspace, sandbox_api):
    sandbox = workspace.sandbox
    number = sandbox.phone_numbers.get()
    template(sandbox, number.waba, category="MARKETING")
    contact(sandbox, "+15550001004")  # opted in: marketing goes only to those who did
    r = sandbox_api.post("/api/v1/messages", {"to": "+15550001004", "template": {
        "name": "order_update", "language": "en", "variables": ["Ann", "7"]}}, format="json")
    assert r.status_code == 202, r.content
    redis_keys_clear()
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
    m = Message.objects.get(pk=r.json()["id"])
    deadline = time.monotonic() + 20  # the simulator's failed status is due shortly after the send
    while time.monotonic() < deadline and m.status != "failed":
        inbound.inbound_webhooks_sweep()
        m.refresh_from_db()
        time.sleep(0.1)
    got = sandbox_api.get(f"/api/v1/messages/{m.pk}").json()
    # A single send is valid for DISPATCH_MAX_AGE (24 h): Meta's 24 h wait does not fit, so it fails now.
    assert got["status"] == "failed", got
    assert (got["error"]["upstream_code"], got["error"]["reason"]) == (131049, "per_user_marketing_limit")


def test_a_sync_meta_error_from_fakemeta_is_explained(workspace, settings):
    redis_keys_clear()
    fake = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, pair_limit_enabled=False)
    try:
        fake.register_number(phone_number_id=META_PHONE_ID, waba_id=META_WABA_ID, display_phone_number="15550783881")
        settings.META_GRAPH_URL = fake.base_url
        registry.reset_for_tests()
        number = live_number(workspace)
        template(workspace, number.waba, name="ghost", category="UTILITY")  # Meta never heard of it: 132001
        from apps.conversations.services.sending import message_send
        from apps.core.models import API_SCOPES
        from apps.core.tenancy import Tenant

        m = message_send(tenant=Tenant(workspace=workspace, scopes=frozenset(API_SCOPES)), data={
            "to": "+16505551234", "template": {"name": "ghost", "language": "en", "variables": ["A", "1"]}})
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
        m.refresh_from_db()
        assert (m.status, m.error_code, m.upstream_code) == ("failed", "TEMPLATE_REJECTED_UPSTREAM", 132001)
        [request] = fake.requests("/messages")
        assert request["path"] == f"/{settings.META_GRAPH_VERSION}/{META_PHONE_ID}/messages"
        assert request["body"]["to"] == "+16505551234"
        assert request["body"]["template"]["name"] == "ghost"
        failed = Event.objects.get(type="message.failed")
        assert failed.data["error"]["reason"] == "template_not_found"
        assert failed.data["error"]["action"] == META_FAILURES[132001].action
    finally:
        fake.stop()
        registry.reset_for_tests()


def test_the_failures_table_command_lists_every_documented_code_with_reason_action_and_retry():
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("failures_table", stdout=out)
    rows = {line.split(" | ")[0].strip("| "): line for line in out.getvalue().splitlines()[2:]}
    assert {str(c) for c in DOCUMENTED} <= set(rows) and "200–299" in rows
    assert f"`{META_FAILURES[131049].reason}`" in rows["131049"] and rows["131049"].endswith(
        "yes, on a growing schedule inside the validity window |")
    assert rows["131026"].endswith("| no |") and rows["130429"].endswith("| yes, with backoff |")
