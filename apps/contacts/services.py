"""Contacts write layer: upserts keyed by normalised phone (or BSUID), tags, custom fields, the consent
ledger and the stop/start-word road. Imports live in apps/contacts/imports.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.contacts.events import contact_consent_event
from apps.contacts.models import ConsentRecord, Contact, ContactTag, SocialIdentity

# Part of this module's surface: other apps normalise numbers and match stop words through services.
from apps.contacts.phones import is_bsuid, normalize_bsuid, normalize_phone, wa_id_to_e164  # noqa: F401
from apps.contacts.stopwords import match_consent_keyword
from apps.core.errors import Conflict, ValidationFailed
from apps.core.hooks import contact_mergers
from apps.core.models import Workspace
from apps.core.scoping import waba_scoped
from apps.core.services import event_append
from apps.core.sql import CompiledRead, insert_run, insert_statement

MAX_TAG_CHARS = 64
MAX_TAGS = 100
MAX_CUSTOM_FIELDS = 100
MAX_CUSTOM_KEY_CHARS = 64
MAX_CUSTOM_VALUE_CHARS = 1024

# --- validation helpers shared by the API and the import ------------------------------------------


def clean_tags(raw: Any, *, field: str = "tags") -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise ValidationFailed("tags must be a list of strings.", field=field)
    tags: list[str] = []
    for index, tag in enumerate(raw):
        if not isinstance(tag, str) or not tag.strip():
            raise ValidationFailed("Each tag must be a non-empty string.", field=f"{field}[{index}]")
        tag = tag.strip()
        if len(tag) > MAX_TAG_CHARS:
            raise ValidationFailed(f"A tag is at most {MAX_TAG_CHARS} characters.", field=f"{field}[{index}]")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationFailed(f"At most {MAX_TAGS} tags per contact.", field=field)
    return tags


def clean_custom_fields(raw: Any, *, field: str = "custom_fields") -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValidationFailed("custom_fields must be an object of strings.", field=field)
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_CUSTOM_KEY_CHARS:
            raise ValidationFailed(f"Custom field names are 1–{MAX_CUSTOM_KEY_CHARS} characters.", field=field)
        if not isinstance(value, str):
            raise ValidationFailed("Custom field values must be strings.", field=f"{field}.{key}")
        if len(value) > MAX_CUSTOM_VALUE_CHARS:
            raise ValidationFailed(f"Custom field values are at most {MAX_CUSTOM_VALUE_CHARS} characters.",
                                   field=f"{field}.{key}")
        out[key] = value
    if len(out) > MAX_CUSTOM_FIELDS:
        raise ValidationFailed(f"At most {MAX_CUSTOM_FIELDS} custom fields.", field=field)
    return out


def _tags_set(*, contact: Contact, tags: list[str]) -> None:
    """Replace the contact's tags (inside the caller's transaction)."""
    ContactTag.objects.filter(contact=contact).exclude(name__in=tags).delete()
    existing = set(ContactTag.objects.filter(contact=contact).values_list("name", flat=True))
    ContactTag.objects.bulk_create(
        [ContactTag(workspace_id=contact.workspace_id, contact=contact, name=t) for t in tags if t not in existing],
        ignore_conflicts=True,
    )


# --- upserts ------------------------------------------------------------------------------------------


def _get_or_create_by_phone(*, workspace: Workspace, phone: str, defaults: dict) -> tuple[Contact, bool]:
    """Race-safe on the (workspace, phone) unique constraint: the loser of a race reads the winner's row."""
    existing = Contact.objects.filter(workspace=workspace, phone=phone).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return Contact.objects.create(workspace=workspace, phone=phone, **defaults), True
    except IntegrityError:
        return Contact.objects.get(workspace=workspace, phone=phone), False


def contact_upsert_by_phone(*, workspace: Workspace, phone: str, name: str | None = None,
                            waba_id: str = "") -> Contact:
    """The contact for this phone, created if new (through WABA `waba_id` when given). A given name fills
    an empty one, never overwrites."""
    phone = normalize_phone(phone, field="phone")
    contact, created = _get_or_create_by_phone(workspace=workspace, phone=phone,
                                                defaults={"name": (name or "")[:255], "created_waba_id": waba_id})
    if not created and name and not contact.name:
        Contact.objects.filter(pk=contact.pk, name="").update(name=name[:255], updated_at=timezone.now())
        contact.name = name[:255]
    return contact


def contact_upsert_by_address(*, workspace: Workspace, address: str) -> Contact:
    """The contact a send goes to: by phone (E.164), or by business-scoped user id when Meta gave no phone
    (created keyed by the BSUID when unknown), or by email address."""
    if "@" in address:
        return contact_upsert_by_email(workspace=workspace, email=address)
    if not is_bsuid(address):
        return contact_upsert_by_phone(workspace=workspace, phone=address)
    existing = Contact.objects.filter(workspace=workspace, bsuid=address).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Contact.objects.create(workspace=workspace, bsuid=address)
    except IntegrityError:
        return Contact.objects.get(workspace=workspace, bsuid=address)


def contact_address(contact: Contact | None, *, channel: str = "whatsapp") -> str:
    """Where a message to this contact goes: its phone, else its BSUID (Meta's `recipient`); by email, its
    email address (lower-cased)."""
    if contact is None:
        return ""
    if channel == "email":
        return (contact.email or "").lower()
    return contact.phone or contact.bsuid or ""


def contact_by_email(*, workspace: Workspace, email: str) -> Contact | None:
    """The contact with this email address (case-insensitive; the oldest when several share it)."""
    return Contact.objects.filter(workspace=workspace, email__iexact=email).order_by("created_at").first()


def contact_upsert_by_email(*, workspace: Workspace, email: str, name: str = "") -> Contact:
    """The contact a mail is from (or to): found by email address, else created with it (no phone). A given
    name fills an empty one."""
    email = email.strip().lower()
    contact = contact_by_email(workspace=workspace, email=email)
    if contact is None:
        return Contact.objects.create(workspace=workspace, email=email, name=(name or "")[:255])
    if name and not contact.name:
        Contact.objects.filter(pk=contact.pk, name="").update(name=name[:255], updated_at=timezone.now())
        contact.name = name[:255]
    return contact


@transaction.atomic
def contact_upsert(*, workspace: Workspace, phone: str, name: str | None = None, email: str | None = None,
                   external_id: str | None = None, tags: list[str] | None = None,
                   custom_fields: dict[str, str] | None = None, waba_id: str = "", opted_in: bool | None = None,
                   consent_by: dict | None = None) -> tuple[Contact, bool]:
    """API upsert: the existing contact for this phone (fields given are applied: tags replaced, custom
    fields shallow-merged) or a new one. Returns (contact, created). waba_id: the caller's WABA binding;
    a new contact is created through that WABA, and an existing one it may not see is refused (409),
    neither shown nor changed. opted_in: appends a consent row (source `api`, consent_by's key or user as
    evidence) when it changes the contact's state (contact_consent_set)."""
    phone = normalize_phone(phone, field="phone")
    tags = clean_tags(tags) if tags is not None else None
    custom_fields = clean_custom_fields(custom_fields) if custom_fields is not None else None
    contact, created = _get_or_create_by_phone(
        workspace=workspace, phone=phone,
        defaults={"name": name or "", "email": email or "", "external_id": external_id or "",
                  "custom_fields": custom_fields or {}, "wa_id": phone[1:], "created_waba_id": waba_id},
    )
    if not created and waba_id and not waba_scoped(Contact.objects.filter(pk=contact.pk), waba_id=waba_id).exists():
        raise Conflict("A contact with this phone exists outside this key's WABA.", details={"field": "phone"})
    if not created:
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        _apply_fields(contact=contact, name=name, email=email, external_id=external_id, custom_fields=custom_fields)
    if tags is not None:
        _tags_set(contact=contact, tags=tags)
    if opted_in is not None:
        contact_consent_set(contact=contact, opted_in=opted_in, **(consent_by or {}))
    return contact, created


def contact_consent_set(*, contact: Contact, opted_in: bool, api_key_id: str = "", user=None) -> ConsentRecord | None:
    """`opted_in` given on create or update: a ledger row (source `api`) when the contact has none yet or
    its latest says otherwise; the key (or user) that said it is the row's evidence."""
    if contact.opted_in is opted_in:
        return None
    return consent_record(
        contact=contact, status=ConsentRecord.Status.OPT_IN if opted_in else ConsentRecord.Status.OPT_OUT,
        source=ConsentRecord.Source.API, note="opted_in set on the contact through the API",
        api_key_id=api_key_id, user=user)


def _apply_fields(*, contact: Contact, name=None, email=None, external_id=None, custom_fields=None) -> None:
    changed: list[str] = []
    if email:
        from django.core.exceptions import ValidationError as DjangoValidationError
        from django.core.validators import validate_email

        try:
            validate_email(email)
        except DjangoValidationError:
            raise ValidationFailed("Enter a valid email address.", field="email") from None
    for attr, value in (("name", name), ("email", email), ("external_id", external_id)):
        if value is not None and getattr(contact, attr) != value:
            setattr(contact, attr, value)
            changed.append(attr)
    if custom_fields:
        merged = {**(contact.custom_fields or {}), **custom_fields}
        if merged != contact.custom_fields:
            contact.custom_fields = merged
            changed.append("custom_fields")
    if changed:
        contact.save(update_fields=[*changed, "updated_at"])


@transaction.atomic
def contact_update(*, contact: Contact, data: dict[str, Any], consent_by: dict | None = None) -> Contact:
    """PATCH: `tags` replaces the set, `custom_fields` shallow-merges, other fields overwrite; `opted_in`
    appends a consent row (contact_consent_set)."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if "phone" in data:
        phone = normalize_phone(data["phone"], field="phone")
        if phone != contact.phone:
            if Contact.objects.filter(workspace_id=contact.workspace_id, phone=phone).exists():
                raise ValidationFailed("Another contact already has this phone.", field="phone")
            contact.phone, contact.wa_id = phone, phone[1:]
            contact.save(update_fields=["phone", "wa_id", "updated_at"])
    custom_fields = clean_custom_fields(data["custom_fields"]) if "custom_fields" in data else None
    _apply_fields(contact=contact, name=data.get("name"), email=data.get("email"),
                  external_id=data.get("external_id"), custom_fields=custom_fields)
    if "tags" in data:
        _tags_set(contact=contact, tags=clean_tags(data["tags"]))
    if data.get("opted_in") is not None:
        contact_consent_set(contact=contact, opted_in=data["opted_in"], **(consent_by or {}))
    return contact


@transaction.atomic
def contact_delete(*, contact: Contact) -> None:
    """Erase a contact with its tags and consent ledger (the one sanctioned way a ledger row goes)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('reach.consent_erase', 'on', true)")
    ConsentRecord.objects.filter(contact=contact)._raw_delete(ConsentRecord.objects.db)
    contact.delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('reach.consent_erase', 'off', true)")


def inbound_sender_phone(phone: str | None, wa_id: str | None) -> str | None:
    """The E.164 phone an inbound sender's contact is found by (None when Meta gave none usable)."""
    return _safe_phone(phone, wa_id)


def _safe_phone(phone: str | None, wa_id: str | None) -> str | None:
    raw = phone or wa_id_to_e164(wa_id or "")
    if not raw:
        return None
    try:
        return normalize_phone(raw, field="phone")
    except ValidationFailed:
        # Meta vouches for the number; keep it as sent rather than lose the person.
        digits = wa_id_to_e164(raw)
        return digits if 9 <= len(digits) <= 16 else None


@transaction.atomic(savepoint=False)  # the receive road's own transaction; a failure rolls it all back
def contact_upsert_from_inbound(*, workspace: Workspace, phone: str | None, wa_id: str | None,
                                bsuid: str | None, profile_name: str | None, parent_bsuid: str | None = None,
                                username: str | None = None,
                                by_phone: dict[str, Contact] | None = None) -> tuple[Contact, bool]:
    """Find the sender by phone, else by BSUID; create when unknown. Fills what Meta newly tells us
    (wa_id, BSUID, parent BSUID, username, phone, a name where none is set) without overwriting what a
    person typed. When the phone's contact and the BSUID's contact are two rows, the BSUID stays on its
    own row: the caller merges them (conversations.services.identity.contact_merge).
    by_phone: the workspace's contacts of these senders, already locked by contacts_lock_by_phone (a batch
    of inbound messages finds them in one query); a phone missing from it has no row."""
    e164 = _safe_phone(phone, wa_id)
    bsuid = bsuid or None
    parent_bsuid, username = (parent_bsuid or "")[:160], (username or "")[:64]
    contact = None
    if e164 and by_phone is not None:
        contact = by_phone.get(e164)
    elif e164:
        contact = Contact.objects.select_for_update().filter(workspace=workspace, phone=e164).first()
    if contact is None and bsuid:
        contact = Contact.objects.select_for_update().filter(workspace=workspace, bsuid=bsuid).first()
    if contact is None:
        if not e164 and not bsuid:
            raise ValidationFailed("An inbound sender needs a phone or a BSUID.", field="from")
        try:
            with transaction.atomic():
                contact = _contact_for_new_sender(workspace=workspace, e164=e164, wa_id=wa_id, bsuid=bsuid,
                                                  profile_name=profile_name, parent_bsuid=parent_bsuid,
                                                  username=username)
                contact.save(force_insert=True)
                return contact, True
        except IntegrityError:  # a concurrent inbound created it first
            lookup = {"phone": e164} if e164 else {"bsuid": bsuid}
            contact = Contact.objects.select_for_update().get(workspace=workspace, **lookup)
    changed: list[str] = []
    if e164 and not contact.phone and not Contact.objects.filter(workspace=workspace, phone=e164).exists():
        contact.phone = e164
        changed.append("phone")
    if bsuid and contact.bsuid != bsuid and not Contact.objects.filter(workspace=workspace, bsuid=bsuid).exists():
        contact.bsuid = bsuid  # BSUIDs are regenerated when the user changes number
        changed.append("bsuid")
    new_wa_id = (wa_id or "")[:32]
    if new_wa_id and contact.wa_id != new_wa_id:
        contact.wa_id = new_wa_id
        changed.append("wa_id")
    if profile_name and not contact.name:
        contact.name = profile_name[:255]
        changed.append("name")
    for attr, value in (("parent_bsuid", parent_bsuid), ("username", username)):
        if value and getattr(contact, attr) != value:
            setattr(contact, attr, value)  # Meta's current values: usernames can change
            changed.append(attr)
    if changed:
        contact.save(update_fields=[*changed, "updated_at"])
    return contact, False


@transaction.atomic(savepoint=False)  # inside the caller's merge transaction
def contact_absorb(*, survivor: Contact, absorbed: Contact, reason: str = "inbound") -> dict[str, Any]:
    """The contacts' half of a merge (API.md Identity): `absorbed` is the same person as `survivor` (a
    BSUID-only row and a phone row Meta has now tied together). Its tags, custom fields, name, email, window
    and latest consent move to the survivor, which takes its BSUID, parent BSUID and username; then the
    absorbed row is erased and `contact.merged` appended. The caller has already moved what sits above
    contacts (conversations, messages); the registered contact mergers (core.hooks) move the other apps' rows
    before the erase, so nothing of the person cascades away. Returns the event's data."""
    from apps.contacts.events import contact_merged

    survivor = Contact.objects.select_for_update().get(pk=survivor.pk)
    absorbed = Contact.objects.select_for_update().get(pk=absorbed.pk, workspace_id=survivor.workspace_id)
    tags = list(ContactTag.objects.filter(contact=survivor).values_list("name", flat=True))
    for name in ContactTag.objects.filter(contact=absorbed).values_list("name", flat=True):
        if name not in tags:
            tags.append(name)
    latest = ConsentRecord.objects.filter(contact=absorbed).order_by("-created_at").first()
    mine = ConsentRecord.objects.filter(contact=survivor).order_by("-created_at").first()
    bsuid = absorbed.bsuid
    identity = {"bsuid": absorbed.bsuid, "parent_bsuid": absorbed.parent_bsuid or survivor.parent_bsuid,
                "username": absorbed.username or survivor.username}
    fields = {"custom_fields": {**(absorbed.custom_fields or {}), **(survivor.custom_fields or {})},
              "name": survivor.name or absorbed.name, "email": survivor.email or absorbed.email,
              "external_id": survivor.external_id or absorbed.external_id}
    last_inbound = max((t for t in (survivor.last_inbound_at, absorbed.last_inbound_at) if t), default=None)
    absorbed_id = absorbed.pk
    for merger in contact_mergers():  # the apps above (campaign recipients, audiences, links, reports) move theirs
        merger(workspace_id=survivor.workspace_id, survivor_id=survivor.pk, absorbed_id=absorbed_id)
    # The person's Messenger / Instagram ids stay theirs (unique per account, so no two rows can clash).
    SocialIdentity.objects.filter(contact_id=absorbed_id).update(contact_id=survivor.pk)
    contact_delete(contact=absorbed)  # frees the BSUID (unique per workspace) for the survivor
    for key, value in {**fields, **identity}.items():
        setattr(survivor, key, value)
    survivor.last_inbound_at = last_inbound
    survivor.save(update_fields=[*fields, *identity, "last_inbound_at", "updated_at"])
    _tags_set(contact=survivor, tags=tags)
    if latest is not None and (mine is None or latest.created_at > mine.created_at):
        consent_record(contact=survivor, status=latest.status, source=latest.source,
                       note=f"merged from {absorbed_id}: {latest.note}"[:1000])
    data = contact_merged(contact=survivor, merged_contact_id=absorbed_id, bsuid=bsuid, reason=reason)
    event_append(workspace=survivor.workspace, type="contact.merged", data=data)
    return data


def contact_inbound_recorded(*, contact: Contact, at: datetime) -> None:
    """Moves last_inbound_at forward only (webhooks arrive out of order)."""
    with connection.cursor() as cursor:
        cursor.execute(*contact_inbound_recorded_statement(contact=contact, at=at))


def contact_inbound_recorded_statement(*, contact: Contact, at: datetime) -> tuple[str, list]:
    """contact_inbound_recorded's UPDATE, unexecuted, as (sql, params), for a caller that sends it together
    with its other writes; the instance is brought forward as the row will be (the caller holds its lock)."""
    if contact.last_inbound_at is None or contact.last_inbound_at < at:
        contact.last_inbound_at = at
    return (f"UPDATE {Contact._meta.db_table} SET last_inbound_at = %s "  # noqa: S608 - our table's name
            "WHERE id = %s AND (last_inbound_at IS NULL OR last_inbound_at < %s)", [at, contact.pk, at])


def contact_key_share_lock(*, contact_id: str) -> None:
    """Take the contact's KEY SHARE lock now: the lock a row that references the contact (a message, a
    conversation) takes at commit through its deferred foreign key. A writer that takes the workspace's event
    counter takes this first, in the receive road's order (contact, then counter); taken at commit, after the
    counter, it deadlocks with that road. PostgreSQL's; elsewhere nothing to order."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {Contact._meta.db_table} WHERE id = %s FOR KEY SHARE",  # noqa: S608
                           [contact_id])


def _contact_for_new_sender(*, workspace: Workspace, e164: str | None, wa_id: str | None, bsuid: str | None,
                            profile_name: str | None, parent_bsuid: str = "", username: str = "") -> Contact:
    """The row a first message from an unknown sender creates (not saved): one rule for one sender and for
    a batch's new senders (contacts_create_for_inbound)."""
    return Contact(workspace=workspace, phone=e164, bsuid=bsuid or None, wa_id=(wa_id or (e164 or "")[1:])[:32],
                   name=(profile_name or "")[:255], parent_bsuid=(parent_bsuid or "")[:160],
                   username=(username or "")[:64])


def contacts_create_for_inbound(*, workspace: Workspace, senders: list[dict], known: dict[str, Contact]
                                ) -> tuple[dict[str, Contact], set[str]]:
    """Create, in one INSERT, the contacts of a batch's senders that have no row yet, then lock them in phone
    order (after the batch's known senders: the receive road's lock order). `senders`: dicts with phone,
    wa_id, profile_name, parent_bsuid and username as Meta names them; a sender that also carries a BSUID
    is left out (whether its BSUID already has a row decides what contact_upsert_from_inbound does, one by
    one), and so is a phone in `known` (contacts_lock_by_phone's answer). Returns ({e164: Contact} for the phones given, the ids
    created here); a phone a concurrent writer created first is found, not created (ON CONFLICT DO NOTHING
    waits for that writer's commit)."""
    new: dict[str, Contact] = {}
    for sender in senders:
        if sender.get("bsuid"):
            continue
        e164 = _safe_phone(sender.get("phone"), sender.get("wa_id"))
        if e164 and e164 not in new and e164 not in known:
            new[e164] = _contact_for_new_sender(
                workspace=workspace, e164=e164, wa_id=sender.get("wa_id"), bsuid=None,
                profile_name=sender.get("profile_name"), parent_bsuid=sender.get("parent_bsuid") or "",
                username=sender.get("username") or "")
    if not new:
        return {}, set()
    rows = [new[phone] for phone in sorted(new)]
    insert_run(rows, insert_statement(rows, skip_conflicts=True))
    found = {c.phone: c for c in _contacts_locked_by_phone(workspace_id=workspace.pk, phones=sorted(new))}
    return found, {c.pk for phone, c in found.items() if c.pk == new[phone].pk}


def contacts_lock_by_phone(*, workspace: Workspace, senders: list[tuple[str | None, str | None]]) -> dict[str, Contact]:
    """The contacts of these inbound senders ((phone, wa_id) as Meta names them), found by phone as
    contact_upsert_from_inbound finds one, locked in phone order (the receive road's contact lock order),
    in one query. Returns {e164: Contact} for the phones that have a row."""
    phones = sorted({p for p in (_safe_phone(phone, wa_id) for phone, wa_id in senders) if p})
    if not phones:
        return {}
    return {c.phone: c for c in _contacts_locked_by_phone(workspace_id=workspace.pk, phones=phones)}


def _contacts_locked_by_phone_query(workspace_id: str, phones: list[str]):
    return Contact.objects.select_for_update().filter(workspace_id=workspace_id, phone__in=phones).order_by("phone")


_contacts_locked_by_phone = CompiledRead(_contacts_locked_by_phone_query)  # once per receive batch


# --- consent ledger --------------------------------------------------------------------------------


def consent_serialize(record: ConsentRecord) -> dict[str, Any]:
    return {
        "id": record.pk,
        "contact_id": record.contact_id,
        "status": record.status,
        "source": record.source,
        "note": record.note,
        "inbound_message_id": record.inbound_message_id or None,
        "api_key_id": record.api_key_id or None,
        "user_id": record.user_id,
        "created_at": record.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@transaction.atomic
def consent_record(*, contact: Contact, status: str, source: str, note: str = "", inbound_message_id: str = "",
                   api_key_id: str = "", user=None) -> ConsentRecord:
    """Append a ledger row, update the contact's cached `opted_in` in the same transaction, and emit
    contact.opted_out / contact.opted_in."""
    if status not in ConsentRecord.Status.values:
        raise ValidationFailed("status must be opt_in or opt_out.", field="status")
    if source not in ConsentRecord.Source.values:
        raise ValidationFailed(f"source must be one of {', '.join(ConsentRecord.Source.values)}.", field="source")
    # The row lock orders concurrent consent changes, so the cache always equals the latest row.
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    record = ConsentRecord.objects.create(
        workspace_id=locked.workspace_id, contact=locked, status=status, source=source, note=note or "",
        inbound_message_id=inbound_message_id or "", api_key_id=api_key_id or "", user=user,
    )
    opted_in = status == ConsentRecord.Status.OPT_IN
    Contact.objects.filter(pk=locked.pk).update(opted_in=opted_in, consent_updated_at=record.created_at,
                                                updated_at=timezone.now())
    contact.opted_in, contact.consent_updated_at = opted_in, record.created_at
    event_type, data = contact_consent_event(record=record, phone=locked.phone)
    event_append(workspace=locked.workspace, type=event_type, data=data)
    return record


def consent_from_inbound_text(*, contact: Contact, text: str, inbound_message_id: str) -> str | None:
    """A stop/start word as the whole message → a ledger row with source `keyword`; returns the status."""
    status = match_consent_keyword(text)
    if status is None:
        return None
    consent_record(contact=contact, status=status, source=ConsentRecord.Source.KEYWORD,
                   note=f"keyword: {text.strip()[:100]}", inbound_message_id=inbound_message_id)
    return status


@transaction.atomic
def consent_from_meta_preference(*, workspace: Workspace, wa_id: str | None, bsuid: str | None, value: str,
                                 at: datetime | None = None) -> ConsentRecord | None:
    """Meta's user_preferences webhook (marketing_messages stop/resume), recorded like a keyword."""
    value = (value or "").strip().lower()
    status = {"stop": ConsentRecord.Status.OPT_OUT, "resume": ConsentRecord.Status.OPT_IN}.get(value)
    if status is None:
        return None
    contact, _ = contact_upsert_from_inbound(workspace=workspace, phone=None, wa_id=wa_id, bsuid=bsuid,
                                             profile_name=None)
    when = (at or timezone.now()).isoformat().replace("+00:00", "Z")
    return consent_record(contact=contact, status=status, source=ConsentRecord.Source.META_PREFERENCES,
                          note=f"Meta user_preferences marketing_messages={value} at {when}")


# --- block / unblock (Meta's block_users API) -------------------------------------------------------------


def contact_block_set(*, contact: Contact, blocked: bool, waba_id: str = "") -> Contact:
    """Block (or unblock) a customer with Meta on every number of the workspace (or of the key's WABA) the
    customer can reach, then record it: a blocked contact gets no messages (policy: CONTACT_BLOCKED). The
    Graph calls run outside any transaction; a refusal from Meta is 502 UPSTREAM_ERROR and nothing is
    recorded."""
    from apps.core.errors import UpstreamError
    from apps.providers.base import ProviderError
    from apps.providers.registry import whatsapp_provider
    from apps.wabas.selectors import phone_numbers_for
    from apps.wabas.services import waba_access_token

    address = contact.phone or contact.bsuid
    if not address:
        raise ValidationFailed("This contact has no phone or business-scoped user id to block.", field="id")
    numbers = list(phone_numbers_for(workspace=contact.workspace, waba_id=waba_id).select_related("waba"))
    for number in numbers:
        try:
            whatsapp_provider(simulated=number.waba.is_simulated).block_users(
                phone_number_id=number.meta_phone_number_id, access_token=waba_access_token(number.waba),
                users=[address], block=blocked)
        except ProviderError as exc:
            raise UpstreamError(f"Meta refused to {'block' if blocked else 'unblock'} the user: {exc.message}",
                                details={"upstream_code": exc.upstream_code,
                                         "phone_number_id": number.pk}) from exc
    at = timezone.now() if blocked else None
    Contact.objects.filter(pk=contact.pk).update(blocked_at=at, updated_at=timezone.now())
    contact.blocked_at = at
    return contact


def contact_from_social_inbound(*, workspace: Workspace, account, user_id: str, name: str = "") -> Contact:
    """The contact behind a Messenger PSID / Instagram IGSID that wrote to `account`: found by the identity,
    else created (no phone: Meta does not share it on these channels). Call inside a transaction."""
    from apps.contacts.models import SocialIdentity

    identity = SocialIdentity.objects.select_related("contact").filter(account=account, user_id=user_id).first()
    if identity is not None:
        return identity.contact
    contact = Contact.objects.create(workspace=workspace, name=(name or "")[:255])
    _, created = SocialIdentity.objects.get_or_create(account=account, user_id=user_id,
                                                      defaults={"workspace": workspace, "contact": contact})
    if not created:  # a concurrent first message won: use its contact, drop ours
        contact.delete()
        contact = SocialIdentity.objects.select_related("contact").get(account=account, user_id=user_id).contact
    return contact
