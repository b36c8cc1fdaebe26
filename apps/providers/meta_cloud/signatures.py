"""X-Hub-Signature-256: HMAC-SHA256 over the raw body bytes, keyed with the app secret (META.md §3.2)."""

from __future__ import annotations

import hashlib
import hmac


def sign_body(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(*, body: bytes, header: str | None, app_secret: str) -> bool:
    if not header or not app_secret:
        return False
    header = header.strip()
    if not header.lower().startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header[7:].strip().lower().encode())
