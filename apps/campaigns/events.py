"""The campaigns app's event types: one builder per type, each registered with its JSON Schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apps.campaigns.models import Campaign
from apps.core.events import event_type_register
from apps.core.events.schema import INTEGER, STRING, TIMESTAMP, ident, obj
from apps.core.scoping import event_waba_anchor_register

# The figures of GET /api/v1/campaigns/{id} `stats` that API.md names; the others are there too.
_STATS = ("total", "queued", "sent", "delivered", "read", "failed", "skipped_opted_out")

event_type_register(
    "campaign.completed", public=True,
    description="Every recipient of a campaign was handed out and settled; emitted once.",
    schema=obj({
        "campaign_id": ident("campaign"), "name": STRING, "completed_at": TIMESTAMP,
        "stats": {"type": "object", "required": list(_STATS), "properties": {k: INTEGER for k in _STATS},
                  "additionalProperties": INTEGER, "description": "The campaign's figures when it completed."},
    }),
    example={"campaign_id": "cmp_01HNQX2P8Y9R", "name": "May newsletter", "completed_at": "2026-05-23T16:00:00Z",
             "stats": {"total": 3, "queued": 0, "sent": 3, "delivered": 2, "read": 1, "failed": 0,
                       "skipped_opted_out": 1}},
)


def campaign_completed(*, campaign: Campaign, stats: dict[str, int], completed_at: datetime) -> dict[str, Any]:
    return {"campaign_id": campaign.pk, "name": campaign.name,
            "completed_at": completed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "stats": stats}


event_type_register(
    "campaign.resumed", public=False,
    description="A paused campaign runs again: resumed by a request, or by a top-up of the wallet that paused it.",
    schema=obj({"campaign_id": ident("campaign"), "name": STRING, "by": {"type": "string", "enum": ["request", "top_up"]},
                "paused_for": STRING, "resumed_at": TIMESTAMP}),
    example={"campaign_id": "cmp_01HNQX2P8Y9R", "name": "May newsletter", "by": "top_up",
             "paused_for": "insufficient_balance", "resumed_at": "2026-05-23T16:00:00Z"},
)


def campaign_resumed(*, campaign: Campaign, by: str, paused_for: str, resumed_at: datetime) -> dict[str, Any]:
    return {"campaign_id": campaign.pk, "name": campaign.name, "by": by, "paused_for": paused_for,
            "resumed_at": resumed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


event_waba_anchor_register(("campaign_id",), priority=40,
                           rows=lambda waba_id: Campaign.objects.filter(phone_number__waba_id=waba_id))
