"""Claim: compare-and-set queued -> sending with a lease (`claimed_until`) and a claim token (the move itself
is transitions.messages_claim_group); on PostgreSQL one UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
LOCKED) RETURNING per campaign, so concurrent drainers never claim the same row. A killed worker's claims
come back after the lease (sweeper). Fair: a batch takes an equal share from every campaign (and from the
API traffic) due on the number, interleaved."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from apps.conversations.models import Message
from apps.conversations.services.dispatch.base import Batch, _setting
from apps.conversations.services.transitions import messages_claim_group


def _lease() -> timedelta:
    return timedelta(seconds=_setting("DISPATCH_LEASE_SECONDS", 60))


# Everything the send/record steps and the status events read; anything else stays in the database.
_CLAIM_FIELDS = ("id", "workspace_id", "conversation_id", "contact_id", "phone_number_id", "channel", "type",
                 "to_phone", "content", "media_id", "template_id", "attempts", "expires_at", "client_reference",
                 "campaign_id", "fallback", "fallback_message_id", "status", "claim_token", "sent_by", "api_key_id",
                 "currency", "provider_message_id", "sent_at", "delivered_at", "read_at", "failed_at", "pricing",
                 "error_code", "error_message", "upstream_code", "cost", "cost_estimate", "template_category", "holds")


def messages_claim(*, phone_number_id: str, limit: int, now: datetime | None = None) -> Batch:
    """Claim up to `limit` due messages of one number, an equal share per campaign (API traffic counts
    as one), interleaved so no campaign starves another on the same number."""
    now = now or timezone.now()
    token = secrets.token_hex(8)
    due = Message.objects.filter(phone_number_id=phone_number_id, status=Message.Status.QUEUED,
                                 next_attempt_at__lte=now)
    groups = list(due.order_by().values_list("campaign_id", flat=True).distinct()[:50])
    if not groups:
        return Batch(token=token)
    share = max(1, math.ceil(limit / len(groups)))
    until = now + _lease()
    per_group = [messages_claim_group(phone_number_id=phone_number_id, campaign_id=campaign_id, share=share,
                                      now=now, until=until, token=token, fields=_CLAIM_FIELDS)
                 for campaign_id in groups]
    ordered: list[Message] = []
    for i in range(max((len(g) for g in per_group), default=0)):  # round robin across campaigns
        for group in per_group:
            if i < len(group):
                ordered.append(group[i])
    return Batch(token=token, messages=ordered)
