"""A campaign's life: creation, the state machine, expansion into recipients, expiry, auto-pause and
completion."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.campaigns import selectors, variables
from apps.campaigns.events import campaign_completed, campaign_resumed
from apps.campaigns.models import Audience, Campaign, CampaignRecipient
from apps.campaigns.services.common import INSUFFICIENT_BALANCE, R, S, _in_flight
from apps.contacts.selectors import marketing_requires_opt_in
from apps.conversations import policy
from apps.conversations.models import Message
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.selectors import tenant_queryset
from apps.core.services import event_append
from apps.core.tenancy import Tenant

logger = logging.getLogger("reach.campaigns")


def _parse_time(value: Any, *, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        from django.utils.dateparse import parse_datetime

        parsed = parse_datetime(str(value)) if isinstance(value, str) else None
        if parsed is None:
            raise ValidationFailed(f"{field} must be an ISO-8601 time.", field=field)
    if timezone.is_naive(parsed):
        raise ValidationFailed(f"{field} needs a timezone (e.g. a trailing Z).", field=field)
    return parsed


def campaign_create(*, tenant: Tenant, data: dict, now: datetime | None = None) -> Campaign:
    """Validate everything a launch will need (audience, sender, approved template, variables) up front, so a
    campaign that was accepted does not fail at send time for a reason known now."""
    now = now or timezone.now()
    workspace = tenant.workspace
    name = (data.get("name") or "").strip()
    if not name:
        raise ValidationFailed("A campaign needs a name.", field="name")
    template_spec = data.get("template")
    if not isinstance(template_spec, dict) or not template_spec.get("name") or not template_spec.get("language"):
        raise ValidationFailed('template must be {"name", "language"}.', field="template")
    audience = tenant_queryset(Audience, tenant=tenant).filter(pk=data.get("audience_id") or "").first()
    if audience is None:
        raise NotFound("No such audience.", details={"field": "audience_id"})
    # The policy's sender and template rules, as the API send states them (same errors, same order).
    phone_number = policy.sender_resolve(workspace=workspace, waba_id=tenant.waba_id,
                                         phone_number_id=data.get("phone_number_id") or None, to="",
                                         channel=policy.WHATSAPP).number
    compiled = variables.compile_spec(data.get("variables"))
    if compiled and not variables.is_positional(compiled) and any(k.isdigit() for k in compiled):
        raise ValidationFailed("variables keys are either all numbers or all names.", field="variables")
    # Components as a send takes them (template.components), or beside `variables` at the top level.
    raw_components = template_spec.get("components")
    if raw_components is None:
        raw_components = data.get("components")
    components = variables.compile_components(raw_components)
    if compiled and any(str(c.get("type", "")).lower() == "body" for c in components.shape):
        raise ValidationFailed("Give the body's values as variables or as a body component, not both.",
                               field="template.components")
    # The components' send rules (VALIDATION_FAILED), then TEMPLATE_VARIABLE_COUNT_MISMATCH when the spec does
    # not fit the template's placeholders.
    template, _ = policy.template_resolve(workspace=workspace, number=phone_number, content={
        "name": str(template_spec["name"]), "language": str(template_spec["language"]),
        "variables": variables.sample_values(compiled) if compiled else None,
        "components": variables.sample_components(components)})
    schedule_at = _parse_time(data.get("schedule_at"), field="schedule_at")
    valid_until = _parse_time(data.get("valid_until"), field="valid_until")
    if schedule_at is not None and schedule_at <= now:
        raise ValidationFailed("schedule_at must be in the future.", field="schedule_at")
    if valid_until is not None and valid_until <= (schedule_at or now):
        raise ValidationFailed("valid_until must be after the start.", field="valid_until")
    raw_vars = data.get("variables") or {}
    if isinstance(raw_vars, list):
        raw_vars = {str(i + 1): v for i, v in enumerate(raw_vars)}
    return Campaign.objects.create(
        workspace=workspace, name=name[:200], audience=audience, phone_number=phone_number, template=template,
        template_name=template.name, template_language=template.language, variables=raw_vars,
        components=components.shape,
        status=S.SCHEDULED if schedule_at else S.DRAFT, schedule_at=schedule_at, valid_until=valid_until,
        created_by=tenant.actor_label,
    )


# --- campaigns: state machine ----------------------------------------------------------------------

_TRANSITIONS = {
    "start": ({S.DRAFT, S.SCHEDULED}, S.RUNNING),
    "schedule": ({S.DRAFT, S.SCHEDULED}, S.SCHEDULED),
    "pause": ({S.RUNNING}, S.PAUSED),
    "resume": ({S.PAUSED}, S.RUNNING),
    "cancel": ({S.DRAFT, S.SCHEDULED, S.RUNNING, S.PAUSED}, S.CANCELED),
}


def _transition(*, campaign: Campaign, action: str, now: datetime, extra: dict | None = None) -> Campaign:
    allowed, target = _TRANSITIONS[action]
    updated = Campaign.objects.filter(pk=campaign.pk, status__in=allowed).update(
        status=target, updated_at=now, **(extra or {})
    )
    if not updated:
        current = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
        raise Conflict(
            f"Cannot {action} a campaign that is {current}.",
            details={"status": current, "action": action, "allowed_from": sorted(allowed)},
        )
    campaign.refresh_from_db()
    return campaign


def _kick(campaign_id: str) -> None:
    from apps.campaigns import tasks

    transaction.on_commit(lambda: tasks.campaign_pump.delay(campaign_id))


@transaction.atomic
def campaign_start(*, campaign: Campaign, now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    if campaign.valid_until and campaign.valid_until <= now:
        raise Conflict("The campaign's validity window has already closed.",
                       details={"valid_until": campaign.valid_until.isoformat()})
    campaign = _transition(campaign=campaign, action="start", now=now, extra={"started_at": now})
    _kick(campaign.pk)
    return campaign


@transaction.atomic
def campaign_schedule(*, campaign: Campaign, schedule_at: Any, now: datetime | None = None) -> Campaign:
    """A draft (or a scheduled campaign) starts at `schedule_at`; the beat job fires it (campaigns_start_due)."""
    now = now or timezone.now()
    when = _parse_time(schedule_at, field="schedule_at")
    if when is None or when <= now:
        raise ValidationFailed("schedule_at must be in the future.", field="schedule_at")
    if campaign.valid_until is not None and campaign.valid_until <= when:
        raise ValidationFailed("valid_until must be after the start.", field="schedule_at")
    return _transition(campaign=campaign, action="schedule", now=now, extra={"schedule_at": when})


@transaction.atomic
def campaign_pause(*, campaign: Campaign, reason: str = "", now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    return _transition(campaign=campaign, action="pause", now=now,
                       extra={"paused_at": now, "pause_reason": reason[:300] or "Paused by request.",
                              "auto_paused": False})


@transaction.atomic
def campaign_resume(*, campaign: Campaign, now: datetime | None = None, by: str = "request") -> Campaign:
    """paused -> running; `by`: "request" (API, console, admin) or "top_up" (campaigns_resume_funded)."""
    now = now or timezone.now()
    stats = selectors.campaign_stats(campaign=campaign)
    # Auto-pause judges only what happens after the resume, so it does not trip again at once.
    baseline = {"attempted": stats["sent"] + stats["failed"], "failed": stats["failed"]}
    reason = campaign.pause_reason
    campaign = _transition(campaign=campaign, action="resume", now=now,
                           extra={"paused_at": None, "pause_reason": "", "auto_paused": False,
                                  "failure_baseline": baseline})
    event_append(workspace=campaign.workspace, type="campaign.resumed",
                 data=campaign_resumed(campaign=campaign, by=by, paused_for=reason, resumed_at=now))
    _kick(campaign.pk)
    return campaign


def _wallet_paused():
    """Campaigns the wallet paused (the hand-out's insufficient_balance); a person's pause is not among them."""
    return Campaign.objects.filter(status=S.PAUSED, auto_paused=True, pause_reason=INSUFFICIENT_BALANCE)


def _resume_after_top_up(campaign: Campaign, now: datetime | None) -> bool:
    try:
        campaign_resume(campaign=campaign, now=now, by="top_up")
    except Conflict:
        return False  # resumed, canceled or expired meanwhile
    logger.info("campaign %s: resumed after a top-up", campaign.pk)
    return True


def campaigns_resume_funded(*, workspace_id: str, now: datetime | None = None) -> list[str]:
    """Money came in (wallet.topped_up, after its commit): every campaign of the workspace that the wallet
    paused (reason insufficient_balance, auto-paused) resumes while the wallet has money available. A
    campaign paused by a person stays paused. Returns the ids resumed."""
    from apps.billing.selectors import wallet_for
    from apps.core.models import Workspace

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None or wallet_for(workspace=workspace).available <= 0:
        return []
    return [c.pk for c in _wallet_paused().filter(workspace_id=workspace_id).order_by("id")
            if _resume_after_top_up(c, now)]


def campaigns_resume_funded_missed(*, now: datetime | None = None) -> list[str]:
    """The durable half of campaigns_wallet_funded (the tick runs it): a campaign the wallet paused whose
    wallet got money after the pause, yet is still paused, because the process died between the top-up's
    commit and its listener. Only a top-up after the pause counts, so a wallet that runs dry again does not
    resume and pause on every tick."""
    from apps.billing.selectors import wallet_for, wallet_funded_since

    return [c.pk for c in _wallet_paused().filter(paused_at__isnull=False).select_related("workspace").order_by("id")
            if wallet_funded_since(workspace_id=c.workspace_id, since=c.paused_at)
            and wallet_for(workspace=c.workspace).available > 0 and _resume_after_top_up(c, now)]


def campaigns_wallet_funded(events) -> None:
    """core.hooks event listener: the wallet.topped_up of a committed top-up resumes what it paused."""
    for workspace_id in sorted({e.workspace_id for e in events if e.type == "wallet.topped_up"}):
        campaigns_resume_funded(workspace_id=workspace_id)


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    campaign = _transition(campaign=campaign, action="cancel", now=now, extra={"canceled_at": now})
    CampaignRecipient.objects.filter(campaign=campaign, status__in=(R.PENDING, R.DEFERRED)).update(
        status=R.CANCELED, updated_at=now
    )
    return campaign


def campaigns_start_due(*, now: datetime | None = None) -> list[str]:
    """The beat job's half that fires schedules: every scheduled campaign whose time has come starts now."""
    now = now or timezone.now()
    started = []
    for campaign_id in selectors.campaigns_due(now=now):
        campaign = Campaign.objects.get(pk=campaign_id)
        try:
            campaign_start(campaign=campaign, now=now)
        except Conflict:
            continue  # started, canceled or expired meanwhile
        started.append(campaign_id)
    return started


# --- launch: expansion ----------------------------------------------------------------------------


def _status_expression(*, marketing: bool, requires_opt_in: bool, authentication: bool = False):
    """policy.recipient_classify's number and consent rules as SQL over the contact (pinned to it by
    tests/conversations/test_policy.py); the variables are checked at hand-out."""
    from django.db.models import Case, CharField, Value, When

    # No address (phone, else BSUID); an authentication template needs the phone itself.
    invalid = Q(phone__isnull=True) | Q(phone="")
    if not authentication:
        invalid &= Q(bsuid__isnull=True) | Q(bsuid="")
    whens = [When(invalid, then=Value(R.SKIPPED_INVALID))]
    if marketing:
        whens.append(When(opted_in=False, then=Value(R.SKIPPED_OPTED_OUT)))
        if requires_opt_in:
            whens.append(When(opted_in__isnull=True, then=Value(R.SKIPPED_NOT_OPTED_IN)))
    return Case(*whens, default=Value(R.PENDING), output_field=CharField())


def campaign_materialize(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Expand the audience into recipient rows with one INSERT … SELECT … ON CONFLICT DO NOTHING (PostgreSQL
    and SQLite alike): unique per (campaign, contact), so running it again adds nothing. Opted-out contacts
    are written as skipped for MARKETING templates; contacts without a phone as invalid. Returns rows added."""
    from django.db.models import CharField, F, Value

    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        if locked is None or locked.materialized_at is not None:
            return 0
        marketing = policy.consent_applies(locked.template.category)
        requires_opt_in = marketing and marketing_requires_opt_in(workspace=locked.workspace)
        qs = (
            selectors.audience_contacts(workspace=locked.workspace, audience=locked.audience)
            .annotate(_cid=F("pk"), _cmp=Value(locked.pk, output_field=CharField()),
                      _st=_status_expression(marketing=marketing, requires_opt_in=requires_opt_in,
                                             authentication=locked.template.category == policy.AUTHENTICATION))
            .values_list("_cid", "_cmp", "_st")
            .order_by()
        )
        sql, params = qs.query.sql_with_params()
        table = CampaignRecipient._meta.db_table
        insert = (f"INSERT INTO {table} (campaign_id, contact_id, status) "  # noqa: S608 - our table, ORM SQL
                  f"SELECT s._cmp, s._cid, s._st FROM ({sql}) s WHERE 1 = 1")
        # The rows and materialized_at commit together, so normally there is nothing to collide with and the plain
        # INSERT (no speculative insertion per row) runs; rows left by anything else fall back to DO NOTHING.
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(insert, params)
                added = cursor.rowcount
        except IntegrityError:
            with connection.cursor() as cursor:
                cursor.execute(insert + " ON CONFLICT (campaign_id, contact_id) DO NOTHING", params)
                added = cursor.rowcount
        Campaign.objects.filter(pk=locked.pk).update(materialized_at=now, updated_at=now)
    campaign.materialized_at = now
    return added



def campaign_expire(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Past valid_until: recipients not yet handed out expire instead of going out late."""
    now = now or timezone.now()
    if not campaign.valid_until or campaign.valid_until > now:
        return 0
    return CampaignRecipient.objects.filter(campaign=campaign, status__in=(R.PENDING, R.DEFERRED)).update(
        status=R.EXPIRED, updated_at=now
    )


def campaign_check(*, campaign: Campaign, now: datetime | None = None) -> str:
    """Auto-pause on a high failure rate; complete once nothing is left. Returns the campaign's status."""
    now = now or timezone.now()
    if not _check_may_act(campaign):
        return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
    stats = selectors.campaign_stats(campaign=campaign)
    base = campaign.failure_baseline or {}
    attempted = stats["sent"] + stats["failed"] - base.get("attempted", 0)
    failed = stats["failed"] - base.get("failed", 0)
    threshold = settings.CAMPAIGN_AUTO_PAUSE_FAILURE_RATE
    if (threshold and attempted >= settings.CAMPAIGN_AUTO_PAUSE_MIN_ATTEMPTS and failed / attempted >= threshold):
        reason = (f"Auto-paused: {failed} of {attempted} messages failed ({failed / attempted:.0%}), at or over "
                  f"the {threshold:.0%} threshold. Check the template and audience, then resume.")
        updated = Campaign.objects.filter(pk=campaign.pk, status=S.RUNNING).update(
            status=S.PAUSED, paused_at=now, pause_reason=reason, auto_paused=True, updated_at=now
        )
        if updated:
            logger.warning("campaign %s: %s", campaign.pk, reason)
            return S.PAUSED
    if campaign.materialized_at and selectors.campaign_is_drained(stats):
        return campaign_complete(campaign=campaign, stats=stats, now=now)
    return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()


def _check_may_act(campaign: Campaign) -> bool:
    """Cheap necessary conditions for `campaign_check` to pause or complete, so a running campaign's pump does
    not aggregate every recipient with its message every few seconds (180 ms at 100k). Auto-pause needs
    failed >= rate * attempted with attempted >= the minimum, so failed >= rate * minimum; completion needs no
    recipient waiting and no message in flight. Either may hold: run the full check, which decides."""
    threshold = settings.CAMPAIGN_AUTO_PAUSE_FAILURE_RATE
    if threshold:
        failed = (Message.objects.filter(workspace_id=campaign.workspace_id, campaign_id=campaign.pk,
                                         status=Message.Status.FAILED)
                  .exclude(error_code=selectors.EXPIRED_CODE).count()
                  - (campaign.failure_baseline or {}).get("failed", 0))
        if failed >= threshold * settings.CAMPAIGN_AUTO_PAUSE_MIN_ATTEMPTS - 1e-9:
            return True
    if campaign.materialized_at is None:
        return False
    waiting = CampaignRecipient.objects.filter(campaign_id=campaign.pk)
    return not (waiting.filter(status=R.PENDING).exists() or waiting.filter(status=R.DEFERRED).exists()
                or _in_flight(campaign))


@transaction.atomic
def campaign_complete(*, campaign: Campaign, stats: dict, now: datetime) -> str:
    """running -> completed by compare-and-set in the same transaction as the event: emitted exactly once."""
    updated = Campaign.objects.filter(pk=campaign.pk, status=S.RUNNING).update(
        status=S.COMPLETED, completed_at=now, updated_at=now
    )
    if updated:
        event_append(workspace=campaign.workspace, type="campaign.completed",
                     data=campaign_completed(campaign=campaign, stats=stats, completed_at=now))
        return S.COMPLETED
    return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
