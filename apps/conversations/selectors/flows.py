"""Reads of WhatsApp Flow answers (nfm_reply, stored as content.flow_response on inbound messages)."""

from __future__ import annotations

import csv
import io

from django.db.models import QuerySet

from apps.conversations.models import Message


def flow_responses(*, queryset: QuerySet[Message], flow_id: str) -> QuerySet[Message]:
    """The answers to one flow (by its id, or its name when it was sent by name), oldest first. `queryset`
    is already scoped to the tenant (workspace, sandbox, WABA)."""
    return (queryset.filter(direction=Message.Direction.INBOUND, content__flow_response__flow_id=flow_id)
            .select_related("contact").order_by("created_at", "id"))


def flow_sent(*, queryset: QuerySet[Message], flow_id: str) -> bool:
    """Did this tenant send a flow message with this flow id (or name)? (An unknown or foreign flow is 404.)"""
    from django.db.models import Q

    return queryset.filter(Q(content__flow_id=flow_id) | Q(content__flow_name=flow_id),
                           direction=Message.Direction.OUTBOUND, type="interactive").exists()


def flow_responses_csv(messages) -> str:
    """One row per answer: who and when, the flow token, then one column per answered field (the union of
    every answer's fields, in first-seen order); nested values as JSON."""
    import json

    rows, fields = [], []
    for m in messages:
        answer = m.content.get("flow_response") or {}
        values = answer.get("fields") or {}
        for key in values:
            if key not in fields:
                fields.append(key)
        rows.append((m, answer, values))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["message_id", "contact_id", "phone", "bsuid", "name", "received_at", "flow_token", *fields])
    for m, answer, values in rows:
        contact = m.contact
        writer.writerow([
            m.pk, m.contact_id or "", (contact.phone or "") if contact else "", (contact.bsuid or "") if contact else "",
            contact.name if contact else "", m.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"), answer.get("flow_token") or "",
            *[_cell(values.get(k), json) for k in fields],
        ])
    return out.getvalue()


def _cell(value, json) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formulas in a spreadsheet
