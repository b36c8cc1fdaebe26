"""The email channel's configuration (GET/PUT/DELETE /api/v1/channels/email) and the email send's
validation and sender resolution, through the API (each response checked against the OpenAPI schema);
an inbox reply in an email conversation goes out by email, threaded."""

from __future__ import annotations

import pytest

from apps.conversations.models import Message
from apps.conversations.services.dispatch import dispatch_drain
from apps.wabas.models import EmailChannel
from apps.wabas.services import waba_connect
from tests.email.conftest import RELAY_PORT

URL = "/api/v1/channels/email"


@pytest.fixture
def number(workspace):
    return waba_connect(workspace=workspace, meta_waba_id="880000000000041", phone_number_id="990000000000041",
                        display_phone_number="+15550783884", access_token="EAAG-api", name="Api")


def _err(response):
    body = response.json()["error"]
    return response.status_code, body["code"], body.get("details", {}).get("field")


@pytest.mark.django_db
def test_configure_read_update_remove(live_api, number, settings):
    from apps.wabas.services import email_channel_smtp

    assert _err(live_api.get(URL)) == (404, "NOT_FOUND", None)
    r = live_api.put(URL, {"from_address": "hello@acme.test", "from_name": "Acme", "smtp_host": "smtp.acme.test",
                           "smtp_port": 587, "smtp_username": "mailer", "smtp_password": "s3cret",
                           "smtp_security": "starttls", "inbound_address": "Support@In.Acme.Test"}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["phone_number_id"] == number.pk and body["inbound_address"] == "support@in.acme.test"
    assert body["smtp_password_set"] is True and "smtp_password" not in body and "s3cret" not in r.content.decode()
    channel = EmailChannel.objects.get()
    assert channel.smtp_password_encrypted and "s3cret" not in channel.smtp_password_encrypted
    assert body["inbound_webhook_path"] == f"/webhooks/email/{channel.inbound_token}"
    assert email_channel_smtp(channel) == {"host": "smtp.acme.test", "port": 587, "username": "mailer",
                                           "password": "s3cret", "use_tls": True, "use_ssl": False,
                                           "timeout": settings.EMAIL_TIMEOUT}
    # Replacing without a password keeps it; the token stays.
    r = live_api.put(URL, {"from_address": "team@acme.test", "inbound_domain": "In.Acme.Test"}, format="json")
    assert r.status_code == 200
    assert (r.json()["from_address"], r.json()["smtp_password_set"], r.json()["inbound_domain"],
            r.json()["inbound_address"]) == ("team@acme.test", True, "in.acme.test", None)
    assert EmailChannel.objects.get().inbound_token == channel.inbound_token
    # PUT replaces: no smtp_host now, so the EMAIL_* settings carry the mail.
    assert email_channel_smtp(EmailChannel.objects.get())["host"] == settings.EMAIL_HOST
    assert live_api.get(URL).json()["from_address"] == "team@acme.test"
    assert live_api.delete(URL).status_code == 204
    assert live_api.get(URL).status_code == 404 and not EmailChannel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({}, "from_address"),
    ({"from_address": "not-an-address"}, "from_address"),
    ({"from_address": "a@b.test", "smtp_port": 70000}, "smtp_port"),
    ({"from_address": "a@b.test", "smtp_port": "25"}, "smtp_port"),
    ({"from_address": "a@b.test", "smtp_security": "tls"}, "smtp_security"),
    ({"from_address": "a@b.test", "inbound_domain": "not a domain"}, "inbound_domain"),
    ({"from_address": "a@b.test", "inbound_address": "nope"}, "inbound_address"),
    ({"from_address": "a@b.test", "smtp_host": "evil\r\nhost"}, "smtp_host"),
    ({"from_address": "a@b.test", "colour": "red"}, "colour"),
])
def test_bad_configuration_is_refused_whole(live_api, number, body, field):
    assert _err(live_api.put(URL, body, format="json")) == (400, "VALIDATION_FAILED", field)
    assert not EmailChannel.objects.exists()


@pytest.mark.django_db
def test_tenancy_scopes_and_sandbox(live_api, sandbox_api, api_client_for, workspace, other_workspace, number):
    waba_connect(workspace=other_workspace, meta_waba_id="880000000000042", phone_number_id="990000000000042",
                 display_phone_number="+15550783885", access_token="EAAG-o", name="O")
    other = api_client_for(other_workspace)
    assert other.put(URL, {"from_address": "x@globex.test", "inbound_address": "in@globex.test"},
                     format="json").status_code == 200
    # The inbound address is another workspace's: 409, nothing written here.
    assert _err(live_api.put(URL, {"from_address": "a@acme.test", "inbound_address": "IN@globex.test"},
                             format="json")) == (409, "CONFLICT", "inbound_address")
    assert live_api.get(URL).status_code == 404
    assert _err(sandbox_api.put(URL, {"from_address": "a@acme.test"}, format="json"))[:2] == (400, "VALIDATION_FAILED")
    reader = api_client_for(workspace, scopes=["messages:read"])
    assert reader.put(URL, {"from_address": "a@acme.test"}, format="json").status_code == 403
    assert live_api.put(URL, {"from_address": "a@acme.test", "phone_number_id": "pn_nope"},
                        format="json").status_code == 404
    assert live_api.put(URL, {"from_address": "a@acme.test"}, format="json").status_code == 200
    assert other.get(URL).json()["from_address"] == "x@globex.test"
    # A key bound to another WABA of this workspace does not see the channel.
    second = waba_connect(workspace=workspace, meta_waba_id="880000000000043", phone_number_id="990000000000043",
                          display_phone_number="+15550783886", access_token="EAAG-2", name="2")
    bound = api_client_for(workspace, waba_id=second.waba_id)
    assert bound.get(URL).status_code == 404
    assert bound.delete(URL).status_code == 404
    assert EmailChannel.objects.filter(workspace=workspace).exists()


@pytest.mark.django_db
def test_email_send_validation(live_api, number):
    send = "/api/v1/messages"
    assert _err(live_api.post(send, {"to": "ada@example.com", "channel": "email", "text": {"body": "hi"}},
                              format="json")) == (400, "VALIDATION_FAILED", "channel")  # no channel yet
    live_api.put(URL, {"from_address": "hello@acme.test"}, format="json")
    for body, field in [
        ({"to": "+15551234567", "channel": "email", "text": {"body": "hi"}}, "to"),
        ({"to": "ada@example.com", "channel": "email", "type": "location",
          "location": {"latitude": 1, "longitude": 2}}, "type"),
        ({"to": "ada@example.com", "channel": "email", "text": {"body": "hi"}, "email": {"subject": "a\nb"}},
         "email.subject"),
        ({"to": "ada@example.com", "channel": "email", "text": {"body": "hi"}, "email": {"marketing": "yes"}},
         "email.marketing"),
        ({"to": "ada@example.com", "channel": "email", "text": {"body": "hi"}, "email": {"cc": "x@y.z"}}, "email.cc"),
        ({"to": "+15551234567", "text": {"body": "hi"}, "email": {"subject": "s"}}, "email"),
    ]:
        assert _err(live_api.post(send, body, format="json")) == (400, "VALIDATION_FAILED", field), body
    assert not Message.objects.exists()
    r = live_api.post(send, {"to": "Ada@Example.com", "channel": "email", "text": {"body": "hi"},
                             "email": {"subject": "Hello"}}, format="json")
    assert r.status_code == 202 and r.json()["to"] == "ada@example.com"
    m = Message.objects.get()
    assert (m.channel, m.conversation.channel_kind, m.contact.email, m.cost_estimate) == (
        "email", "email", "ada@example.com", 0)
    got = live_api.get(f"/api/v1/messages/{m.pk}")
    assert got.status_code == 200 and got.json()["channel"] == "email"
    assert [x["id"] for x in live_api.get("/api/v1/messages?to=ADA@example.com").json()["data"]] == [m.pk]
    assert live_api.get("/api/v1/messages?to=bob@example.com").json()["data"] == []


@pytest.mark.django_db(transaction=True)
def test_inbox_reply_goes_by_email_threaded(api_client_for, workspace, number, relay):
    from apps.conversations.services.email import email_inbound_receive
    from apps.wabas.services import email_channel_set

    channel = email_channel_set(workspace=workspace, data={
        "from_address": "hello@acme.test", "smtp_host": "127.0.0.1", "smtp_port": RELAY_PORT,
        "inbound_address": "support@in.acme.test"})
    raw = (b"From: Ada <ada@example.com>\r\nTo: support@in.acme.test\r\nSubject: Refund\r\n"
           b"Message-ID: <r1@example.com>\r\n\r\nI'd like a refund.\r\n")
    inbound = Message.objects.get(pk=email_inbound_receive(channel=channel, raw=raw).message_id)
    agent = api_client_for(workspace, scopes=["inbox:read", "inbox:write"])
    r = agent.post(f"/api/v1/conversations/{inbound.conversation_id}/messages",
                   {"type": "text", "text": {"body": "Refunded."}}, format="json")
    assert r.status_code in (200, 201, 202), r.content
    assert r.json()["channel"] == "email"
    not_text = agent.post(f"/api/v1/conversations/{inbound.conversation_id}/messages",
                          {"type": "location", "location": {"latitude": 1.5, "longitude": 2.5}}, format="json")
    assert _err(not_text) == (400, "VALIDATION_FAILED", "type")
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    [sent] = relay.mails
    assert (sent["message"]["In-Reply-To"], sent["message"]["Subject"]) == ("<r1@example.com>", "Re: Refund")
    assert sent["rcpt_tos"] == ["ada@example.com"]
    listing = agent.get(f"/api/v1/conversations/{inbound.conversation_id}/messages").json()
    assert [m["channel"] for m in listing["data"]] == ["email", "email"]
    assert listing["data"][-1]["content"]["subject"] == "Refund"


@pytest.mark.django_db(transaction=True)
def test_unreachable_smtp_server_retries(live_api, number):
    """Nothing listens on the channel's port: EMAIL_DEFERRED, queued again with backoff, never lost."""
    live_api.put(URL, {"from_address": "hello@acme.test", "smtp_host": "127.0.0.1", "smtp_port": 8159},
                 format="json")
    r = live_api.post("/api/v1/messages", {"to": "ada@example.com", "channel": "email", "text": {"body": "hi"}},
                      format="json")
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    m = Message.objects.get(pk=r.json()["id"])
    assert (m.status, m.error_code, m.attempts) == ("queued", "EMAIL_DEFERRED", 1)
    assert "ConnectionRefusedError" in m.error_message
