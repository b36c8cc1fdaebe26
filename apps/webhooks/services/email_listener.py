"""The inbound SMTP listener's life in a server process: `manage.py serve` starts it (a process-start hook)
when EMAIL_INBOUND_LISTEN names host:port; off by default. Each SMTP conversation's database work runs in a
worker thread with its own connection (closed when stale, as a request's would be)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import close_old_connections

from apps.conversations.services import email as email_services
from apps.providers.email.listener import EmailListener, parse_listen

logger = logging.getLogger("reach.email")
_running: list[EmailListener] = []


def _accepts(address: str) -> bool:
    close_old_connections()
    try:
        return email_services.email_recipient_accepted(address)
    finally:
        close_old_connections()


def _deliver(raw: bytes, recipients: list[str]) -> None:
    close_old_connections()
    try:
        email_services.email_inbound_from_listener(raw, recipients)
    finally:
        close_old_connections()


def email_listener_create(*, host: str, port: int) -> EmailListener:
    return EmailListener(host=host, port=port, accepts=_accepts, deliver=_deliver,
                         max_bytes=settings.EMAIL_INBOUND_MAX_BYTES)


def email_listener_start() -> EmailListener | None:
    """Start the listener EMAIL_INBOUND_LISTEN names (once per process); None when it names none."""
    address = parse_listen(settings.EMAIL_INBOUND_LISTEN)
    if address is None or _running:
        return _running[0] if _running else None
    listener = email_listener_create(host=address[0], port=address[1]).start()
    _running.append(listener)
    logger.warning("email: SMTP listener on %s:%s", *listener.address)
    return listener
