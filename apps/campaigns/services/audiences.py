"""Audiences: a filter over contacts, or a fixed list from a CSV."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from apps.campaigns.models import Audience, AudienceMember
from apps.contacts.models import Contact
from apps.contacts.services import normalize_phone
from apps.core.errors import ValidationFailed
from apps.core.input_guard import csv_rows
from apps.core.models import Workspace

# --- audiences -------------------------------------------------------------------------------------

_FILTER_KEYS = {"tags_any", "tags_all", "custom_fields", "opted_in"}


def _clean_filter(raw: Any) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValidationFailed("filter must be an object.", field="filter")
    unknown = set(raw) - _FILTER_KEYS
    if unknown:
        raise ValidationFailed(f"Unknown filter keys: {', '.join(sorted(unknown))}.", field="filter")
    out: dict[str, Any] = {}
    for key in ("tags_any", "tags_all"):
        tags = raw.get(key)
        if tags is None:
            continue
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags):
            raise ValidationFailed(f"{key} must be a list of tag names (1-64 chars).", field=f"filter.{key}")
        if tags:
            out[key] = sorted(set(tags))
    fields = raw.get("custom_fields")
    if fields is not None:
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and k and isinstance(v, (str, int, float)) and not isinstance(v, bool)
            for k, v in fields.items()
        ):
            raise ValidationFailed("custom_fields must map field names to string values.",
                                   field="filter.custom_fields")
        if fields:
            out["custom_fields"] = {k: str(v) for k, v in fields.items()}
    if raw.get("opted_in") is not None:
        if not isinstance(raw["opted_in"], bool):
            raise ValidationFailed("opted_in must be true or false.", field="filter.opted_in")
        out["opted_in"] = raw["opted_in"]
    return out


def audience_create(*, workspace: Workspace, name: str, filter: Any, waba_id: str = "") -> Audience:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("An audience needs a name.", field="name")
    return Audience.objects.create(workspace=workspace, name=name[:200], kind=Audience.Kind.FILTER,
                                   filter=_clean_filter(filter), waba_id=waba_id)


_PHONE_HEADERS = ("phone", "phone_number", "number", "msisdn", "mobile", "wa_id", "to")


def _upsert_contact(*, workspace: Workspace, phone: str, name: str | None, waba_id: str) -> Contact:
    from apps.contacts.services import contact_upsert_by_phone

    return contact_upsert_by_phone(workspace=workspace, phone=phone, name=name, waba_id=waba_id)


def audience_create_from_csv(*, workspace: Workspace, name: str, data: bytes, waba_id: str = "") -> Audience:
    """A fixed list from a CSV of phones (a header row naming `phone`, optional `name`; or one phone per line).
    Unknown phones become contacts; invalid rows are reported, not fatal; repeated phones count once.
    waba_id: made by a WABA-bound key; new contacts are created through that WABA, and the audience holds
    only the contacts that WABA sees (campaigns.selectors.audience_contacts)."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("An audience needs a name.", field="name")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("The CSV must be UTF-8.", field="file")
    rows = csv_rows(text)
    if not rows:
        raise ValidationFailed("The CSV is empty.", field="file")
    if len(rows) > settings.CAMPAIGN_AUDIENCE_CSV_MAX_ROWS + 1:
        raise ValidationFailed(f"The CSV has more than {settings.CAMPAIGN_AUDIENCE_CSV_MAX_ROWS} rows.", field="file")
    header = [c.strip().lower() for c in rows[0]]
    phone_col = next((header.index(h) for h in _PHONE_HEADERS if h in header), None)
    name_col = header.index("name") if "name" in header else None
    first_line = 2
    if phone_col is None:  # no header: the first column holds phones
        phone_col, name_col, first_line = 0, None, 1
    else:
        rows = rows[1:]
    rejected: list[dict] = []
    phones: dict[str, str | None] = {}
    duplicates = 0
    for offset, row in enumerate(rows):
        line = first_line + offset
        if not any(cell.strip() for cell in row):
            continue
        raw = row[phone_col].strip() if phone_col < len(row) else ""
        try:
            phone = normalize_phone(raw, field="phone")
        except ValidationFailed as exc:
            if len(rejected) < settings.CAMPAIGN_AUDIENCE_CSV_MAX_REJECTED:
                rejected.append({"row": line, "value": raw[:64], "reason": exc.message})
            else:
                rejected.append(None)
            continue
        if phone in phones:
            duplicates += 1
            continue
        phones[phone] = (row[name_col].strip() or None) if name_col is not None and name_col < len(row) else None
    rejected_count = len(rejected)
    rejected = [r for r in rejected if r is not None]
    existing = dict(
        Contact.objects.filter(workspace=workspace, phone__in=list(phones)).values_list("phone", "pk")
    ) if phones else {}
    created = 0
    for phone, contact_name in phones.items():
        if phone not in existing:
            existing[phone] = _upsert_contact(workspace=workspace, phone=phone, name=contact_name, waba_id=waba_id).pk
            created += 1
    with transaction.atomic():
        audience = Audience.objects.create(
            workspace=workspace, name=name[:200], kind=Audience.Kind.LIST, waba_id=waba_id,
            import_report={"rows": sum(1 for r in rows if any(c.strip() for c in r)), "accepted": len(phones),
                           "created": created, "duplicates": duplicates, "rejected_count": rejected_count,
                           "rejected": rejected},
        )
        AudienceMember.objects.bulk_create(
            [AudienceMember(audience=audience, contact_id=existing[p]) for p in phones], batch_size=2000,
            ignore_conflicts=True,
        )
    return audience
