"""`manage.py serve` starts the inbound SMTP listener (a process-start hook) only when EMAIL_INBOUND_LISTEN
names host:port; off by default."""

from __future__ import annotations

import smtplib

import pytest

from apps.core import hooks
from apps.providers.email.listener import parse_listen
from apps.webhooks.services import email_listener
from tests.email.conftest import LISTENER_PORT


def test_listen_setting_parses():
    assert parse_listen("") is None and parse_listen("  ") is None
    assert parse_listen("0.0.0.0:2525") == ("0.0.0.0", 2525)
    assert parse_listen(":2525") == ("127.0.0.1", 2525)
    assert parse_listen("[::1]:25") == ("::1", 25)
    for bad in ("2525x", "host:", "host:70000"):
        with pytest.raises(ValueError):
            parse_listen(bad)


@pytest.mark.django_db(transaction=True)
def test_process_start_runs_the_listener_only_when_configured(settings):
    assert email_listener.email_listener_start in hooks._startup
    settings.EMAIL_INBOUND_LISTEN = ""
    assert email_listener.email_listener_start() is None
    settings.EMAIL_INBOUND_LISTEN = f"127.0.0.1:{LISTENER_PORT}"
    listener = email_listener.email_listener_start()
    try:
        assert listener.address == ("127.0.0.1", LISTENER_PORT)
        assert email_listener.email_listener_start() is listener  # once per process
        with smtplib.SMTP("127.0.0.1", LISTENER_PORT, timeout=5) as smtp:
            code, banner = smtp.ehlo()
            assert code == 250
            # No channel receives there: refused at RCPT, nothing stored.
            smtp.mail("ada@example.com")
            assert smtp.rcpt("support@nowhere.test")[0] == 550
    finally:
        listener.stop()
        email_listener._running.clear()
