"""The SMS fallback's call site for the dispatcher and the receiver (apps.conversations.services.fallback)."""

from __future__ import annotations

from apps.conversations.services.fallback import fallback_for, fallback_sms_create, fallback_wanted

__all__ = ["fallback_for", "fallback_sms_create", "fallback_wanted"]
