"""Webhook secrets and signatures (API.md): `X-Reach-Signature: sha256=<hex HMAC of the raw body>` and
the Standard Webhooks headers, both keyed with the secret's decoded bytes."""

from __future__ import annotations

import base64
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign_headers(*, webhook_id: str, timestamp: int, body: bytes, keys: list[bytes]) -> dict[str, str]:
    """Headers for one attempt. `keys` is the current secret first, then the previous one while it
    overlaps a rotation; each yields one `v1,` entry (space-separated, as the spec allows)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    # hmac.digest is the one-shot C path: a fraction of an HMAC object's cost, per attempt that counts
    signatures = " ".join("v1," + base64.b64encode(hmac.digest(key, signed, "sha256")).decode() for key in keys)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
        "X-Reach-Signature": "sha256=" + hmac.digest(keys[0], body, "sha256").hex(),
    }
    if len(keys) > 1:  # X-Reach-Signature holds one value; the old secret's goes alongside during rotation
        headers["X-Reach-Signature-Previous"] = "sha256=" + hmac.digest(keys[1], body, "sha256").hex()
    return headers
