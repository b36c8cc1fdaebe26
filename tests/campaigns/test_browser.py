"""The admin campaign page in headless Chromium: the bar and figures follow the campaign live, the preflight
button shows its table, and the page raises no script errors."""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from apps.campaigns import services
from apps.conversations.models import Message
from apps.core.models import User
from tests.campaigns.factories import make_contacts, set_status


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(_chromium() is None, reason="no Chromium (apt-get install chromium, or set CHROMIUM_PATH)"),
]


def test_campaign_page_updates_live(live_server, tenant, workspace, number, template, settings):
    pytest.importorskip("playwright")
    from playwright.sync_api import expect, sync_playwright

    settings.CAMPAIGN_MIN_IN_FLIGHT = 1000
    User.objects.create_superuser("boss", "boss@example.com", "pw-browser-test-1")
    make_contacts(workspace, 10)
    audience = services.audience_create(workspace=workspace, name="all", filter={})
    campaign = services.campaign_create(tenant=tenant, data={
        "name": "Live one", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": {"1": "{{contact.name}}", "2": "x"}})
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    ids = list(Message.objects.filter(campaign_id=campaign.pk).values_list("pk", flat=True))
    set_status(ids[:4], "delivered")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API keeps a loop on this thread
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"], headless=True)
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{live_server.url}/admin/login/")
            page.fill("#id_username", "boss")
            page.fill("#id_password", "pw-browser-test-1")
            page.click("input[type=submit]")
            page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
            label = page.locator("#cmp-bar-label")
            expect(label).to_contain_text("40% done: 4 sent (4 delivered), 0 failed, of 10 to message")
            # The chart is Chart.js's (static/vendor/chartjs): delivered and sent, drawn on the canvas.
            page.wait_for_function("() => window.Chart && Chart.getChart('cmp-chart') && "
                                   "Chart.getChart('cmp-chart').data.datasets.map(d => d.label).join() === 'Delivered,Sent'")
            set_status(ids[4:], "sent")  # the page polls: no reload needed
            # Inside Playwright's block the ORM has a connection of its own (another context): close it.
            connections.close_all()
            expect(label).to_contain_text("100% done: 10 sent", timeout=10_000)
            page.click("#cmp-preflight-btn")
            expect(page.locator("#cmp-preflight table")).to_contain_text("Would receive a message")
            expect(page.locator("#cmp-preflight table")).to_contain_text("Available in the wallet")
            assert errors == []
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
