"""Contacts read layer."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.contacts.models import ConsentRecord, Contact, ContactImport, ContactTag
from apps.core.errors import ValidationFailed
from apps.core.models import Workspace

OPT_OUT_CONFIRMATION_SETTING = "opt_out_confirmation_text"
OPT_IN_CONFIRMATION_SETTING = "opt_in_confirmation_text"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def contact_list(*, workspace: Workspace, search: str | None = None, tag: str | None = None,
                 opted_in: str | bool | None = None, external_id: str | None = None,
                 phone: str | None = None, bsuid: str | None = None) -> QuerySet[Contact]:
    """Filters match the indexes: trigram GIN on name/phone (PostgreSQL), (workspace, name, contact) on
    tags, (workspace, opted_in), (workspace, external_id)."""
    qs = Contact.objects.filter(workspace=workspace)
    if search:
        search = search.strip()[:100]
        digits = search.lstrip("+").replace(" ", "").replace("-", "")
        condition = Q(name__icontains=search)
        if search.startswith("@"):  # a WhatsApp username (contacts without a phone are found by it)
            condition = Q(username__iexact=search[1:])
        elif digits.isdigit():
            condition |= Q(phone__contains=digits)
        qs = qs.filter(condition)
    if tag:
        qs = qs.filter(Exists(ContactTag.objects.filter(contact=OuterRef("pk"), workspace=workspace, name=tag)))
    if opted_in not in (None, ""):
        if isinstance(opted_in, str):
            lowered = opted_in.lower()
            if lowered not in _TRUE | _FALSE:
                raise ValidationFailed("opted_in must be true or false.", field="opted_in")
            opted_in = lowered in _TRUE
        qs = qs.filter(opted_in=opted_in)
    if external_id:
        qs = qs.filter(external_id=external_id)
    if phone:
        qs = qs.filter(phone=phone)
    if bsuid:
        qs = qs.filter(bsuid=bsuid)
    return qs


def contact_tags(*, contact: Contact) -> list[str]:
    cached = getattr(contact, "_prefetched_objects_cache", {}).get("tag_rows")
    rows = cached if cached is not None else contact.tag_rows.all()
    return sorted(row.name for row in rows)


def contact_get_by_phone(*, workspace: Workspace, phone: str) -> Contact | None:
    return Contact.objects.filter(workspace=workspace, phone=phone).first()


def contact_is_opted_out(*, contact: Contact) -> bool:
    """The send path's consent check (MARKETING only): the cache equals the ledger's latest row."""
    return not contact.opted_in


def contact_opted_in_from_ledger(*, contact: Contact) -> bool:
    """The ledger's own answer (for audits and tests of the cache): no row means never opted out."""
    latest = ConsentRecord.objects.filter(contact=contact).order_by("-created_at", "-id").first()
    return latest is None or latest.status == ConsentRecord.Status.OPT_IN


def consent_history(*, contact: Contact) -> QuerySet[ConsentRecord]:
    return ConsentRecord.objects.filter(contact=contact)


def opt_out_confirmation_text(*, workspace: Workspace) -> str | None:
    """The reply to send (inside the window) after a stop word, when the workspace turned it on in
    Workspace.settings["opt_out_confirmation_text"]; None means send nothing."""
    settings = (workspace.live.settings if workspace.is_sandbox else workspace.settings) or {}
    own = workspace.settings or {}
    text = own.get(OPT_OUT_CONFIRMATION_SETTING, settings.get(OPT_OUT_CONFIRMATION_SETTING))
    return text.strip() if isinstance(text, str) and text.strip() else None


def opt_in_confirmation_text(*, workspace: Workspace) -> str | None:
    settings = (workspace.live.settings if workspace.is_sandbox else workspace.settings) or {}
    own = workspace.settings or {}
    text = own.get(OPT_IN_CONFIRMATION_SETTING, settings.get(OPT_IN_CONFIRMATION_SETTING))
    return text.strip() if isinstance(text, str) and text.strip() else None


def contact_import_get(*, workspace: Workspace, import_id: str) -> ContactImport | None:
    return ContactImport.objects.filter(workspace=workspace, pk=import_id).first()
