"""Launch, batches, pause/resume/cancel mid-flight, crash-restart, consent, variables, expiry, tier limit,
auto-pause, completion, scheduling and preflight — driven through the services and the beat task."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from apps.billing.services import cost_estimate
from apps.campaigns import selectors, services, tasks
from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.services import hand_out as hand_out_module
from apps.contacts.models import Contact
from apps.conversations.models import Message
from apps.core.models import Event
from tests.campaigns.factories import make_contacts, make_number, make_template, set_status

pytestmark = pytest.mark.usefixtures("hand_out")

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
VARS = {"1": "{{contact.name|there}}", "2": "{{contact.custom_fields.city|Reach}}"}


def _campaign(tenant, number, *, flt=None, template="promo", variables=VARS, **extra) -> Campaign:
    audience = services.audience_create(workspace=tenant.workspace, name="aud", filter=flt or {})
    data = {"name": "c", "template": {"name": template, "language": "en"}, "audience_id": audience.pk,
            "phone_number_id": number.pk, "variables": variables, **extra}
    return services.campaign_create(tenant=tenant, data=data)


def _messages(campaign):
    return Message.objects.filter(campaign_id=campaign.pk)


def _drain(campaign, status="sent"):
    """Play the dispatcher: every queued campaign message goes to `status`."""
    return set_status(_messages(campaign).filter(status="queued").values_list("pk", flat=True), status)


def test_launch_hands_everyone_once_and_completes_once(tenant, workspace, number, template, small_batches):
    make_contacts(workspace, 7)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    seen = []
    for _ in range(10):
        result = services.campaign_step(campaign_id=campaign.pk)
        seen.append(result)
        _drain(campaign)
        if result == "completed":
            break
    assert seen[-1] == "completed"
    msgs = list(_messages(campaign).values_list("contact_id", flat=True))
    assert len(msgs) == 7 and len(set(msgs)) == 7
    assert set(_messages(campaign).values_list("sent_by", flat=True)) == {"campaign"}
    campaign.refresh_from_db()
    assert campaign.status == "completed"
    stats = selectors.campaign_stats(campaign=campaign)
    assert stats["total"] == 7 and stats["sent"] == 7 and stats["queued"] == 0 and stats["pending"] == 0
    # A late second check (another worker, a retried task) finds nothing to emit.
    assert services.campaign_check(campaign=campaign) == "completed"
    assert services.campaign_complete(campaign=campaign, stats=stats, now=campaign.completed_at) == "completed"
    events = Event.objects.filter(workspace=workspace, type="campaign.completed")
    assert events.count() == 1
    assert events.get().data["campaign_id"] == campaign.pk
    assert events.get().data["stats"]["sent"] == 7


def test_window_paces_handing_out(tenant, workspace, number, template, small_batches):
    make_contacts(workspace, 7)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    assert services.campaign_step(campaign_id=campaign.pk) == "handed"
    assert _messages(campaign).count() == 3
    # Nothing went out yet: the in-flight window is full, so no more are handed over.
    assert services.campaign_step(campaign_id=campaign.pk) == "busy"
    assert _messages(campaign).count() == 3
    _drain(campaign)
    assert services.campaign_step(campaign_id=campaign.pk) == "handed"
    assert _messages(campaign).count() == 6


def test_worker_killed_between_batches_resends_nobody_and_skips_nobody(tenant, workspace, number, template,
                                                                       small_batches, monkeypatch, settings, hand_out):
    settings.CAMPAIGN_MIN_IN_FLIGHT = 100  # several batches per step
    make_contacts(workspace, 10)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    real = getattr(hand_out_module, hand_out)
    calls = {"n": 0}

    def dies_on_second_batch(**kwargs):
        calls["n"] += 1
        ids = real(**kwargs)  # the messages are written ... then the worker dies before the batch commits
        if calls["n"] == 2:
            raise SystemExit("worker killed")
        return ids

    monkeypatch.setattr(hand_out_module, hand_out, dies_on_second_batch)
    with pytest.raises(SystemExit):
        services.campaign_step(campaign_id=campaign.pk)
    # First batch committed with its message ids; the second rolled back whole (no orphan messages).
    assert _messages(campaign).count() == 3
    assert CampaignRecipient.objects.filter(campaign=campaign, status="queued", message__isnull=False).count() == 3
    monkeypatch.setattr(hand_out_module, hand_out, real)
    # Restart: the expansion is re-run too (as if the crash had hit it), which adds nothing.
    Campaign.objects.filter(pk=campaign.pk).update(materialized_at=None)
    services.campaign_step(campaign_id=campaign.pk)
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 10
    per_contact = Counter(_messages(campaign).values_list("contact_id", flat=True))
    assert len(per_contact) == 10
    assert set(per_contact.values()) == {1}
    linked = dict(CampaignRecipient.objects.filter(campaign=campaign).values_list("message_id", "contact_id"))
    assert linked == dict(_messages(campaign).values_list("pk", "contact_id"))


def test_pause_and_resume_mid_flight(tenant, workspace, number, template, small_batches):
    make_contacts(workspace, 7)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    services.campaign_pause(campaign=campaign)
    _drain(campaign)
    for _ in range(3):
        assert services.campaign_step(campaign_id=campaign.pk) == "stopped"
    assert _messages(campaign).count() == 3
    campaign.refresh_from_db()
    assert campaign.pause_reason == "Paused by request."
    services.campaign_resume(campaign=campaign)
    assert services.campaign_step(campaign_id=campaign.pk) == "handed"
    assert _messages(campaign).count() == 6
    campaign.refresh_from_db()
    assert campaign.status == "running" and campaign.pause_reason == ""


def test_cancel_mid_flight(tenant, workspace, number, template, small_batches):
    make_contacts(workspace, 7)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    services.campaign_cancel(campaign=campaign)
    _drain(campaign)
    assert services.campaign_step(campaign_id=campaign.pk) == "stopped"
    assert _messages(campaign).count() == 3
    stats = selectors.campaign_stats(campaign=campaign)
    assert (stats["sent"], stats["canceled"], stats["pending"]) == (3, 4, 0)
    assert not Event.objects.filter(type="campaign.completed").exists()


def test_opted_out_skipped_for_marketing_only(tenant, workspace, number, small_batches, settings):
    settings.CAMPAIGN_MIN_IN_FLIGHT = 100
    make_template(number, name="promo", category="MARKETING")
    make_template(number, name="notice", category="UTILITY")
    make_contacts(workspace, 3)
    out = make_contacts(workspace, 2, start=50, opted_in=False)
    marketing = _campaign(tenant, number, template="promo")
    utility = _campaign(tenant, number, template="notice")
    for c in (marketing, utility):
        services.campaign_start(campaign=c)
        services.campaign_step(campaign_id=c.pk)
    assert selectors.campaign_stats(campaign=marketing)["skipped_opted_out"] == 2
    assert not _messages(marketing).filter(contact__in=out).exists()
    assert _messages(marketing).count() == 3
    assert selectors.campaign_stats(campaign=utility)["skipped_opted_out"] == 0
    assert _messages(utility).count() == 5


def test_opt_out_after_launch_is_still_honoured(tenant, workspace, number, template, small_batches):
    contacts = make_contacts(workspace, 6)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)  # expands everyone as pending, hands 3
    late = contacts[-1]
    Contact.objects.filter(pk=late.pk).update(opted_in=False)
    _drain(campaign)
    services.campaign_step(campaign_id=campaign.pk)
    assert not _messages(campaign).filter(contact=late).exists()
    assert CampaignRecipient.objects.get(campaign=campaign, contact=late).status == "skipped_opted_out"


def test_variables_rendered_per_recipient_with_defaults(tenant, workspace, number, template, settings):
    ann = Contact.objects.create(workspace=workspace, phone="+447700900001", name="Ann Lee",
                                 custom_fields={"city": "Delhi"}, opted_in=True)
    anon = Contact.objects.create(workspace=workspace, phone="+447700900002", name="", custom_fields={}, opted_in=True)
    Contact.objects.create(workspace=workspace, phone="+447700900003", name="Raj", custom_fields={}, opted_in=True)
    campaign = _campaign(tenant, number, variables={"1": "{{ contact.first_name | there }}",
                                                    "2": "{{contact.custom_fields.city}} ({{contact.phone}})"})
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    by_contact = {m.contact_id: m for m in _messages(campaign)}
    assert by_contact[ann.pk].body == "Hi Ann, news from Delhi (+447700900001)!"
    assert by_contact[ann.pk].content["variables"] == ["Ann", "Delhi (+447700900001)"]
    assert anon.pk not in by_contact  # no city and no default: skipped, not sent with an empty parameter
    assert len(by_contact) == 1
    stats = selectors.campaign_stats(campaign=campaign)
    assert stats["skipped_missing_variable"] == 2
    campaign2 = _campaign(tenant, number)
    services.campaign_start(campaign=campaign2)
    services.campaign_step(campaign_id=campaign2.pk)
    bodies = dict(_messages(campaign2).values_list("contact_id", "body"))
    assert bodies[anon.pk] == "Hi there, news from Reach!"
    assert bodies[ann.pk] == "Hi Ann Lee, news from Delhi!"


def test_expiry_after_validity_window(tenant, workspace, number, template, small_batches):
    with time_machine.travel(T0, tick=False) as clock:
        make_contacts(workspace, 7)
        campaign = _campaign(tenant, number, valid_until="2026-11-20T10:00:00Z")
        services.campaign_start(campaign=campaign)
        services.campaign_step(campaign_id=campaign.pk)
        assert _messages(campaign).count() == 3
        clock.move_to(T0 + timedelta(hours=1, seconds=1))
        _drain(campaign)
        assert services.campaign_step(campaign_id=campaign.pk) == "completed"
        assert _messages(campaign).count() == 3
        stats = selectors.campaign_stats(campaign=campaign)
        assert (stats["sent"], stats["expired"], stats["pending"]) == (3, 4, 0)
        # Starting a campaign whose window already closed is refused.
        late = _campaign(tenant, number, valid_until="2026-11-20T10:30:00Z")
        clock.move_to(T0 + timedelta(hours=2))
        with pytest.raises(Exception) as exc:
            services.campaign_start(campaign=late)
        assert getattr(exc.value, "code", "") == "CONFLICT"


def test_tier_limit_defers_instead_of_exceeding(tenant, workspace, template, settings):
    settings.CAMPAIGN_TIER_LIMITS = {**settings.CAMPAIGN_TIER_LIMITS, "TIER_250": 5}
    with time_machine.travel(T0, tick=False) as clock:
        number = make_number(workspace, tier="TIER_250")
        make_template(number)
        contacts = make_contacts(workspace, 10)
        # Messaged an hour ago from this WABA: already counted, so free to message again.
        Message.objects.create(workspace=workspace, contact=contacts[0], phone_number=number, type="template",
                               status="delivered", to_phone=contacts[0].phone)
        # Wrote to us recently: inside the service window, does not count.
        Contact.objects.filter(pk=contacts[1].pk).update(last_inbound_at=T0 - timedelta(hours=1))
        campaign = _campaign(tenant, number)
        pre = services.campaign_preflight(campaign=campaign)
        assert pre["tier_limit"] == 5 and pre["tier_headroom"] == 4
        assert pre["skipped"]["over_tier_limit"] == 4
        assert pre["recipients"] == 6
        services.campaign_start(campaign=campaign)
        services.campaign_step(campaign_id=campaign.pk)
        handed = set(_messages(campaign).values_list("contact_id", flat=True))
        assert len(handed) == 6 and {contacts[0].pk, contacts[1].pk} <= handed
        stats = selectors.campaign_stats(campaign=campaign)
        assert stats["deferred_tier_limit"] == 4
        unique_24h = selectors.tier_messaged_contacts(phone_number=number, now=T0).count()
        assert unique_24h == 6  # contacts[1] is inside its window; 1 + 4 new + contacts[1] = 6 rows, 5 counted
        _drain(campaign)
        assert services.campaign_step(campaign_id=campaign.pk) == "busy"  # no quota: still running, not done
        assert _messages(campaign).count() == 6
        campaign.refresh_from_db()
        assert campaign.status == "running"
        clock.move_to(T0 + timedelta(hours=24, minutes=1))
        services.campaign_step(campaign_id=campaign.pk)
        assert _messages(campaign).count() == 10
        assert selectors.campaign_stats(campaign=campaign)["deferred_tier_limit"] == 0


def test_auto_pause_on_failure_rate_with_reason(tenant, workspace, number, template, settings, live_api):
    settings.CAMPAIGN_MIN_IN_FLIGHT = 1000
    make_contacts(workspace, 60)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    ids = list(_messages(campaign).order_by("pk").values_list("pk", flat=True))
    set_status(ids[:12], "failed")
    set_status(ids[12:49], "delivered")  # 49 attempted: below the minimum sample
    assert services.campaign_check(campaign=campaign) == "running"
    set_status(ids[49:50], "sent")  # 50 attempted, 12 failed = 24%
    assert services.campaign_check(campaign=campaign) == "paused"
    body = live_api.get(f"/api/v1/campaigns/{campaign.pk}").json()
    assert body["status"] == "paused" and body["auto_paused"] is True
    assert "12 of 50" in body["pause_reason"] and "20%" in body["pause_reason"]
    services.campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk))
    set_status(ids[50:], "sent")
    # Judged on what happened since the resume: 10 sent, 0 failed.
    assert services.campaign_check(campaign=Campaign.objects.get(pk=campaign.pk)) == "completed"


def test_schedule_fires_on_time_through_beat(tenant, workspace, number, template, monkeypatch):
    kicked = []
    monkeypatch.setattr(tasks.campaign_pump, "delay", lambda cid: kicked.append(cid))
    make_contacts(workspace, 2)
    with time_machine.travel(T0, tick=False) as clock:
        campaign = _campaign(tenant, number, schedule_at="2026-11-20T09:30:00Z")
        assert campaign.status == "scheduled"
        clock.move_to(T0 + timedelta(minutes=29, seconds=59))
        assert tasks.campaigns_tick() == {"started": [], "resumed": [], "pumped": []}
        campaign.refresh_from_db()
        assert campaign.status == "scheduled"
        clock.move_to(T0 + timedelta(minutes=30))
        assert tasks.campaigns_tick()["started"] == [campaign.pk]
        campaign.refresh_from_db()
        assert campaign.status == "running"
        assert campaign.started_at == T0 + timedelta(minutes=30)
        # A second beat does not start it again; it only makes sure a pump runs.
        assert tasks.campaigns_tick() == {"started": [], "resumed": [], "pumped": [campaign.pk]}
        services.campaign_pump(campaign_id=campaign.pk, max_seconds=0)
        assert _messages(campaign).count() == 2


def test_preflight_numbers(tenant, workspace, number, template, live_api):
    make_contacts(workspace, 5, custom_fields={"city": "Delhi"})
    make_contacts(workspace, 2, start=20, opted_in=False, custom_fields={"city": "Delhi"})
    make_contacts(workspace, 1, start=30)  # no city, and the campaign gives no default
    # Known only by a business-scoped user id: reached through Meta's `recipient` (API.md Identity).
    Contact.objects.create(workspace=workspace, bsuid="US.123", name="No phone", custom_fields={"city": "X"},
                           opted_in=True)
    Contact.objects.create(workspace=workspace, name="No address at all", custom_fields={"city": "X"})
    campaign = _campaign(tenant, number, variables={"1": "{{contact.name}}", "2": "{{contact.custom_fields.city}}"})
    r = live_api.post(f"/api/v1/campaigns/{campaign.pk}/preflight")
    assert r.status_code == 200
    body = r.json()
    assert body["audience_size"] == 10
    assert body["recipients"] == 6
    assert body["skipped"]["opted_out"] == 2
    assert body["skipped"]["invalid_number"] == 1
    assert body["skipped"]["missing_variable"] == 1
    assert body["skipped"]["over_tier_limit"] == 0
    assert body["skipped_total"] == 4
    expected = (cost_estimate(category="MARKETING", to_phone="+447700900000", workspace=workspace) * 5
                + cost_estimate(category="MARKETING", to_phone="US.123", workspace=workspace))
    assert Decimal(body["estimated_cost"]) == expected
    assert body["available"] == "100000.0000"  # beside it, the wallet's available amount
    assert body["throughput_mps"] == 80
    assert body["estimated_seconds"] == round(6 / 80, 1)
    assert not CampaignRecipient.objects.exists() and not Message.objects.exists()


def test_stats_are_one_query(tenant, workspace, number, template, django_assert_num_queries):
    make_contacts(workspace, 5)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    ids = list(_messages(campaign).values_list("pk", flat=True))
    set_status(ids[:2], "read")
    set_status(ids[2:3], "failed")
    with django_assert_num_queries(1):
        stats = selectors.campaign_stats(campaign=campaign)
    assert stats == {"total": 5, "pending": 0, "deferred_tier_limit": 0, "queued": 2, "sent": 2, "delivered": 2,
                     "read": 2, "failed": 1, "skipped_opted_out": 0, "skipped_not_opted_in": 0, "skipped_invalid": 0,
                     "skipped_missing_variable": 0, "skipped_blocked": 0, "expired": 0, "canceled": 0}


def test_queued_messages_do_not_go_out_after_the_window(tenant, workspace, number, template, small_batches):
    from apps.conversations.services.dispatch import messages_expire

    with time_machine.travel(T0, tick=False) as clock:
        make_contacts(workspace, 5)
        campaign = _campaign(tenant, number, valid_until="2026-11-20T10:00:00Z")
        services.campaign_start(campaign=campaign)
        services.campaign_step(campaign_id=campaign.pk)
        assert set(_messages(campaign).values_list("expires_at", flat=True)) == {T0 + timedelta(hours=1)}
        clock.move_to(T0 + timedelta(hours=1, seconds=1))
        assert messages_expire() == 3  # the dispatcher's sweep: still queued at the deadline -> never sent
        assert services.campaign_step(campaign_id=campaign.pk) == "completed"
        stats = selectors.campaign_stats(campaign=campaign)
        assert (stats["sent"], stats["failed"], stats["expired"]) == (0, 0, 5)
        assert not _messages(campaign).filter(sent_at__isnull=False).exists()


def test_two_campaigns_on_one_number_share_the_dispatcher_fairly(tenant, workspace, number, template, settings):
    from apps.conversations.services.dispatch import messages_claim

    settings.CAMPAIGN_MIN_IN_FLIGHT = 100
    make_contacts(workspace, 40)
    big = _campaign(tenant, number)
    small = _campaign(tenant, number)
    for c in (big, small):
        services.campaign_start(campaign=c)
    services.campaign_step(campaign_id=big.pk)  # big hands its 40 first
    services.campaign_step(campaign_id=small.pk)
    batch = messages_claim(phone_number_id=number.pk, limit=10)
    shares = Counter(m.campaign_id for m in batch.messages)
    assert shares == {big.pk: 5, small.pk: 5}
    # Interleaved, not one campaign's block after the other's.
    assert [m.campaign_id for m in batch.messages[:2]] in ([big.pk, small.pk], [small.pk, big.pk])


def test_check_skips_the_stats_aggregate_while_the_campaign_cannot_pause_or_complete(
        tenant, workspace, number, template, settings, monkeypatch):
    settings.CAMPAIGN_MIN_IN_FLIGHT = 1000
    make_contacts(workspace, 20)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    real = selectors.campaign_stats
    calls = []
    monkeypatch.setattr(selectors, "campaign_stats", lambda **kw: calls.append(1) or real(**kw))
    ids = list(_messages(campaign).order_by("pk").values_list("pk", flat=True))
    set_status(ids[:9], "failed")  # under 20% of the 50-attempt minimum: cannot pause yet
    set_status(ids[9:19], "sent")  # one still queued: cannot complete
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert services.campaign_check(campaign=campaign) == "running"
    assert calls == []
    set_status(ids[19:], "sent")
    assert services.campaign_check(campaign=campaign) == "completed"
    assert calls == [1]
    assert Event.objects.filter(type="campaign.completed").count() == 1


def test_feeder_hands_out_up_to_the_window_and_stops_with_the_campaign(tenant, workspace, number, template,
                                                                        small_batches):
    make_contacts(workspace, 7)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    naps = []
    # Not expanded yet: the feeder waits for the pump.
    assert services.campaign_feed(campaign_id=campaign.pk, max_seconds=0.05, sleep=naps.append) == 0
    assert naps and _messages(campaign).count() == 0
    services.campaign_materialize(campaign=campaign)
    assert services.campaign_feed(campaign_id=campaign.pk, max_seconds=0.05, sleep=naps.append) == 3
    _drain(campaign)
    services.campaign_pause(campaign=Campaign.objects.get(pk=campaign.pk))
    assert services.campaign_feed(campaign_id=campaign.pk, max_seconds=5, sleep=naps.append) == 0
    assert _messages(campaign).count() == 3


def test_a_template_paused_mid_campaign_pauses_it_with_the_policys_code(tenant, workspace, number, template,
                                                                        small_batches):
    """The hand-out asks the policy per batch: a template no longer approved writes nothing and pauses the
    campaign with TEMPLATE_NOT_APPROVED as its reason; re-approved and resumed, it goes on."""
    make_contacts(workspace, 5)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    assert services.campaign_step(campaign_id=campaign.pk) == "handed"
    assert _messages(campaign).count() == 3
    _drain(campaign)
    template.status = "PAUSED"
    template.save(update_fields=["status"])
    assert services.campaign_step(campaign_id=campaign.pk) == "paused"
    campaign.refresh_from_db()
    assert (campaign.status, campaign.auto_paused) == ("paused", True)
    assert campaign.pause_reason.startswith("TEMPLATE_NOT_APPROVED: ")
    assert _messages(campaign).count() == 3
    assert CampaignRecipient.objects.filter(campaign=campaign, status="pending").count() == 2
    template.status = "APPROVED"
    template.save(update_fields=["status"])
    services.campaign_resume(campaign=campaign)
    assert services.campaign_step(campaign_id=campaign.pk) == "handed"
    assert _messages(campaign).count() == 5


def test_a_wallet_refusal_pauses_the_campaign_and_writes_nothing(tenant, workspace, number, template, small_batches,
                                                                 monkeypatch):
    from apps.core.errors import InsufficientBalance

    make_contacts(workspace, 3)
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)

    def refuse(**kwargs):
        raise InsufficientBalance()

    monkeypatch.setattr("apps.billing.services.wallet_reserve", refuse)
    assert services.campaign_step(campaign_id=campaign.pk) == "paused"
    campaign.refresh_from_db()
    assert campaign.pause_reason == "insufficient_balance"
    assert _messages(campaign).count() == 0
    assert CampaignRecipient.objects.filter(campaign=campaign).exclude(status="pending").count() == 0


@pytest.mark.parametrize("sql", [True, False])
def test_an_empty_wallet_pauses_the_campaign_and_a_top_up_resumes_it_each_recipient_once(
        tenant, workspace, number, template, small_batches, sql, django_capture_on_commit_callbacks):
    """A real wallet (no stub): the batches reserve as they hand out; the batch the wallet cannot cover writes
    nothing and pauses with reason insufficient_balance; the top-up's commit resumes it (campaign.resumed, by
    top_up) and it finishes, nobody twice."""
    from django.db import connection

    from apps.billing import services as billing
    from apps.billing.models import LedgerEntry, Wallet

    if sql and connection.vendor != "postgresql":
        pytest.skip("the set-based hand-out is PostgreSQL's")
    small_batches.CAMPAIGN_HAND_OUT_SQL = sql
    make_contacts(workspace, 7)
    price = billing.cost_estimate(category=template.category, to_phone="+447700900001", workspace=workspace)
    wallet = billing.wallet_get_or_create(workspace=workspace)
    billing.wallet_adjust(workspace=workspace, amount=3 * price - wallet.available, note="room for one batch")
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    assert services.campaign_step(campaign_id=campaign.pk) == "handed"  # 3 of 7, the wallet now empty
    _drain(campaign)
    assert services.campaign_step(campaign_id=campaign.pk) == "paused"
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == ("paused", "insufficient_balance")
    assert _messages(campaign).count() == 3
    assert Wallet.objects.get(pk=workspace.pk).available == 0
    other = _campaign(tenant, number)  # paused by a person: a top-up leaves it alone
    services.campaign_start(campaign=other)
    services.campaign_pause(campaign=other)
    with django_capture_on_commit_callbacks(execute=True):  # the top-up's commit resumes what the wallet paused
        billing.wallet_topup(workspace=workspace, amount="1.0000", note="more")
    campaign.refresh_from_db(), other.refresh_from_db()
    assert (campaign.status, campaign.pause_reason, other.status) == ("running", "", "paused")
    resumed = Event.objects.get(type="campaign.resumed")
    assert (resumed.data["campaign_id"], resumed.data["by"], resumed.data["paused_for"]) == (
        campaign.pk, "top_up", "insufficient_balance")
    for _ in range(5):
        services.campaign_step(campaign_id=campaign.pk)
        _drain(campaign)
    assert _messages(campaign).count() == 7
    assert _messages(campaign).values("contact_id").distinct().count() == 7
    reserves = LedgerEntry.objects.filter(workspace_id=workspace.pk, kind="reserve", campaign_id=campaign.pk)
    assert sum(e.amount for e in reserves) == 7 * price


def test_a_top_up_whose_resume_was_lost_is_resumed_by_the_tick_once(
        tenant, workspace, number, template, small_batches, django_capture_on_commit_callbacks, monkeypatch):
    """The after-commit listener is the fast road; the process may die between the top-up's commit and it.
    The tick finds a wallet-paused campaign whose wallet got money after the pause and resumes it, once; a
    campaign paused by a person, or one the wallet paused after the last top-up, stays paused."""
    from apps.billing import services as billing

    kicked = []
    monkeypatch.setattr(tasks.campaign_pump, "delay", lambda cid: kicked.append(cid))
    small_batches.CAMPAIGN_HAND_OUT_SQL = False
    make_contacts(workspace, 4)
    price = billing.cost_estimate(category=template.category, to_phone="+447700900001", workspace=workspace)
    wallet = billing.wallet_get_or_create(workspace=workspace)
    billing.wallet_adjust(workspace=workspace, amount=-wallet.available, note="empty")
    campaign = _campaign(tenant, number)
    services.campaign_start(campaign=campaign)
    assert services.campaign_step(campaign_id=campaign.pk) == "paused"
    other = _campaign(tenant, number)  # paused by a person
    services.campaign_start(campaign=other)
    services.campaign_pause(campaign=other)
    with django_capture_on_commit_callbacks(execute=False):  # committed; its listener never ran (a crash)
        billing.wallet_topup(workspace=workspace, amount=str(10 * price), note="more")
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == ("paused", "insufficient_balance")
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.campaigns_tick()["resumed"] == [campaign.pk]
    campaign.refresh_from_db(), other.refresh_from_db()
    assert (campaign.status, other.status) == ("running", "paused")
    assert Event.objects.filter(type="campaign.resumed", data__campaign_id=campaign.pk,
                                data__by="top_up").count() == 1
    assert tasks.campaigns_tick()["resumed"] == []  # running now: nothing to resume twice
    # Paused by the wallet again after that top-up, with half a message left: only a new top-up resumes it.
    left = billing.wallet_get_or_create(workspace=workspace).available
    billing.wallet_adjust(workspace=workspace, amount=price / 2 - left, note="half a message left")
    assert services.campaign_step(campaign_id=campaign.pk) == "paused"
    assert billing.wallet_get_or_create(workspace=workspace).available > 0
    assert tasks.campaigns_tick()["resumed"] == []
    campaign.refresh_from_db()
    assert campaign.status == "paused"
