"""The templates app's event types: one builder per type, each registered with its JSON Schema."""

from __future__ import annotations

from typing import Any

from apps.core.events import event_type_register
from apps.core.events.schema import STRING, enum, ident, nullable, obj
from apps.message_templates.models import MessageTemplate

_CHANGES = ("created", "status", "category_notice", "category", "quality", "sync")

event_type_register(
    "template.status_changed", public=True,
    description="A template was created, or Meta changed its status, category or quality (`change` says which; "
                "status PAUSED or DISABLED stops its sends).",
    schema=obj(
        {"template_id": ident("template"), "waba_id": ident("WABA"), "name": STRING, "language": STRING,
         "category": STRING, "status": STRING, "previous_status": STRING, "reason": nullable(STRING),
         "change": enum(*_CHANGES)},
        {"correct_category": STRING, "previous_category": STRING, "previous_quality": nullable(STRING),
         "quality": STRING},
    ),
    example={"template_id": "tpl_01HNQX2P8Y9R", "waba_id": "waba_01HNQX2P8Y9R", "name": "order_confirmation",
             "language": "en", "category": "UTILITY", "status": "PAUSED", "previous_status": "APPROVED",
             "reason": None, "change": "status"},
)


def template_status_changed(*, template: MessageTemplate, previous_status: str, change: str,
                            correct_category: str | None = None, previous_category: str | None = None,
                            previous_quality: str | None = None, quality: str | None = None) -> dict[str, Any]:
    """`template` as it is after the change. previous_status: "" when it was just created. The optional
    keys go with their `change`: correct_category (category_notice), previous_category (category),
    previous_quality and quality (quality)."""
    data: dict[str, Any] = {
        "template_id": template.pk, "waba_id": template.waba_id, "name": template.name,
        "language": template.language, "category": template.category, "status": template.status,
        "previous_status": previous_status, "reason": template.rejection_reason or None, "change": change,
    }
    if correct_category is not None:
        data["correct_category"] = correct_category
    if previous_category is not None:
        data["previous_category"] = previous_category
    if change == "quality":
        data["previous_quality"], data["quality"] = previous_quality, quality
    return data
