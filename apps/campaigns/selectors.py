"""Campaigns read layer: audience membership, live stats, the messaging-tier budget and progress series."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Trunc
from django.utils import timezone

from apps.campaigns.models import Audience, AudienceMember, Campaign, CampaignRecipient
from apps.contacts.models import Contact, ContactTag
from apps.conversations.models import Message
from apps.core.models import Workspace
from apps.core.scoping import waba_scoped

R = CampaignRecipient.Status

# --- audiences ----------------------------------------------------------------------------------


def audience_contacts(*, workspace: Workspace, audience: Audience) -> QuerySet[Contact]:
    """The audience's contacts, evaluated now (filters are live; lists are fixed). An audience made by a
    WABA-bound key holds only the contacts that WABA sees."""
    qs = waba_scoped(Contact.objects.filter(workspace=workspace), waba_id=audience.waba_id)
    if audience.kind == Audience.Kind.LIST:
        return qs.filter(Exists(AudienceMember.objects.filter(audience_id=audience.pk, contact_id=OuterRef("pk"))))
    spec = audience.filter or {}
    tags_any = spec.get("tags_any") or []
    if tags_any:
        qs = qs.filter(Exists(ContactTag.objects.filter(contact_id=OuterRef("pk"), name__in=tags_any)))
    for tag in spec.get("tags_all") or []:
        qs = qs.filter(Exists(ContactTag.objects.filter(contact_id=OuterRef("pk"), name=tag)))
    for i, (key, value) in enumerate((spec.get("custom_fields") or {}).items()):
        # KeyTextTransform takes the key as one path element: keys with "__" or dots stay literal.
        # Cast so the right-hand side stays a plain string on SQLite (not parsed as JSON).
        qs = qs.alias(**{f"_cf{i}": Cast(KeyTextTransform(key, "custom_fields"), TextField())})
        qs = qs.filter(**{f"_cf{i}": str(value)})
    if spec.get("opted_in") is not None:
        # The latest consent row's state: a contact with no row has not opted in.
        qs = qs.filter(opted_in=True) if spec["opted_in"] else qs.filter(Q(opted_in=False) | Q(opted_in__isnull=True))
    return qs


def audience_size(*, workspace: Workspace, audience: Audience) -> int:
    return audience_contacts(workspace=workspace, audience=audience).count()


def audience_preview(*, workspace: Workspace, audience: Audience, limit: int = 10) -> list[Contact]:
    return list(audience_contacts(workspace=workspace, audience=audience).order_by("pk")[:limit])


# --- campaigns -------------------------------------------------------------------------------------

SENT_STATES = ("sent", "delivered", "read")
EXPIRED_CODE = "MESSAGE_EXPIRED"  # the dispatcher's code for a queued message past its expires_at
IN_FLIGHT_STATES = ("queued", "sending", "scheduled")


def _stats_aggregates() -> dict:
    handed = Q(status=R.QUEUED)
    return dict(
        total=Count("id"),
        pending=Count("id", filter=Q(status=R.PENDING)),
        deferred_tier_limit=Count("id", filter=Q(status=R.DEFERRED)),
        queued=Count("id", filter=handed & Q(message__status__in=IN_FLIGHT_STATES)),
        sent=Count("id", filter=handed & Q(message__status__in=SENT_STATES)),
        delivered=Count("id", filter=handed & Q(message__status__in=("delivered", "read"))),
        read=Count("id", filter=handed & Q(message__status="read")),
        failed=Count("id", filter=handed & Q(message__status="failed") & ~Q(message__error_code=EXPIRED_CODE)),
        message_expired=Count("id", filter=handed & Q(message__status="failed", message__error_code=EXPIRED_CODE)),
        message_canceled=Count("id", filter=handed & Q(message__status="canceled")),
        skipped_opted_out=Count("id", filter=Q(status=R.SKIPPED_OPTED_OUT)),
        skipped_not_opted_in=Count("id", filter=Q(status=R.SKIPPED_NOT_OPTED_IN)),
        skipped_invalid=Count("id", filter=Q(status=R.SKIPPED_INVALID)),
        skipped_missing_variable=Count("id", filter=Q(status=R.SKIPPED_MISSING_VARIABLE)),
        skipped_blocked=Count("id", filter=Q(status=R.SKIPPED_BLOCKED)),
        expired=Count("id", filter=Q(status=R.EXPIRED)),
        canceled=Count("id", filter=Q(status=R.CANCELED)),
    )


def _finish(agg: dict) -> dict[str, int]:
    agg = dict(agg)
    agg.pop("campaign_id", None)
    agg["canceled"] += agg.pop("message_canceled")
    agg["expired"] += agg.pop("message_expired")
    return agg


def campaign_stats(*, campaign: Campaign) -> dict[str, int]:
    """Every figure in one aggregate over the recipients LEFT JOIN their messages (index
    cmprcp_campaign_status, then the message's primary key). `sent` and `delivered` are cumulative: a read
    message was also delivered and sent."""
    return _finish(CampaignRecipient.objects.filter(campaign_id=campaign.pk).aggregate(**_stats_aggregates()))


def campaign_stats_with_clicks(*, campaign: Campaign) -> dict[str, int]:
    """campaign_stats plus its tracked links' figures (the API's `stats`; one more query)."""
    return with_clicks({campaign.pk: campaign_stats(campaign=campaign)}, workspace_id=campaign.workspace_id)[campaign.pk]


def with_clicks(stats: dict[str, dict[str, int]], *, workspace_id: str | None) -> dict[str, dict[str, int]]:
    """`clicks` (every visit of the campaigns' tracked links) and `unique_clicks` (recipients who clicked),
    added to each campaign's figures in one grouped query."""
    from apps.links.selectors import campaigns_click_stats

    if workspace_id is None:
        workspace_id = Campaign.objects.filter(pk__in=list(stats)).values_list("workspace_id", flat=True).first()
    clicks = campaigns_click_stats(workspace_id=workspace_id, campaign_ids=list(stats)) if stats else {}
    for cid, figures in stats.items():
        figures["clicks"], figures["unique_clicks"] = clicks[cid].clicks, clicks[cid].unique_clicks
    return stats


def campaigns_stats(*, campaign_ids: list[str]) -> dict[str, dict[str, int]]:
    """Stats of a page of campaigns in one grouped query."""
    rows = (
        CampaignRecipient.objects.filter(campaign_id__in=campaign_ids).values("campaign_id")
        .annotate(**_stats_aggregates()).order_by()
    )
    out = {row["campaign_id"]: _finish(row) for row in rows}
    empty = _finish({k: 0 for k in _stats_aggregates()})
    return {cid: out.get(cid, dict(empty)) for cid in campaign_ids}


def campaign_is_drained(stats: dict[str, int]) -> bool:
    """Nothing left to hand out or waiting in the dispatcher."""
    return stats["pending"] == 0 and stats["deferred_tier_limit"] == 0 and stats["queued"] == 0


def campaigns_due(*, now: datetime) -> list[str]:
    return list(
        Campaign.objects.filter(status=Campaign.Status.SCHEDULED, schedule_at__lte=now).values_list("pk", flat=True)
    )


def campaigns_running(*, now: datetime) -> list[str]:
    """Running campaigns whose pump lease is free (nobody is working on them)."""
    return list(
        Campaign.objects.filter(status=Campaign.Status.RUNNING)
        .filter(Q(pump_claimed_until__isnull=True) | Q(pump_claimed_until__lt=now))
        .values_list("pk", flat=True)
    )


def campaign_series(*, campaign: Campaign, now: datetime | None = None, points: int = 60) -> dict:
    """Sends and deliveries over time for the admin chart: counts per bucket, at most `points` buckets."""
    now = now or timezone.now()
    start = campaign.started_at or campaign.created_at
    end = campaign.completed_at or campaign.canceled_at or now
    span = max((end - start).total_seconds(), 1.0)
    kind = "second" if span <= 900 else "minute" if span <= 12 * 3600 else "hour"
    unit = {"second": 1, "minute": 60, "hour": 3600}[kind]
    bucket = max(unit, int(-(-span // points) // unit * unit) or unit)
    base = Message.objects.filter(workspace_id=campaign.workspace_id, campaign_id=campaign.pk)
    n_buckets = int(span // bucket) + 1
    series = {}
    for name, col in (("sent", "sent_at"), ("delivered", "delivered_at")):
        rows = (
            base.filter(**{f"{col}__isnull": False})
            .annotate(t=Trunc(col, kind))
            .values("t")
            .annotate(n=Count("id"))
            .order_by("t")
        )
        counts: dict[int, int] = {}
        for row in rows:
            # a receipt that lands after the campaign completed counts in its last interval, not nowhere
            offset = min(max(int((row["t"] - start).total_seconds() // bucket), 0), n_buckets - 1)
            counts[offset] = counts.get(offset, 0) + row["n"]
        series[name] = counts
    return {
        "started_at": start,
        "bucket_seconds": bucket,
        "sent": [series["sent"].get(i, 0) for i in range(n_buckets)],
        "delivered": [series["delivered"].get(i, 0) for i in range(n_buckets)],
    }


# --- messaging tier --------------------------------------------------------------------------------

def tier_limit(tier: str) -> int | None:
    """Unique recipients reached outside a customer-service window per moving 24 h; None = unlimited."""
    return settings.CAMPAIGN_TIER_LIMITS.get(tier)


def tier_messaged_contacts(*, phone_number, now: datetime) -> QuerySet:
    """Contacts that already received a template from this number's WABA in the last 24 h (failed and
    canceled sends do not count). Meta counts per business portfolio (all its numbers share the limit:
    wabas.services.portfolio_wabas); counting every template (inside a window or not) errs on the side of
    never exceeding the limit."""
    from apps.wabas.services import portfolio_wabas

    return (
        Message.objects.filter(
            phone_number__waba__in=portfolio_wabas(waba=phone_number.waba), direction="outbound", type="template",
            created_at__gte=now - timedelta(hours=24), contact_id__isnull=False,
        )
        .exclude(status__in=("failed", "canceled"))
        .values("contact_id")
        .distinct()
    )


def tier_headroom(*, phone_number, now: datetime) -> int | None:
    """How many more new unique recipients may be messaged now; None = unlimited."""
    limit = tier_limit(phone_number.messaging_tier)
    if limit is None:
        return None
    return max(limit - tier_messaged_contacts(phone_number=phone_number, now=now).count(), 0)


def tier_free_contact_ids(*, phone_number, now: datetime, contact_ids: list[str]) -> set[str]:
    """Of these contacts, the ones a message does not count against the limit for: already messaged in the
    last 24 h, or inside an open customer-service window."""
    already = set(
        tier_messaged_contacts(phone_number=phone_number, now=now)
        .filter(contact_id__in=contact_ids).values_list("contact_id", flat=True)
    )
    from apps.conversations import policy

    # policy.window_is_open as a filter (pinned to it by tests/conversations/test_policy.py).
    open_window = set(
        Contact.objects.filter(pk__in=contact_ids, last_inbound_at__gt=policy.window_opened_after(now))
        .values_list("pk", flat=True)
    )
    return already | open_window


def campaign_failures_by_reason(*, campaign: Campaign) -> list[dict]:
    """The campaign's failed messages grouped by the failure table's reason (apps.providers.failures), most
    frequent first: reason, count, the plain sentence, the next action and Meta's codes seen. One grouped
    query over (error_code, upstream_code); the table maps each group."""
    from apps.conversations.models import Message
    from apps.providers.failures import failure_explain

    rows = (Message.objects.filter(workspace_id=campaign.workspace_id, campaign_id=campaign.pk, status="failed")
            .values("error_code", "upstream_code").annotate(n=Count("id")).order_by())
    groups: dict[str, dict] = {}
    for row in rows:
        failure = failure_explain(code=row["error_code"], upstream_code=row["upstream_code"])
        group = groups.setdefault(failure.reason, {"reason": failure.reason, "count": 0,
                                                   "description": failure.sentence, "action": failure.action,
                                                   "upstream_codes": []})
        group["count"] += row["n"]
        if row["upstream_code"] is not None and row["upstream_code"] not in group["upstream_codes"]:
            group["upstream_codes"].append(row["upstream_code"])
    for group in groups.values():
        group["upstream_codes"].sort()
    return sorted(groups.values(), key=lambda g: (-g["count"], g["reason"]))
