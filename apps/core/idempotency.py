"""Idempotency-Key handling (Stripe/Zulip semantics): the first non-5xx response is stored for 24 h per
(workspace, key) and replayed; a different body is 422; a concurrent duplicate is 409.

The key is claimed (in flight) in its own committed transaction; the handler's writes and the stored answer
then commit together in one transaction (ApiView), so a process killed or a database lost between them
leaves either both or neither: never a message accepted whose key still looks in flight (which, once the
in-flight lease ran out, let the client's retry accept it a second time)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import IdempotencyConflict, IdempotencyKeyReused, ValidationFailed
from apps.core.models import IdempotencyRecord, Workspace

_KEY_RE = re.compile(r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$")
REPLAYED_HEADERS = ("Content-Type", "Location")


def parse_idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value or len(value) > 255 or not _KEY_RE.match(value):
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 printable ASCII characters.", field="Idempotency-Key"
        )
    return value


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(method.encode())
    digest.update(b"\0")
    digest.update(path.encode())
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


@dataclass
class Replay:
    status: int
    body: bytes
    headers: dict


def idempotency_begin(*, workspace: Workspace, key: str, fingerprint: str) -> IdempotencyRecord | Replay:
    """Claim the key or explain why not. Runs in its own short transaction, outside the handler's."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(workspace=workspace, key=key, request_fingerprint=fingerprint)
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(workspace=workspace, key=key).first()
            if existing is None:
                continue  # deleted between our insert and read (a 5xx released it): try again
            if existing.created_at < cutoff:
                IdempotencyRecord.objects.filter(pk=existing.pk, created_at__lt=cutoff).delete()
                continue
            if existing.request_fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            if existing.state == IdempotencyRecord.State.IN_FLIGHT:
                lease = timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS)
                if existing.created_at < timezone.now() - lease:
                    # The process that claimed it died mid-request; the key is free again.
                    IdempotencyRecord.objects.filter(pk=existing.pk, state=existing.state).delete()
                    continue
                raise IdempotencyConflict()
            return Replay(
                status=existing.response_status, body=bytes(existing.response_body or b""),
                headers=existing.response_headers,
            )
    raise IdempotencyConflict()


def idempotency_complete(*, record: IdempotencyRecord, status: int, body: bytes, headers: dict) -> None:
    if status >= 500:
        # A server error is not an answer: release the key so the client's retry runs again.
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    kept = {k: v for k, v in headers.items() if k in REPLAYED_HEADERS}
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.COMPLETED, response_status=status, response_body=body, response_headers=kept
    )


def idempotency_records_purge(*, now=None) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
