"""The contacts app's event types: one builder per type, each registered with its JSON Schema."""

from __future__ import annotations

from typing import Any

from apps.contacts.models import ConsentRecord
from apps.core.events import event_type_register
from apps.core.events.schema import STRING, TIMESTAMP, enum, ident, nullable, obj

_CONSENT = obj({
    "id": ident("consent record"), "contact_id": ident("contact"), "status": enum(*ConsentRecord.Status.values),
    "source": enum(*ConsentRecord.Source.values), "note": STRING, "inbound_message_id": nullable(STRING),
    "api_key_id": nullable(STRING), "user_id": nullable(STRING), "created_at": TIMESTAMP,
}, description="The consent ledger row (as GET /api/v1/contacts/{id}/consents lists it).")


def _schema(opted_in: bool) -> dict[str, Any]:
    status = "opt_in" if opted_in else "opt_out"
    consent = {**_CONSENT, "properties": {**_CONSENT["properties"], "status": {"const": status}}}
    return obj({"contact_id": ident("contact"), "phone": nullable(STRING), "opted_in": {"const": opted_in},
                "consent": consent})


def _example(opted_in: bool) -> dict[str, Any]:
    status = "opt_in" if opted_in else "opt_out"
    return {"contact_id": "ct_01HNQX2P8Y9R", "phone": "+15551234567", "opted_in": opted_in, "consent": {
        "id": "cst_01HNQX2P8Y9R", "contact_id": "ct_01HNQX2P8Y9R", "status": status, "source": "keyword",
        "note": "keyword: STOP" if not opted_in else "keyword: START", "inbound_message_id": "msg_01HNQX2P8Y9R",
        "api_key_id": None, "user_id": None, "created_at": "2026-05-23T14:22:18Z"}}


event_type_register("contact.opted_out", public=True, schema=_schema(False), example=_example(False),
                    description="A consent ledger row opted the contact out (a stop word, the API, an import, "
                                "Meta's marketing preference, an agent).")
event_type_register("contact.opted_in", public=True, schema=_schema(True), example=_example(True),
                    description="A consent ledger row opted the contact in.")


def _consent_data(*, record: ConsentRecord, phone: str | None) -> dict[str, Any]:
    from apps.contacts.services import consent_serialize  # services imports this module

    return {"contact_id": record.contact_id, "phone": phone, "opted_in": record.status == ConsentRecord.Status.OPT_IN,
            "consent": consent_serialize(record)}


def contact_opted_out(*, record: ConsentRecord, phone: str | None) -> dict[str, Any]:
    if record.status != ConsentRecord.Status.OPT_OUT:
        raise ValueError("contact.opted_out for an opt-in record")
    return _consent_data(record=record, phone=phone)


def contact_opted_in(*, record: ConsentRecord, phone: str | None) -> dict[str, Any]:
    if record.status != ConsentRecord.Status.OPT_IN:
        raise ValueError("contact.opted_in for an opt-out record")
    return _consent_data(record=record, phone=phone)


def contact_consent_event(*, record: ConsentRecord, phone: str | None) -> tuple[str, dict[str, Any]]:
    """The event of a new consent ledger row: contact.opted_in or contact.opted_out."""
    if record.status == ConsentRecord.Status.OPT_IN:
        return "contact.opted_in", contact_opted_in(record=record, phone=phone)
    return "contact.opted_out", contact_opted_out(record=record, phone=phone)


# --- contact.merged (API.md Identity) ---------------------------------------------------------------------

event_type_register(
    "contact.merged", public=True,
    schema=obj({"contact_id": ident("contact"), "merged_contact_id": ident("contact"),
                "phone": nullable(STRING), "bsuid": nullable(STRING), "parent_bsuid": nullable(STRING),
                "username": nullable(STRING), "reason": STRING}),
    example={"contact_id": "con_01HNQX2P8Y9R", "merged_contact_id": "con_01HNQX2P8Y9S", "phone": "+15551234567",
             "bsuid": "US.13491208655302741918", "parent_bsuid": None, "username": "ana.w", "reason": "inbound"},
    description="Two contacts turned out to be one person (a phone contact and a business-scoped user id "
                "contact): `merged_contact_id` was folded into `contact_id`, its conversations and messages "
                "moved with it, and it no longer exists.")


def contact_merged(*, contact, merged_contact_id: str, bsuid: str | None, reason: str) -> dict[str, Any]:
    return {"contact_id": contact.pk, "merged_contact_id": merged_contact_id, "phone": contact.phone,
            "bsuid": bsuid or contact.bsuid, "parent_bsuid": contact.parent_bsuid or None,
            "username": contact.username or None, "reason": reason}
