"""An email conversation in the inbox, in headless Chromium against a real server: a customer's mail comes
in through the provider webhook (HTML with a script and an onerror handler), the list shows it with the
email icon, the thread shows the subject and the sanitised HTML in a sandboxed frame (nothing runs), and the
agent's reply from the composer goes out by email over SMTP to a real relay, threaded under the mail.
Screenshots: var/screenshots/email_*.png."""

from __future__ import annotations

import time

import pytest
import requests

from apps.conversations.models import Message
from apps.core import services as core_services
from tests.browser.conftest import SCREENSHOTS
from tests.conversations.inbox_support import PASSWORD, make_agent
from tests.email.conftest import RELAY_PORT, relay  # noqa: F401 - the SMTP relay fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAIL = (
    "From: Grace Hopper <grace@example.com>\r\nTo: support@in.acme.test\r\nSubject: Invoice for order #1042\r\n"
    "Message-ID: <g1@example.com>\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/alternative; boundary="A"\r\n\r\n'
    "--A\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, could you send the invoice for order #1042?\r\n"
    "--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    "<p>Hello,</p><p>could you send the <b>invoice</b> for order <i>#1042</i>?</p>"
    "<ul><li>Billing name: Grace Hopper</li><li>VAT id: US-1906</li></ul>"
    "<script>window.top.__pwned = 1</script><img src=x onerror=\"window.top.__pwned = 2\">"
    '<p>Thanks!<br><a href="https://example.com/orders/1042">Order page</a></p>\r\n'
    "--A--\r\n")


def _wait(predicate, timeout=20.0):  # a deadline, not a pace
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_email_conversation_in_the_inbox(served, browser, relay):  # noqa: F811
    from apps.wabas.services import email_channel_set, waba_connect

    base, _fake = served
    workspace = core_services.workspace_create(name="Acme Support", slug="acme-email-browser")
    waba_connect(workspace=workspace, meta_waba_id="880000000000787", phone_number_id="990000000000787",
                 display_phone_number="+15550783787", access_token="EAAG-browser", name="Acme")
    channel = email_channel_set(workspace=workspace, data={
        "from_address": "hello@acme.test", "from_name": "Acme Support", "smtp_host": "127.0.0.1",
        "smtp_port": RELAY_PORT, "inbound_address": "support@in.acme.test"})
    make_agent(workspace, username="ada", role="agent")
    r = requests.post(f"{base}/webhooks/email/{channel.inbound_token}", data=MAIL.encode(),
                      headers={"Content-Type": "message/rfc822"}, timeout=30)
    assert r.status_code == 200, r.text

    for width, height, name in ((1440, 900, "desktop"), (390, 844, "mobile")):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.goto(f"{base}/inbox/")
        page.fill("#id_username", "ada")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/inbox/")
        item = page.locator(".conv:has-text('Grace Hopper')")
        item.wait_for(timeout=15000)
        assert item.locator(".ch-icon.ch-email").get_attribute("aria-label") == "Email"
        item.click()
        page.wait_for_selector(".email-subject:has-text('Invoice for order #1042')")
        frame_el = page.locator("iframe.email-html")
        assert frame_el.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
        frame = frame_el.content_frame
        frame.locator("text=Billing name").wait_for()
        assert frame.locator("script").count() == 0 and frame.locator("img").count() == 0
        assert frame.locator("a[href='https://example.com/orders/1042']").count() == 1
        assert page.evaluate("window.__pwned") is None
        if name == "desktop":
            # Email has no reply window: the composer is open; the reply goes out by email.
            assert "win-none" in page.get_attribute("#t-window", "class")  # no window badge: answer any time
            assert page.get_attribute("#t-channel .ch-icon", "aria-label") == "Email"
            assert page.locator("#open-picker-2").is_hidden() and page.locator("#attach-btn").is_hidden()
            box, bubble = frame_el.bounding_box(), page.locator(".row.in .bubble").bounding_box()
            assert box["x"] + box["width"] <= bubble["x"] + bubble["width"]  # the frame stays in its bubble
            page.fill("#compose", "Hi Grace, the invoice is attached to your order page.")
            page.keyboard.press("Enter")
            page.wait_for_selector(".row.out:has-text('invoice is attached')")
            assert _wait(lambda: len(relay.mails) == 1)
            mail = relay.mails[0]["message"]
            assert (mail["In-Reply-To"], mail["Subject"]) == ("<g1@example.com>", "Re: Invoice for order #1042")
            assert _wait(lambda: Message.objects.filter(direction="outbound", status="sent").exists())
            page.wait_for_selector(".row.out[data-status='sent']", timeout=10000)
        page.screenshot(path=str(SCREENSHOTS / f"email_conversation_{name}.png"))
        context.close()
