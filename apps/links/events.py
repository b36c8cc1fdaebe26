"""The links app's event type: link.clicked (API.md "Tracked links"), from a Reach short link (`/l/<code>`,
source `reach`) or from Meta's click tracking of a marketing message (source `meta`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apps.core.events import event_type_register
from apps.core.events.schema import INTEGER, STRING, TIMESTAMP, enum, nullable, obj
from apps.links.models import LinkClick, TrackedLink

event_type_register(
    "link.clicked", public=True,
    description="A recipient opened a link of a message: a Reach tracked short link (`{{track:URL}}`, source "
                "`reach`; clicks counts every visit) or a marketing message's link or call to action reported "
                "by Meta's click tracking (source `meta`).",
    schema=obj({"link_id": nullable(STRING), "url": nullable(STRING), "message_id": nullable(STRING),
                "campaign_id": nullable(STRING), "contact_id": nullable(STRING), "clicked_at": TIMESTAMP,
                "source": enum("reach", "meta")},
               {"clicks": INTEGER, "first_click": {"type": "boolean"}, "agent": enum(*LinkClick.Agent.values),
                "meta": obj({"click_component": STRING, "click_id": nullable(STRING),
                             "tracking_token": nullable(STRING), "product_id": nullable(STRING),
                             "provider_message_id": nullable(STRING)},
                            description="Meta's click data (source meta).")}),
    example={"link_id": "lnk_01HNQX2P8Y9R3T4V5W6Z7A8B9C", "url": "https://shop.example/sale",
             "message_id": "msg_01HNQX2P8Y9R3T4V5W6Z7A8B9D", "campaign_id": "cmp_01HNQX2P8Y9R3T4V5W6Z7A8B9E",
             "contact_id": "con_01HNQX2P8Y9R3T4V5W6Z7A8B9F", "clicks": 1, "first_click": True, "agent": "mobile",
             "clicked_at": "2026-11-20T09:12:00Z", "source": "reach"},
)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def link_clicked(*, at: datetime, link: TrackedLink | None = None, agent: str | None = None, message=None,
                 meta: dict | None = None) -> dict[str, Any]:
    """A click on our short link (link, agent) or one Meta reported for a sent message (message, meta)."""
    if link is not None:
        return {"link_id": link.pk, "url": link.url, "message_id": link.message_id or None,
                "campaign_id": link.campaign_id or None, "contact_id": link.contact_id or None,
                "clicks": link.clicks, "first_click": link.clicks == 1, "agent": agent, "clicked_at": _iso(at),
                "source": "reach"}
    return {"link_id": None, "url": None, "message_id": message.pk if message else None,
            "campaign_id": (message.campaign_id or None) if message else None,
            "contact_id": message.contact_id if message else None, "clicked_at": _iso(at), "source": "meta",
            "meta": meta or {}}
