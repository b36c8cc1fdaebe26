"""The links app's event type: link.clicked (API.md "Tracked links")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apps.core.events import event_type_register
from apps.core.events.schema import INTEGER, STRING, TIMESTAMP, enum, ident, nullable, obj
from apps.links.models import LinkClick, TrackedLink

event_type_register(
    "link.clicked", public=True,
    description="A recipient opened a tracked short link (`{{track:URL}}`); clicks counts every visit.",
    schema=obj({"link_id": ident("link"), "url": STRING, "message_id": nullable(STRING),
                "campaign_id": nullable(STRING), "contact_id": nullable(STRING), "clicks": INTEGER,
                "first_click": {"type": "boolean"}, "agent": enum(*LinkClick.Agent.values),
                "clicked_at": TIMESTAMP}),
    example={"link_id": "lnk_01HNQX2P8Y9R3T4V5W6Z7A8B9C", "url": "https://shop.example/sale",
             "message_id": "msg_01HNQX2P8Y9R3T4V5W6Z7A8B9D", "campaign_id": "cmp_01HNQX2P8Y9R3T4V5W6Z7A8B9E",
             "contact_id": "con_01HNQX2P8Y9R3T4V5W6Z7A8B9F", "clicks": 1, "first_click": True, "agent": "mobile",
             "clicked_at": "2026-11-20T09:12:00Z"},
)


def link_clicked(*, link: TrackedLink, agent: str, at: datetime) -> dict[str, Any]:
    return {"link_id": link.pk, "url": link.url, "message_id": link.message_id or None,
            "campaign_id": link.campaign_id or None, "contact_id": link.contact_id or None, "clicks": link.clicks,
            "first_click": link.clicks == 1, "agent": agent,
            "clicked_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
