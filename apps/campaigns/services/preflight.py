"""The preflight: a dry run over the audience as it is now."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from apps.campaigns import selectors, variables
from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.services.common import R
from apps.contacts.selectors import marketing_requires_opt_in
from apps.conversations import policy

# --- preflight ------------------------------------------------------------------------------------


def campaign_preflight(*, campaign: Campaign, now: datetime | None = None) -> dict:
    """A dry run over the audience as it is now: who would get a message, who would be skipped and why, the
    estimated cost and time. Writes nothing."""
    from apps.billing.selectors import wallet_for
    from apps.billing.services import cost_estimate

    now = now or timezone.now()
    workspace = campaign.workspace
    template = campaign.template
    refusal = policy.campaign_refusal(campaign=campaign)
    compiled = variables.compile_spec(campaign.variables)
    parts = variables.compile_components(campaign.components)
    audience_qs = selectors.audience_contacts(workspace=workspace, audience=campaign.audience)
    already = set()
    if campaign.materialized_at:
        already = set(CampaignRecipient.objects.filter(campaign=campaign).exclude(
            status__in=(R.PENDING, R.DEFERRED)).values_list("contact_id", flat=True))
    requires_opt_in = marketing_requires_opt_in(workspace=workspace)
    counts = {"blocked": 0, "opted_out": 0, "not_opted_in": 0, "invalid_number": 0, "missing_variable": 0,
              "already_handled": 0,
              "duplicate": int((campaign.audience.import_report or {}).get("duplicates", 0)),
              "rejected_in_upload": int((campaign.audience.import_report or {}).get("rejected_count", 0))}
    eligible: list[tuple[str, str]] = []
    fields = (*variables.CONTACT_VALUE_FIELDS, "opted_in", "bsuid", "blocked_at")
    for contact in audience_qs.values(*fields).iterator(chunk_size=5000):
        if contact["id"] in already:
            counts["already_handled"] += 1
            continue
        skip = policy.recipient_classify(
            phone=contact["phone"] or contact["bsuid"], opted_in=contact["opted_in"], requires_opt_in=requires_opt_in,
            category=template.category,
            missing_variable=bool(contact["phone"] or contact["bsuid"]) and (
                (bool(compiled) and variables.render(compiled, contact) is None)
                or (bool(parts) and variables.render_components(parts, contact) is None)), blocked=contact["blocked_at"] is not None)
        if skip is None:
            eligible.append((contact["id"], contact["phone"] or contact["bsuid"]))
        else:
            counts[skip] += 1
    phone_number = campaign.phone_number
    limit = selectors.tier_limit(phone_number.messaging_tier)
    over_tier = 0
    headroom = None
    if limit is not None:
        headroom = selectors.tier_headroom(phone_number=phone_number, now=now)
        free: set[str] = set()
        ids = [cid for cid, _ in eligible]
        for i in range(0, len(ids), 5000):
            free |= selectors.tier_free_contact_ids(phone_number=phone_number, now=now, contact_ids=ids[i:i + 5000])
        needs_quota = sum(1 for cid in ids if cid not in free)
        over_tier = max(needs_quota - headroom, 0)
    # A rule of the whole campaign refuses (its template no longer approved): nobody would get a message.
    sendable = 0 if refusal is not None else len(eligible) - over_tier
    cost = Decimal("0")
    cache: dict[str, Decimal] = {}
    for _, phone in eligible:
        key = phone[:6]  # country and, for +1, the area code: enough to tell the region's rate
        if key not in cache:
            cache[key] = cost_estimate(category=template.category, to_phone=phone, workspace=workspace)
        cost += cache[key]
    if over_tier and eligible:
        cost = (cost * sendable / len(eligible)).quantize(Decimal("0.0001"))
    if refusal is not None:
        cost = Decimal("0")
    wallet = wallet_for(workspace=workspace)
    mps = phone_number.throughput_mps or settings.DEFAULT_THROUGHPUT_MPS
    seconds = round(sendable / mps, 1) if mps else None
    skipped = {**counts, "over_tier_limit": over_tier}
    return {
        "campaign_id": campaign.pk,
        "audience_size": len(eligible) + sum(v for k, v in counts.items() if k not in ("duplicate",
                                                                                       "rejected_in_upload")),
        "recipients": sendable,
        "skipped": skipped,
        "skipped_total": sum(v for k, v in skipped.items() if k not in ("duplicate", "rejected_in_upload",
                                                                         "already_handled")),
        "template": {"name": template.name, "language": template.language, "category": template.category,
                     "status": template.status},
        "messaging_tier": phone_number.messaging_tier,
        "tier_limit": limit,
        "tier_headroom": headroom,
        "estimated_cost": str(cost.quantize(Decimal("0.0001"))),
        "available": f"{wallet.available:.4f}",
        "currency": wallet.currency,
        "throughput_mps": mps,
        "estimated_seconds": seconds,
        "estimated_finish_at": (now + timedelta(seconds=seconds)) if seconds is not None else None,
        "refused": {"code": refusal.code, "message": refusal.message} if refusal is not None else None,
        "notes": ([f"{over_tier} recipients are over today's {phone_number.messaging_tier} limit; they wait for "
                   "quota (deferred) and expire if the validity window closes first."] if over_tier else []),
    }
