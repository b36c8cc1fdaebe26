"""Messenger and Instagram in the inbox, in headless Chromium against a real server (Daphne + worker) and
fakemeta: customers write on WhatsApp, SMS, Messenger and Instagram; each thread is in the one list with its
channel's icon; the channel filter narrows it; the Messenger thread's head shows the channel and the reply
typed in the composer goes out through the Send API (fakemeta) and reaches `read`. Screenshots at 1440x900
and 390x844 go to var/screenshots/ (and /work/notes/shots/social/ when that folder exists)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from apps.conversations.models import Conversation, Message
from apps.conversations.services.sms import sms_inbound_receive
from apps.core import services as core_services
from apps.wabas.services import social_account_connect
from tests.browser.conftest import SCREENSHOTS
from tests.conversations.inbox_support import PASSWORD, make_agent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WABA_ID, PNID, DISPLAY = "880000000000888", "990000000000888", "+15550783888"
PAGE_ID, IG_USER_ID = "104000000000888", "17841400000000888"
NOTES_SHOTS = Path("/work/notes/shots/social")


def _wait_db(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _shot(page, name):
    page.screenshot(path=str(SCREENSHOTS / name))
    if NOTES_SHOTS.is_dir():
        page.screenshot(path=str(NOTES_SHOTS / name))


@pytest.fixture
def world(served):
    from apps.wabas.services import waba_connect

    base, fake = served
    workspace = core_services.workspace_create(name="Acme Social", slug="acme-social-browser")
    number = waba_connect(workspace=workspace, meta_waba_id=WABA_ID, phone_number_id=PNID,
                          display_phone_number=DISPLAY, access_token="EAAG-browser", name="Acme")
    fake.register_number(phone_number_id=PNID, waba_id=WABA_ID, display_phone_number=DISPLAY)
    messenger, _ = social_account_connect(workspace=workspace, channel="messenger", page_id=PAGE_ID,
                                          access_token="EAAG-page", name="Acme Page", waba=number.waba)
    instagram, _ = social_account_connect(workspace=workspace, channel="instagram", page_id=PAGE_ID,
                                          ig_user_id=IG_USER_ID, access_token="EAAG-ig", name="@acme")
    fake.register_social_account(channel="messenger", account_id=PAGE_ID, token="EAAG-page")
    fake.register_social_account(channel="instagram", account_id=IG_USER_ID, token="EAAG-ig")
    make_agent(workspace, username="ada", role="agent")
    return {"base": base, "fake": fake, "workspace": workspace, "number": number, "messenger": messenger,
            "instagram": instagram}


def _login(browser, base, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(f"{base}/inbox/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/inbox/")
    page.wait_for_function("document.body.dataset.ws === 'open'", timeout=5000)
    return context, page


def test_messenger_and_instagram_threads_in_the_inbox(world, browser):
    base, fake, workspace = world["base"], world["fake"], world["workspace"]
    fake.inject_inbound(phone_number_id=PNID, from_phone="+16505550888", text="Is the store open on Sunday?",
                        name="Grace Hopper")
    sms_inbound_receive(provider_message_id="SM-browser-1", from_phone="+16505550889", to_phone=DISPLAY,
                        text="Running 10 min late for my pickup")
    wrote_fb = fake.social_inbound(account_id=PAGE_ID, text="Do you have the blue jacket in M?")
    wrote_ig = fake.social_inbound(account_id=IG_USER_ID, text="Loved your last post! Price of the lamp?")
    assert _wait_db(lambda: Conversation.objects.filter(workspace=workspace).count() == 4)

    context, page = _login(browser, base, {"width": 1440, "height": 900})
    for kind in ("whatsapp", "sms", "messenger", "instagram"):
        page.wait_for_selector(f".conv .ch-icon.ch-{kind}", timeout=10000)
    # The filter lists every channel from the one list (apps/conversations/channels.py).
    options = page.eval_on_selector_all("#f-channel option", "els => els.map(e => e.value)")
    assert options == ["", "whatsapp", "sms", "messenger", "instagram", "email"]
    _shot(page, "inbox_channels_1440x900.png")

    page.select_option("#f-channel", "messenger")
    page.wait_for_function("document.querySelectorAll('.conv').length === 1")
    assert page.locator(".conv .ch-icon.ch-messenger").count() == 1
    page.click(".conv")
    page.wait_for_selector(".row.in:has-text('blue jacket')")
    assert page.locator("#t-channel .ch-icon.ch-messenger").count() == 1
    assert page.get_attribute("#t-channel .ch-icon", "aria-label") == "Messenger"

    # The composer answers on the thread's channel: the Send API (fakemeta), then delivered and read.
    page.fill("#compose", "Yes! M is in stock — want us to hold one for you?")
    page.keyboard.press("Enter")
    page.wait_for_selector(".row.out:has-text('hold one for you')")
    page.wait_for_selector(".row.out[data-status='read'] .ticks.read", timeout=15000)
    reply = Message.objects.get(direction="outbound")
    assert (reply.channel, reply.social_account_id, reply.to_phone) == ("messenger", world["messenger"].pk,
                                                                       wrote_fb["user_id"])
    sent = fake.call(lambda: list(fake.server.social.sent))
    assert [s["body"]["message"]["text"] for s in sent] == ["Yes! M is in stock — want us to hold one for you?"]
    _shot(page, "inbox_messenger_thread_1440x900.png")

    page.select_option("#f-channel", "instagram")
    page.wait_for_function("document.querySelectorAll('.conv').length === 1 && "
                           "document.querySelector('.conv .ch-instagram') !== null")
    page.click(".conv")
    page.wait_for_selector(".row.in:has-text('Price of the lamp')")
    assert page.locator("#t-channel .ch-icon.ch-instagram").count() == 1
    _shot(page, "inbox_instagram_thread_1440x900.png")
    assert Message.objects.filter(provider_message_id=wrote_ig["mid"], channel="instagram").exists()
    context.close()

    context, page = _login(browser, base, {"width": 390, "height": 844})
    page.wait_for_selector(".conv .ch-icon.ch-instagram", timeout=10000)
    _shot(page, "inbox_channels_390x844.png")
    page.click(".conv:has(.ch-messenger)")
    page.wait_for_selector(".row.in:has-text('blue jacket')")
    _shot(page, "inbox_messenger_thread_390x844.png")
    context.close()
