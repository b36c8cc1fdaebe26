"""Streaming CSV import: `phone,name,email,tags,external_id,…` (other columns become custom fields).

The file is read as a stream and written in batches; each batch is one transaction holding whole rows
(a contact and its tags together), so a row is never half-imported. On PostgreSQL a batch is a single
`INSERT … SELECT FROM unnest(…) ON CONFLICT (workspace_id, phone) WHERE phone IS NOT NULL DO UPDATE`
(race-safe against concurrent API upserts, `xmax = 0` tells created from updated); elsewhere it falls back
to select + bulk_create + bulk_update inside the batch transaction.

Rows are reported with their spreadsheet row number (the header is row 1)."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from django.db import connection, transaction
from django.utils import timezone

from apps.contacts.models import Contact, ContactTag
from apps.contacts.phones import normalize_phone
from apps.contacts.services import (
    MAX_CUSTOM_FIELDS,
    MAX_CUSTOM_KEY_CHARS,
    MAX_CUSTOM_VALUE_CHARS,
    MAX_TAG_CHARS,
)
from apps.core.errors import ApplicationError, ValidationFailed
from apps.core.ids import new_id
from apps.core.models import Workspace
from apps.core.scoping import waba_scoped

BATCH_SIZE = 2000
MAX_REPORTED_REJECTIONS = 1000
# `opted_in` appends a consent ledger row (source `import`); `opted_in_evidence` is its proof (a form, a date,
# an IP address...), kept as the row's note beside the importing key or user.
KNOWN_COLUMNS = ("phone", "name", "email", "tags", "external_id", "opted_in", "opted_in_evidence")
_TRUE, _FALSE = {"true", "yes", "y", "1", "opt_in", "opted_in"}, {"false", "no", "n", "0", "opt_out", "opted_out"}
_TAG_SPLIT = re.compile(r"[;|,]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_email = EmailValidator()
csv.field_size_limit(1024 * 1024)


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    rejected_rows: list[dict] = field(default_factory=list)

    def reject(self, row: int, reason: str, phone: str = "") -> None:
        self.rejected += 1
        if len(self.rejected_rows) < MAX_REPORTED_REJECTIONS:
            self.rejected_rows.append({"row": row, "phone": phone[:40], "reason": reason})

    def as_dict(self) -> dict:
        return {"rows": self.rows, "created": self.created, "updated": self.updated, "rejected": self.rejected,
                "rejected_rows": self.rejected_rows,
                "rejected_rows_truncated": self.rejected > len(self.rejected_rows)}


class _CountingReader(io.RawIOBase):
    """Counts bytes pulled from the upload so progress is known without knowing the row count."""

    def __init__(self, raw: BinaryIO, prefix: bytes = b""):
        self.raw, self.prefix, self.count = raw, prefix, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.prefix:
            n = min(len(buffer), len(self.prefix))
            buffer[:n], self.prefix = self.prefix[:n], self.prefix[n:]
        else:
            data = self.raw.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.count += n
        return n


@dataclass
class _Row:
    number: int
    phone: str
    name: str
    email: str
    external_id: str
    tags: list[str]
    custom: dict[str, str]
    opted_in: bool | None = None  # an explicit consent column value; None leaves consent alone
    evidence: str = ""  # the opted_in_evidence column


@dataclass(frozen=True)
class ImportBy:
    """Who imports: their WABA binding (new contacts are created through it; existing contacts it may not
    see are rejected, neither changed nor reported) and the evidence a consent row records."""

    waba_id: str = ""
    api_key_id: str = ""
    user: object = None


def _open_text(raw: BinaryIO) -> tuple[io.TextIOBase, _CountingReader]:
    head = raw.read(8192)
    if not head or not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise ValidationFailed("The file is empty.", field="file")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        if b"\x00" in head:
            raise ValidationFailed("The file is binary, not CSV text (save it as CSV, UTF-8).", field="file")
        encoding = "utf-8-sig"
    counter = _CountingReader(raw, head)
    # surrogateescape keeps undecodable bytes visible per row, so one badly encoded row is rejected
    # with its number instead of failing the whole file.
    text = io.TextIOWrapper(io.BufferedReader(counter, 65536), encoding=encoding, errors="surrogateescape",
                            newline="")
    return text, counter


def _header(reader) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationFailed("The file is empty.", field="file")
    except csv.Error as exc:
        raise ValidationFailed(f"The header row is not valid CSV: {exc}.", field="file")
    names = [h.strip().lower() if h.strip().lower() in KNOWN_COLUMNS else h.strip() for h in header]
    if any(_SURROGATE.search(n) for n in names):
        raise ValidationFailed("The file is not UTF-8 text (save it as CSV, UTF-8).", field="file")
    if "phone" not in names:
        shown = ", ".join(n[:30] for n in names[:10])
        raise ValidationFailed(
            "The first row must be a header with a `phone` column (phone,name,email,tags,…); "
            f"found: {shown[:300]}.", field="file")
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise ValidationFailed(f"Duplicate header columns: {', '.join(dupes)[:200]}.", field="file")
    extra = [n for n in names if n and n not in KNOWN_COLUMNS]
    if len(extra) > MAX_CUSTOM_FIELDS:
        raise ValidationFailed(f"At most {MAX_CUSTOM_FIELDS} custom field columns.", field="file")
    bad = [n for n in extra if len(n) > MAX_CUSTOM_KEY_CHARS]
    if bad:
        raise ValidationFailed(f"Column names are at most {MAX_CUSTOM_KEY_CHARS} characters.", field="file")
    return names


def _parse_row(values: list[str], *, names: list[str], number: int, report: ImportReport,
               seen: dict[str, int]) -> _Row | None:
    if len(values) > len(names) and any(v.strip() for v in values[len(names):]):
        report.reject(number, f"The row has {len(values)} fields; the header has {len(names)}.")
        return None
    cells = dict(zip(names, values, strict=False))
    raw_phone = (cells.get("phone") or "").strip()
    if any(_SURROGATE.search(v) for v in values):
        report.reject(number, "The row is not valid UTF-8 (wrong encoding? save the file as CSV, UTF-8).",
                      _SURROGATE.sub("?", raw_phone))
        return None
    try:
        phone = normalize_phone(raw_phone, field="phone")
    except ApplicationError as exc:
        report.reject(number, f"phone: {exc.message}", raw_phone)
        return None
    if phone in seen:
        report.reject(number, f"Duplicate phone within the file (first on row {seen[phone]}).", raw_phone)
        return None
    name = (cells.get("name") or "").strip()
    email = (cells.get("email") or "").strip()
    external_id = (cells.get("external_id") or "").strip()
    if len(name) > 255:
        report.reject(number, "name: at most 255 characters.", raw_phone)
        return None
    if email:
        try:
            _email(email)
        except DjangoValidationError:
            report.reject(number, f"email: {email[:80]!r} is not a valid address.", raw_phone)
            return None
    if len(external_id) > 255:
        report.reject(number, "external_id: at most 255 characters.", raw_phone)
        return None
    tags = list(dict.fromkeys(t.strip() for t in _TAG_SPLIT.split(cells.get("tags") or "") if t.strip()))
    if any(len(t) > MAX_TAG_CHARS for t in tags):
        report.reject(number, f"tags: each tag is at most {MAX_TAG_CHARS} characters.", raw_phone)
        return None
    custom = {}
    for key, value in cells.items():
        if key and key not in KNOWN_COLUMNS and value.strip():
            if len(value) > MAX_CUSTOM_VALUE_CHARS:
                report.reject(number, f"{key}: at most {MAX_CUSTOM_VALUE_CHARS} characters.", raw_phone)
                return None
            custom[key] = value.strip()
    raw_consent = (cells.get("opted_in") or "").strip().lower()
    if raw_consent and raw_consent not in _TRUE | _FALSE:
        report.reject(number, f"opted_in: {raw_consent[:20]!r} is not true/false.", raw_phone)
        return None
    evidence = (cells.get("opted_in_evidence") or "").strip()
    if len(evidence) > 2000:
        report.reject(number, "opted_in_evidence: at most 2000 characters.", raw_phone)
        return None
    seen[phone] = number
    return _Row(number, phone, name, email, external_id, tags, custom,
                opted_in=(raw_consent in _TRUE) if raw_consent else None, evidence=evidence)


def _write_batch_postgres(*, workspace: Workspace, rows: list[_Row], by: ImportBy) -> tuple[int, int]:
    now = timezone.now()
    sql = """
        INSERT INTO contacts_contact (id, workspace_id, phone, wa_id, bsuid, parent_bsuid, username, name, email,
                             external_id, custom_fields, opted_in, consent_updated_at, last_inbound_at,
                             created_waba_id, created_at, updated_at)
        SELECT u.id, %s, u.phone, u.wa_id, NULL, '', '', u.name, u.email, u.external_id, u.custom_fields,
               NULL, NULL, NULL, %s, %s, %s
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[])
             AS u(id, phone, wa_id, name, email, external_id, custom_fields)
        ON CONFLICT (workspace_id, phone) WHERE phone IS NOT NULL DO UPDATE SET
            name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE contacts_contact.name END,
            email = CASE WHEN EXCLUDED.email <> '' THEN EXCLUDED.email ELSE contacts_contact.email END,
            external_id = CASE WHEN EXCLUDED.external_id <> '' THEN EXCLUDED.external_id
                               ELSE contacts_contact.external_id END,
            custom_fields = contacts_contact.custom_fields || EXCLUDED.custom_fields,
            updated_at = EXCLUDED.updated_at
        RETURNING id, phone, (xmax = 0) AS inserted, opted_in, consent_updated_at
    """
    params = [
        workspace.pk, by.waba_id, now, now,
        [new_id("con") for _ in rows], [r.phone for r in rows], [r.phone[1:] for r in rows],
        [r.name for r in rows], [r.email for r in rows], [r.external_id for r in rows],
        [json.dumps(r.custom) for r in rows],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall()
        ids = {phone: pk for pk, phone, *_ in returned}
        created = sum(1 for _, _, inserted, *_ in returned if inserted)
        state = {phone: (pk, opted_in, consent_at) for pk, phone, _, opted_in, consent_at in returned}
        tag_ws, tag_contact, tag_name = [], [], []
        for r in rows:
            for t in r.tags:
                tag_ws.append(workspace.pk)
                tag_contact.append(ids[r.phone])
                tag_name.append(t)
        if tag_name:
            cursor.execute(
                "INSERT INTO contacts_contacttag (workspace_id, contact_id, name) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) "
                "ON CONFLICT (contact_id, name) DO NOTHING",
                [tag_ws, tag_contact, tag_name],
            )
    _consent_from_import(workspace=workspace, rows=rows, state=state, by=by)
    return created, len(returned) - created


def _write_batch_portable(*, workspace: Workspace, rows: list[_Row], by: ImportBy) -> tuple[int, int]:
    now = timezone.now()
    existing = {c.phone: c for c in Contact.objects.filter(workspace=workspace, phone__in=[r.phone for r in rows])}
    new, changed = [], []
    for r in rows:
        contact = existing.get(r.phone)
        if contact is None:
            contact = Contact(workspace=workspace, phone=r.phone, wa_id=r.phone[1:], name=r.name, email=r.email,
                              external_id=r.external_id, custom_fields=r.custom, created_waba_id=by.waba_id,
                              created_at=now, updated_at=now)
            new.append(contact)
            existing[r.phone] = contact
            continue
        contact.name = r.name or contact.name
        contact.email = r.email or contact.email
        contact.external_id = r.external_id or contact.external_id
        contact.custom_fields = {**(contact.custom_fields or {}), **r.custom}
        contact.updated_at = now
        changed.append(contact)
    Contact.objects.bulk_create(new, batch_size=500)
    if changed:
        Contact.objects.bulk_update(changed, ["name", "email", "external_id", "custom_fields", "updated_at"],
                                    batch_size=500)
    tags = [ContactTag(workspace=workspace, contact=existing[r.phone], name=t) for r in rows for t in r.tags]
    ContactTag.objects.bulk_create(tags, ignore_conflicts=True, batch_size=1000)
    state = {r.phone: (existing[r.phone].pk, existing[r.phone].opted_in, existing[r.phone].consent_updated_at)
             for r in rows}
    _consent_from_import(workspace=workspace, rows=rows, state=state, by=by)
    return len(new), len(changed)


def _consent_from_import(*, workspace: Workspace, rows: list[_Row], state: dict, by: ImportBy) -> None:
    """An `opted_in` column appends ledger rows (source `import`) where it changes the contact's state or
    gives a contact its first consent evidence; the cache and the events go in the batch's transaction."""
    from apps.contacts.events import contact_consent_event
    from apps.contacts.models import ConsentRecord
    from apps.core.services import event_append_many

    records = []
    for r in rows:
        if r.opted_in is None:
            continue
        pk, current, consent_at = state[r.phone]
        if consent_at is not None and current == r.opted_in:
            continue
        records.append(ConsentRecord(
            workspace=workspace, contact_id=pk, source=ConsentRecord.Source.IMPORT,
            status=ConsentRecord.Status.OPT_IN if r.opted_in else ConsentRecord.Status.OPT_OUT,
            note=f"CSV import, row {r.number}" + (f": {r.evidence}" if r.evidence else ""),
            api_key_id=by.api_key_id, user=by.user))
    if not records:
        return
    ConsentRecord.objects.bulk_create(records)
    now = timezone.now()
    for status in (ConsentRecord.Status.OPT_IN, ConsentRecord.Status.OPT_OUT):
        ids = [rec.contact_id for rec in records if rec.status == status]
        if ids:
            Contact.objects.filter(pk__in=ids).update(opted_in=status == ConsentRecord.Status.OPT_IN,
                                                      consent_updated_at=now)
    phones = {pk: phone for phone, (pk, *_) in state.items()}
    event_append_many(workspace=workspace, events=[
        contact_consent_event(record=rec, phone=phones.get(rec.contact_id)) for rec in records])


def _outside_waba(*, workspace: Workspace, rows: list[_Row], by: ImportBy, report: ImportReport) -> list[_Row]:
    """A WABA-bound importer's rows, less those whose phone belongs to a contact its WABA may not see."""
    if not by.waba_id or not rows:
        return rows
    existing = Contact.objects.filter(workspace=workspace, phone__in=[r.phone for r in rows])
    hidden = set(existing.exclude(pk__in=waba_scoped(existing, waba_id=by.waba_id).values("pk"))
                 .values_list("phone", flat=True))
    for r in rows:
        if r.phone in hidden:
            report.reject(r.number, "A contact with this phone exists outside this key's WABA.", r.phone)
    return [r for r in rows if r.phone not in hidden]


def _write_batch(*, workspace: Workspace, rows: list[_Row], report: ImportReport, by: ImportBy) -> None:
    rows = _outside_waba(workspace=workspace, rows=rows, by=by, report=report)
    if not rows:
        return
    writer = _write_batch_postgres if connection.vendor == "postgresql" else _write_batch_portable
    with transaction.atomic():
        created, updated = writer(workspace=workspace, rows=rows, by=by)
    report.created += created
    report.updated += updated


def contacts_import_csv(*, workspace: Workspace, fileobj: BinaryIO, batch_size: int = BATCH_SIZE,
                        progress: Callable[[int, ImportReport], None] | None = None,
                        by: ImportBy = ImportBy()) -> ImportReport:
    """Import a CSV stream. File-level problems (empty, binary, no phone header, not UTF-8 header) raise
    VALIDATION_FAILED before anything is written; row-level problems are rejected with their row number."""
    text, counter = _open_text(fileobj)
    reader = csv.reader(text)
    names = _header(reader)
    report = ImportReport()
    seen: dict[str, int] = {}
    batch: list[_Row] = []
    number = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            number += 1
            report.rows += 1
            report.reject(number, f"Malformed CSV: {exc}.")
            continue
        number += 1
        if not values or not any(v.strip() for v in values):
            continue  # a blank line is not a row
        report.rows += 1
        row = _parse_row(values, names=names, number=number, report=report, seen=seen)
        if row is not None:
            batch.append(row)
        if len(batch) >= batch_size:
            _write_batch(workspace=workspace, rows=batch, report=report, by=by)
            batch = []
            if progress is not None:
                progress(counter.count, report)
    _write_batch(workspace=workspace, rows=batch, report=report, by=by)
    if progress is not None:
        progress(counter.count, report)
    return report


# --- background imports (admin page, big API uploads) ---------------------------------------------------


def _import_dir():
    from django.conf import settings

    path = settings.MEDIA_ROOT / "contact-imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def contact_import_precheck(*, fileobj: BinaryIO) -> None:
    """The file-level checks that need only its start (empty, binary, no `phone` header): an upload going to
    the background fails them here, with 400, instead of in a task nobody watches. Rewinds the file."""
    try:
        text, _ = _open_text(fileobj)
        _header(csv.reader(text))
    finally:
        fileobj.seek(0)


def contact_import_start(*, workspace: Workspace, upload, filename: str = "", user=None, by: ImportBy = ImportBy()):
    """Store the upload, create the ContactImport row (the row is the queue) and enqueue on commit."""
    from apps.contacts.models import ContactImport

    record = ContactImport(workspace=workspace, filename=(filename or getattr(upload, "name", "") or "")[:255],
                           created_by=user or by.user, waba_id=by.waba_id, api_key_id=by.api_key_id)
    target = _import_dir() / f"{record.pk}.csv"
    size = 0
    with open(target, "wb") as out:
        chunks = upload.chunks() if hasattr(upload, "chunks") else iter(lambda: upload.read(1 << 20), b"")
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
    record.file_path, record.total_bytes = str(target), size
    with transaction.atomic():
        record.save(force_insert=True)
        transaction.on_commit(lambda: _enqueue(record.pk))
    return record


def _enqueue(import_id: str) -> None:
    from apps.contacts.tasks import contact_import_run_task

    try:
        contact_import_run_task.delay(import_id)
    except Exception:  # the sweeper runs pending imports the broker never got
        import logging

        logging.getLogger("reach.contacts").exception("could not enqueue import %s", import_id)


def contact_import_run(*, import_id: str):
    """Claim (compare-and-set pending → running) and run one import, writing progress to its row."""
    import os

    from apps.contacts.models import ContactImport

    claimed = ContactImport.objects.filter(pk=import_id, status=ContactImport.Status.PENDING).update(
        status=ContactImport.Status.RUNNING)
    record = ContactImport.objects.get(pk=import_id)
    if not claimed:
        return record

    def progress(done: int, report: ImportReport) -> None:
        ContactImport.objects.filter(pk=import_id).update(
            processed_bytes=done, rows_seen=report.rows, created_count=report.created,
            updated_count=report.updated, rejected_count=report.rejected)

    try:
        with open(record.file_path, "rb") as handle:
            report = contacts_import_csv(workspace=record.workspace, fileobj=handle, progress=progress,
                                         by=ImportBy(waba_id=record.waba_id, api_key_id=record.api_key_id,
                                                     user=record.created_by))
    except ApplicationError as exc:
        ContactImport.objects.filter(pk=import_id).update(status=ContactImport.Status.FAILED, error=exc.message,
                                                          finished_at=timezone.now())
    except Exception as exc:
        ContactImport.objects.filter(pk=import_id).update(status=ContactImport.Status.FAILED,
                                                          error=f"Import failed: {exc}"[:2000],
                                                          finished_at=timezone.now())
        raise
    else:
        ContactImport.objects.filter(pk=import_id).update(
            status=ContactImport.Status.DONE, processed_bytes=record.total_bytes, rows_seen=report.rows,
            created_count=report.created, updated_count=report.updated, rejected_count=report.rejected,
            rejected_rows=report.rejected_rows, finished_at=timezone.now())
    finally:
        with contextlib.suppress(OSError):
            os.remove(record.file_path)
    record.refresh_from_db()
    return record


def contact_imports_sweep(*, older_than_seconds: int = 60) -> int:
    """Run pending imports whose enqueue was lost (the row is the real queue)."""
    from datetime import timedelta

    from apps.contacts.models import ContactImport

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(ContactImport.objects.filter(status=ContactImport.Status.PENDING, created_at__lt=cutoff)
               .values_list("pk", flat=True)[:10])
    for import_id in ids:
        contact_import_run(import_id=import_id)
    return len(ids)
