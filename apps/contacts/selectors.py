"""Contacts read layer."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.contacts.models import ConsentRecord, Contact, ContactImport, ContactTag
from apps.core.errors import ValidationFailed
from apps.core.models import Workspace
from apps.core.selectors import tenant_queryset
from apps.core.tenancy import Tenant

OPT_OUT_CONFIRMATION_SETTING = "opt_out_confirmation_text"
OPT_IN_CONFIRMATION_SETTING = "opt_in_confirmation_text"
# Workspace.settings (of the live workspace; its sandbox follows): MARKETING only to contacts with an opt-in row.
# Absent means on: new workspaces have it; those that existed before it got it off (contacts migration 0010).
MARKETING_REQUIRES_OPT_IN_SETTING = "marketing_requires_opt_in"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def contact_list(*, tenant: Tenant, search: str | None = None, tag: str | None = None,
                 opted_in: str | bool | None = None, external_id: str | None = None,
                 phone: str | None = None, custom_field: tuple[str, str] | None = None,
                 bsuid: str | None = None) -> QuerySet[Contact]:
    """Filters match the indexes: trigram GIN on name/phone (PostgreSQL), (workspace, name, contact) on
    tags, (workspace, opted_in), (workspace, external_id). A WABA-bound key sees the contacts of its WABA."""
    workspace = tenant.workspace
    qs = tenant_queryset(Contact, tenant=tenant)
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
        # opted_in is the latest ledger row's state: no row is not an opt-in.
        qs = qs.filter(opted_in=True) if opted_in else qs.filter(Q(opted_in=False) | Q(opted_in__isnull=True))
    if external_id:
        qs = qs.filter(external_id=external_id)
    if phone:
        qs = qs.filter(phone=phone)
    if bsuid:
        qs = qs.filter(bsuid=bsuid)
    if custom_field and custom_field[0]:
        key, value = custom_field
        qs = qs.filter(**{f"custom_fields__{key}": value}) if value else qs.filter(custom_fields__has_key=key)
    return qs


def contact_tags(*, contact: Contact) -> list[str]:
    cached = getattr(contact, "_prefetched_objects_cache", {}).get("tag_rows")
    rows = cached if cached is not None else contact.tag_rows.all()
    return sorted(row.name for row in rows)


def contact_get_by_phone(*, workspace: Workspace, phone: str) -> Contact | None:
    return Contact.objects.filter(workspace=workspace, phone=phone).first()


def contact_is_opted_out(*, contact: Contact) -> bool:
    """The latest ledger row is an opt-out (the cache equals the ledger's latest row)."""
    return contact.opted_in is False


def contact_opted_in(*, contact: Contact) -> bool:
    """The latest ledger row is an opt-in (what the API's `opted_in` reports)."""
    return contact.opted_in is True


def marketing_requires_opt_in(*, workspace: Workspace) -> bool:
    live = workspace.live if workspace.is_sandbox else workspace
    return bool((live.settings or {}).get(MARKETING_REQUIRES_OPT_IN_SETTING, True))


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


def social_user_id(*, contact: Contact, account) -> str:
    """The customer's PSID / IGSID on this Page or Instagram account ("" when they never wrote to it)."""
    from apps.contacts.models import SocialIdentity

    return SocialIdentity.objects.filter(account=account, contact=contact).values_list("user_id", flat=True) \
        .first() or ""
