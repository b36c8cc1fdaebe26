"""Email fixtures: a real SMTP relay (aiosmtpd) the channel sends through, the inbound SMTP listener mail is
sent to with smtplib, and a live workspace with a number and an email channel."""

from __future__ import annotations

import os
from email import policy
from email.parser import BytesParser

import pytest

from apps.core import services as core_services

RELAY_PORT = int(os.environ.get("EMAIL_TEST_RELAY_PORT", "8151"))
LISTENER_PORT = int(os.environ.get("EMAIL_TEST_LISTENER_PORT", "8152"))
INBOUND = "support@in.acme.test"
FROM = "hello@acme.test"


class Relay:
    """The outbound relay: records every mail; recipients starting with `deferred` get 451, with `rejected`
    550 (the real SMTP answers a mail server gives)."""

    def __init__(self):
        self.mails: list[dict] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("deferred"):
            return "451 4.7.1 Greylisted, try again later"
        if address.startswith("rejected"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.mails.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                           "message": BytesParser(policy=policy.default).parsebytes(envelope.content)})
        return "250 Message accepted"


@pytest.fixture
def relay():
    from aiosmtpd.controller import Controller

    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=RELAY_PORT)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture
def listener():
    from apps.webhooks.services.email_listener import email_listener_create

    server = email_listener_create(host="127.0.0.1", port=LISTENER_PORT).start()
    yield server
    server.stop()


@pytest.fixture
def email_live(transactional_db, relay):
    """A live workspace with one number and an email channel sending through the relay."""
    from apps.wabas.services import email_channel_set, waba_connect

    workspace = core_services.workspace_create(name="Acme Mail", slug="acme-mail")
    number = waba_connect(workspace=workspace, meta_waba_id="880000000000021", phone_number_id="990000000000021",
                          display_phone_number="+15550783882", access_token="EAAG-email", name="Mail")
    channel = email_channel_set(workspace=workspace, data={
        "from_address": FROM, "from_name": "Acme Support", "smtp_host": "127.0.0.1", "smtp_port": RELAY_PORT,
        "smtp_username": "", "inbound_address": INBOUND})
    return workspace, number, channel
