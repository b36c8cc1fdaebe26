"""The wabas app's event types: one builder per type, each registered with its JSON Schema."""

from __future__ import annotations

from typing import Any

from apps.core.events import event_type_register
from apps.core.events.schema import STRING, enum, ident, nullable, obj
from apps.core.scoping import event_waba_anchor_register
from apps.wabas.models import PhoneNumber

event_type_register(
    "phone_number.quality_changed", public=True,
    description="Meta changed a number's quality rating or messaging tier (event: Meta's name for the change).",
    schema=obj({
        "phone_number_id": ident("phone number"), "display_phone_number": STRING, "event": nullable(STRING),
        "quality_rating": enum(*PhoneNumber.Quality.values), "messaging_tier": STRING,
        "previous_quality_rating": STRING, "previous_messaging_tier": STRING,
    }, {"throughput_mps": {"type": "integer", "description": "Messages per second the number may send now."}}),
    example={"phone_number_id": "pn_01HNQX2P8Y9R", "display_phone_number": "+15550001111", "event": "DOWNGRADE",
             "quality_rating": "YELLOW", "messaging_tier": "TIER_1K", "previous_quality_rating": "GREEN",
             "previous_messaging_tier": "TIER_1K"},
)


def phone_number_quality_changed(*, number: PhoneNumber, event: str | None, previous_quality_rating: str,
                                 previous_messaging_tier: str) -> dict[str, Any]:
    """`number` as it is after the change."""
    return {
        "phone_number_id": number.pk, "display_phone_number": number.display_phone_number, "event": event,
        "quality_rating": number.quality_rating, "messaging_tier": number.messaging_tier,
        "previous_quality_rating": previous_quality_rating, "previous_messaging_tier": previous_messaging_tier,
        "throughput_mps": number.throughput_mps,
    }


# Events belong to a WABA through what they are about (apps.core.scoping): most specific first.
event_waba_anchor_register(("waba_id",), priority=0)
event_waba_anchor_register(("phone_number_id",), priority=10,
                           rows=lambda waba_id: PhoneNumber.objects.filter(waba_id=waba_id))
