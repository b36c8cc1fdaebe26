"""Email end to end over real sockets: a customer's mail sent with smtplib to the inbound SMTP listener ->
an email conversation (contact by address, message.inbound, sanitised HTML, attachments); a reply through
POST /api/v1/messages (channel email) -> the dispatcher -> Django's SMTP backend -> a real SMTP relay, with
a stable Message-ID and In-Reply-To/References threading under the customer's mail; the customer's answer
threads back; a DSN bounce fails the mail with the diagnostic; SMTP 4xx retries, 5xx fails; STOP and
List-Unsubscribe go to the consent ledger; the provider webhook takes raw RFC 822 and JSON."""

from __future__ import annotations

import json
import smtplib
import time
from email.message import EmailMessage

import pytest
import requests

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.conversations.services.dispatch import dispatch_drain
from apps.core import services as core_services
from apps.core.models import Event
from tests.email.conftest import FROM, INBOUND, LISTENER_PORT

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CUSTOMER = "ada@example.com"


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _mail(*, subject="Where is my order?", text="Hi, my order #1042 has not arrived.", html=None,
          message_id="<m1.ada@example.com>", in_reply_to=None, references=None, sender=f"Ada Lovelace <{CUSTOMER}>",
          attachment=None) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"], mail["Message-ID"] = sender, INBOUND, subject, message_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    mail.set_content(text)
    if html:
        mail.add_alternative(html, subtype="html")
    if attachment:
        mail.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return mail


def _smtp_send(mail: EmailMessage, *, to=INBOUND, mail_from=CUSTOMER) -> None:
    with smtplib.SMTP("127.0.0.1", LISTENER_PORT, timeout=10) as smtp:
        smtp.send_message(mail, from_addr=mail_from, to_addrs=[to])


def _api(workspace, **key):
    _, secret = core_services.api_key_create(workspace=workspace, name="e2e", sandbox=False, **key)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    return session


def _events(workspace, *types):
    return list(Event.objects.filter(workspace=workspace, type__in=types).order_by("sequence")
                .values_list("type", flat=True))


def test_inbound_reply_threading_and_answer(live_server, email_live, listener, relay):
    workspace, number, channel = email_live
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    _smtp_send(_mail(html='<p>Hi, my order <b>#1042</b> has not arrived.</p><script>alert(1)</script>'
                          '<img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a>'
                          '<a href="https://acme.test/track">track</a>',
                     attachment=("invoice.pdf", pdf)))
    inbound = Message.objects.get(direction="inbound")
    assert (inbound.channel, inbound.conversation.channel_kind, inbound.status) == ("email", "email", "received")
    assert inbound.provider_message_id == "<m1.ada@example.com>"
    assert inbound.phone_number_id == number.pk
    contact = Contact.objects.get(workspace=workspace, email=CUSTOMER)
    assert (contact.name, contact.phone) == ("Ada Lovelace", None)
    content = inbound.content
    assert content["subject"] == "Where is my order?"
    assert inbound.body.startswith("Hi, my order #1042")
    # Sanitised: no script, no handler, no javascript: URL, no remote image; the safe link kept, made inert.
    html = content["html"]
    assert "<script" not in html and "alert(1)" not in html and "onerror" not in html
    assert "javascript:" not in html and "<img" not in html
    assert '<a href="https://acme.test/track" rel="noopener noreferrer nofollow">track</a>' in html
    [attachment] = content["attachments"]
    assert (attachment["filename"], attachment["kind"], attachment["content_type"]) == (
        "invoice.pdf", "document", "application/pdf")
    assert inbound.media_id == attachment["media_id"]
    assert _events(workspace, "message.inbound") == ["message.inbound"]
    event = Event.objects.get(workspace=workspace, type="message.inbound")
    assert event.data["from"] == CUSTOMER and event.data["content"]["subject"] == "Where is my order?"

    # The agent's answer through the API: queued before the 202, sent by the dispatcher over SMTP.
    api = _api(workspace)
    r = api.post(f"{live_server.url}/api/v1/messages", timeout=10, json={
        "to": CUSTOMER.upper(), "channel": "email", "text": {"body": "It ships today."},
        "email": {"html": "<p>It ships <b>today</b>.</p>"}})
    assert r.status_code == 202, r.text
    assert r.json()["channel"] == "email" and r.json()["status"] == "queued"
    mid = r.json()["id"]
    assert relay.mails == []  # never from the request
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    [sent] = relay.mails
    out = Message.objects.get(pk=mid)
    assert out.status == "sent" and out.conversation_id == inbound.conversation_id
    mail = sent["message"]
    assert mail["Message-ID"] == out.provider_message_id == f"<{mid}@acme.test>"
    assert mail["In-Reply-To"] == "<m1.ada@example.com>"
    assert mail["References"] == "<m1.ada@example.com>"
    assert mail["Subject"] == "Re: Where is my order?"
    assert mail["From"] == f"Acme Support <{FROM}>" and mail["Reply-To"] == INBOUND
    assert sent["mail_from"] == INBOUND and sent["rcpt_tos"] == [CUSTOMER]  # bounces come back to us
    assert mail.get_body(("plain",)).get_content().strip() == "It ships today."
    assert "<b>today</b>" in mail.get_body(("html",)).get_content()
    assert "List-Unsubscribe" not in mail
    assert _events(workspace, "message.sent") == ["message.sent"]

    # The customer answers the mail: threaded into the same conversation, replying to our message.
    _smtp_send(_mail(subject="Re: Where is my order?", text="Great, thanks!\n\nOn Mon, Acme wrote:\n> It ships today.",
                     message_id="<m2.ada@example.com>", in_reply_to=out.provider_message_id,
                     references=f"<m1.ada@example.com> {out.provider_message_id}"))
    answer = Message.objects.get(provider_message_id="<m2.ada@example.com>")
    assert answer.conversation_id == inbound.conversation_id and answer.reply_to_id == mid
    assert Conversation.objects.filter(workspace=workspace).count() == 1
    # A second reply from us threads under the newest mail, with the whole chain in References.
    r = api.post(f"{live_server.url}/api/v1/messages", timeout=10,
                 json={"to": CUSTOMER, "channel": "email", "text": {"body": "You're welcome."}})
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    second = relay.mails[-1]["message"]
    assert second["In-Reply-To"] == "<m2.ada@example.com>"
    assert second["References"].split() == ["<m1.ada@example.com>", out.provider_message_id, "<m2.ada@example.com>"]
    # The same mail delivered twice is stored once.
    _smtp_send(_mail(subject="Re: Where is my order?", text="Great, thanks!", message_id="<m2.ada@example.com>"))
    assert Message.objects.filter(provider_message_id="<m2.ada@example.com>").count() == 1
    # The inbox lists it as an email conversation.
    listing = api.get(f"{live_server.url}/api/v1/conversations?channel_kind=email", timeout=10).json()
    assert [c["channel_kind"] for c in listing["data"]] == ["email"]
    assert listing["data"][0]["contact"]["email"] == CUSTOMER


def test_bounce_fails_the_mail_with_the_diagnostic(live_server, email_live, listener, relay):
    workspace, number, channel = email_live
    api = _api(workspace)
    r = api.post(f"{live_server.url}/api/v1/messages", timeout=10,
                 json={"to": "gone@example.com", "channel": "email", "text": {"body": "Hello"},
                       "email": {"subject": "Welcome"}})
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    out = Message.objects.get(pk=r.json()["id"])
    assert out.status == "sent" and relay.mails[0]["message"]["Subject"] == "Welcome"
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        f"To: {INBOUND}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {FROM}\r\nTo: gone@example.com\r\nSubject: Welcome\r\nMessage-ID: {out.provider_message_id}\r\n"
        "--B--\r\n")
    with smtplib.SMTP("127.0.0.1", LISTENER_PORT, timeout=10) as smtp:
        smtp.sendmail("", [INBOUND], dsn.encode())
    out.refresh_from_db()
    assert (out.status, out.error_code) == ("failed", "EMAIL_BOUNCED")
    assert "5.1.1" in out.error_message and "User unknown" in out.error_message
    assert _events(workspace, "message.sent", "message.failed") == ["message.sent", "message.failed"]
    # The bounce is not a customer's message; a repeated one changes nothing.
    assert not Message.objects.filter(direction="inbound").exists()
    with smtplib.SMTP("127.0.0.1", LISTENER_PORT, timeout=10) as smtp:
        smtp.sendmail("", [INBOUND], dsn.encode())
    assert _events(workspace, "message.failed") == ["message.failed"]
    got = api.get(f"{live_server.url}/api/v1/messages/{out.pk}", timeout=10).json()
    assert got["status"] == "failed" and got["error"]["code"] == "EMAIL_BOUNCED"


def test_smtp_4xx_retries_and_5xx_fails(live_server, email_live, relay):
    workspace, number, channel = email_live
    api = _api(workspace)
    later = api.post(f"{live_server.url}/api/v1/messages", timeout=10,
                     json={"to": "deferred@example.com", "channel": "email", "text": {"body": "a"}}).json()["id"]
    never = api.post(f"{live_server.url}/api/v1/messages", timeout=10,
                     json={"to": "rejected@example.com", "channel": "email", "text": {"body": "b"}}).json()["id"]
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    retry = Message.objects.get(pk=later)
    assert (retry.status, retry.error_code, retry.upstream_code, retry.attempts) == ("queued", "EMAIL_DEFERRED", 451, 1)
    assert retry.next_attempt_at is not None
    failed = Message.objects.get(pk=never)
    assert (failed.status, failed.error_code, failed.upstream_code) == ("failed", "EMAIL_REJECTED", 550)
    assert "No such user" in failed.error_message
    assert relay.mails == []
    assert _events(workspace, "message.failed") == ["message.failed"]


def test_listener_refuses_mail_for_no_channel(email_live, listener):
    with smtplib.SMTP("127.0.0.1", LISTENER_PORT, timeout=10) as smtp, \
            pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        smtp.send_message(_mail(), from_addr=CUSTOMER, to_addrs=["nobody@elsewhere.test"])
    assert refused.value.recipients["nobody@elsewhere.test"][0] == 550
    assert Message.objects.count() == 0


def test_stop_reply_and_list_unsubscribe_record_consent(live_server, email_live, listener, relay):
    workspace, number, channel = email_live
    api = _api(workspace)
    contact = Contact.objects.create(workspace=workspace, email=CUSTOMER, name="Ada")
    from apps.contacts.services import contact_consent_set

    contact_consent_set(contact=contact, opted_in=True)
    r = api.post(f"{live_server.url}/api/v1/messages", timeout=10, json={
        "to": CUSTOMER, "channel": "email", "text": {"body": "Our spring sale"},
        "email": {"subject": "Spring sale", "marketing": True}})
    assert r.status_code == 202, r.text
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    assert relay.mails[0]["message"]["List-Unsubscribe"] == f"<mailto:{INBOUND}?subject=unsubscribe>"
    # The customer's mail client uses it: an empty mail with the subject "unsubscribe".
    _smtp_send(_mail(subject="unsubscribe", text="", message_id="<u1@example.com>"))
    contact.refresh_from_db()
    assert contact.opted_in is False
    assert _events(workspace, "contact.opted_out") == ["contact.opted_out"]
    refused = api.post(f"{live_server.url}/api/v1/messages", timeout=10, json={
        "to": CUSTOMER, "channel": "email", "text": {"body": "Last chance"}, "email": {"marketing": True}})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "CONTACT_OPTED_OUT"
    # Service mail still goes (the one consent rule: only marketing needs consent).
    ok = api.post(f"{live_server.url}/api/v1/messages", timeout=10,
                  json={"to": CUSTOMER, "channel": "email", "text": {"body": "Your receipt"}})
    assert ok.status_code == 202
    # START as the reply opts back in.
    _smtp_send(_mail(subject="Re: Spring sale", text="START\n\nOn Tue, Acme wrote:\n> Our spring sale",
                     message_id="<u2@example.com>"))
    contact.refresh_from_db()
    assert contact.opted_in is True


def test_webhook_raw_and_json_and_bad_input(live_server, email_live):
    workspace, number, channel = email_live
    url = f"{live_server.url}/webhooks/email/{channel.inbound_token}"
    raw = _mail(message_id="<w1@example.com>").as_bytes()
    r = requests.post(url, data=raw, headers={"Content-Type": "message/rfc822"}, timeout=10)
    assert r.status_code == 200, r.text
    first = r.json()["message_id"]
    r = requests.post(url, timeout=10, json={
        "from": f"Ada <{CUSTOMER}>", "to": INBOUND, "subject": "Re: Where is my order?", "text": "Still waiting",
        "html": "<p onclick='x()'>Still <i>waiting</i></p>", "message_id": "<w2@example.com>",
        "in_reply_to": "<w1@example.com>"})
    assert r.status_code == 200, r.text
    second = Message.objects.get(pk=r.json()["message_id"])
    assert second.reply_to_id == first and second.content["html"] == "<p>Still <i>waiting</i></p>"
    assert Message.objects.get(pk=first).conversation_id == second.conversation_id
    # The same JSON again: stored once.
    again = requests.post(url, timeout=10, json={"from": CUSTOMER, "text": "x", "message_id": "<w2@example.com>"})
    assert again.json()["duplicate"] is True
    # Bad input: unknown token, bad JSON, no sender, empty body, GET; nothing written.
    before = (Message.objects.count(), Event.objects.count())
    assert requests.post(f"{live_server.url}/webhooks/email/nope", data=raw, timeout=10).status_code == 404
    bad = requests.post(url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_JSON"
    nofrom = requests.post(url, json={"text": "hi"}, timeout=10)
    assert nofrom.status_code == 400 and nofrom.json()["error"]["details"]["field"] == "from"
    garbage = requests.post(url, data=b"\x00\x01 not a mail", headers={"Content-Type": "message/rfc822"}, timeout=10)
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "VALIDATION_FAILED"
    assert requests.post(url, data=b"", timeout=10).status_code == 400
    assert requests.get(url, timeout=10).status_code == 405
    injected = requests.post(url, json={"from": CUSTOMER, "subject": "a\r\nBcc: x@y.z", "text": "t"}, timeout=10)
    assert injected.status_code == 400 and injected.json()["error"]["details"]["field"] == "subject"
    assert (Message.objects.count(), Event.objects.count()) == before


def test_foreign_tenant_mail_and_bounces_stay_apart(live_server, email_live, relay):
    """Workspace B's channel token cannot bounce or thread into workspace A's mail."""
    from apps.wabas.services import email_channel_set, waba_connect

    workspace, number, channel = email_live
    api = _api(workspace)
    r = api.post(f"{live_server.url}/api/v1/messages", timeout=10,
                 json={"to": CUSTOMER, "channel": "email", "text": {"body": "Hello"}})
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    ours = Message.objects.get(pk=r.json()["id"])
    other = core_services.workspace_create(name="Globex", slug="globex-mail")
    waba_connect(workspace=other, meta_waba_id="880000000000031", phone_number_id="990000000000031",
                 display_phone_number="+15550783883", access_token="EAAG-other", name="Other")
    foreign = email_channel_set(workspace=other, data={"from_address": "hi@globex.test",
                                                       "inbound_address": "help@globex.test"})
    url = f"{live_server.url}/webhooks/email/{foreign.inbound_token}"
    reply = requests.post(url, timeout=10, json={"from": CUSTOMER, "text": "hi", "message_id": "<f1@example.com>",
                                                 "in_reply_to": ours.provider_message_id})
    stored = Message.objects.get(pk=reply.json()["message_id"])
    assert stored.workspace_id == other.pk and stored.reply_to_id is None
    assert stored.conversation.workspace_id == other.pk != ours.conversation.workspace_id
    assert Contact.objects.get(workspace=other, email=CUSTOMER).pk != ours.contact_id
    dsn = ("From: MAILER-DAEMON@mx.example.com\r\nTo: help@globex.test\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
           "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
           f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
           f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ours.provider_message_id}\r\n--B--\r\n")
    r = requests.post(url, data=dsn.encode(), headers={"Content-Type": "message/rfc822"}, timeout=10)
    assert r.status_code == 200 and r.json() == {"ignored": "a bounce for no mail of ours"}
    ours.refresh_from_db()
    assert ours.status == "sent"
    # Another workspace's key sees neither the channel nor the mail.
    other_api = _api(other)
    assert other_api.get(f"{live_server.url}/api/v1/messages/{ours.pk}", timeout=10).status_code == 404
    assert other_api.get(f"{live_server.url}/api/v1/channels/email", timeout=10).json()["from_address"] == \
        "hi@globex.test"
    assert json.loads(other_api.get(f"{live_server.url}/api/v1/channels/email", timeout=10).content)[
        "inbound_address"] == "help@globex.test"
