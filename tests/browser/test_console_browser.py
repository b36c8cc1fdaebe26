"""The console in headless Chromium against a real server (Daphne + worker + beat) and fakemeta, end to end:
a template built, submitted and approved, then the campaign wizard to a completed campaign (sandbox); a CSV
import with a bad row; a key created in the page calling the API; a webhook subscription and its delivery;
Embedded Signup's code exchange; a staff user of workspace B seeing none of A's rows in the admin.
Screenshots of every console page at 1440×900 and 390×844 go to $CONSOLE_SHOTS (else var/screenshots/console)."""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from apps.campaigns.models import Campaign
from apps.contacts.models import Contact
from apps.core import services as core_services
from apps.core.models import User
from apps.message_templates.models import MessageTemplate
from apps.wabas.models import PhoneNumber
from tests.browser.conftest import SCREENSHOTS
from tests.conversations.inbox_support import PASSWORD, make_agent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("CONSOLE_SHOTS") or SCREENSHOTS / "console")
_n = itertools.count(1)


def _wait(predicate, timeout=30.0):  # a deadline, not a pace
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def world(served):
    base, fake = served
    n = next(_n)
    workspace = core_services.workspace_create(name=f"Acme {n}", slug=f"acme-console-{n}")
    owner = make_agent(workspace, username=f"olivia{n}", role="owner")
    return {"base": base, "fake": fake, "workspace": workspace, "owner": owner}


def _shot(page, name: str) -> None:
    """With CONSOLE_SHOTS set: this page at the current size and at 390×844."""
    if not os.environ.get("CONSOLE_SHOTS"):
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.screenshot(path=str(SHOTS / f"{name}_{size['width']}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)  # charts follow a resize a frame later; the shot must not catch the old width
    page.screenshot(path=str(SHOTS / f"{name}_390.png"), full_page=True)
    page.set_viewport_size(size)
    page.wait_for_timeout(300)


def _login(browser, base, username, *, width=1440, height=900, sandbox=False, locale="en-US"):
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/inbox/")
    if sandbox:
        page.click("button.env-btn.sandbox")
        page.wait_for_selector(".sandbox-ribbon")
    page.errors = errors
    return context, page


def test_template_built_approved_then_campaign_wizard_to_completed(world, browser):
    from playwright.sync_api import expect

    base, workspace = world["base"], world["workspace"]
    sandbox = workspace.sandbox
    from apps.contacts.services import contact_consent_set

    for i in range(3):  # marketing needs an opt-in on record (marketing_requires_opt_in, on for new workspaces)
        guest = Contact.objects.create(workspace=sandbox, phone=f"+1650555{i:04d}", wa_id=f"1650555{i:04d}",
                                       name=f"Guest {i}", custom_fields={"city": "Recife"})
        contact_consent_set(contact=guest, opted_in=True)
    context, page = _login(browser, base, world["owner"].username, sandbox=True)
    page.goto(f"{base}/templates/new/")
    page.fill("#tpl-name", "Spring Sale")
    page.select_option("#tpl-category", "MARKETING")
    page.fill("#tpl-body", "Hello {{1}}, spring prices in {{2}} start today.")
    expect(page.locator("#tpl-rules")).to_contain_text("name may only contain lowercase letters")
    page.fill("#tpl-name", "spring_sale")
    page.fill("#b-ex-1", "Ann")
    page.fill("#b-ex-2", "Recife")
    page.fill("#tpl-footer", "Reply STOP to opt out")
    page.select_option("#tpl-add-type", "QUICK_REPLY")
    page.click("#tpl-add-button")
    page.fill("[aria-label='Label 1']", "Show me")
    expect(page.locator("#tpl-rules")).to_contain_text("Meets Meta")
    expect(page.locator("#pv-body")).to_have_text("Hello Ann, spring prices in Recife start today.")
    _shot(page, "template_builder_filled")
    page.click("#tpl-submit")
    page.wait_for_url(f"{base}/templates/*/")
    assert _wait(lambda: MessageTemplate.objects.filter(name="spring_sale", status="APPROVED").exists())
    page.reload()
    expect(page.locator("#tpl-status")).to_have_text("APPROVED")
    expect(page.locator("#tpl-history")).to_contain_text("APPROVED")
    _shot(page, "template_detail")

    page.goto(f"{base}/campaigns/new/")
    page.fill("#wz-name", "Spring in Recife")
    page.select_option("#wz-template", label="spring_sale (en, MARKETING)")
    page.check("input[name=audience_mode][value=filter]")
    page.fill("#wz-aname", "Recife guests")
    page.fill("#f-field", "city=Recife")
    expect(page.locator("#f-size")).to_have_text("3")
    page.select_option("#var-1-field", "first_name")
    page.fill("#var-1-default", "friend")
    page.select_option("#var-2-field", "custom_fields.city")
    page.click("#wz-submit")
    page.wait_for_url(f"{base}/campaigns/*/")
    expect(page.locator("#pf-recipients")).to_have_text("3")
    _shot(page, "campaign_preflight")
    page.click("#cmp-start")
    expect(page.locator("#cmp-status")).to_have_class(re.compile(r"\bcompleted\b"), timeout=30000)
    expect(page.locator("#k-sent")).to_have_text("3")
    _shot(page, "campaign_completed")
    assert Campaign.objects.get(workspace=sandbox).status == "completed"
    assert page.errors == []
    context.close()


def test_csv_import_with_a_bad_row(world, browser, tmp_path):
    from playwright.sync_api import expect

    csv = tmp_path / "people.csv"
    csv.write_text("phone,name,tags\n+14155550201,Ann,vip\n+14155550202,Bo,\nnot-a-phone,Bad,\n")
    context, page = _login(browser, world["base"], world["owner"].username)
    page.goto(f"{world['base']}/contacts/import/")
    page.set_input_files("#im-file", str(csv))
    page.click("#import-form button[type=submit]")
    expect(page.locator("#imp-status")).to_contain_text("done · 100%", timeout=20000)
    expect(page.locator("#imp-created")).to_have_text("2")
    expect(page.locator("#imp-rejected-rows")).to_contain_text("not-a-phone")
    expect(page.locator("#imp-rejected-rows td").first).to_have_text("4")
    _shot(page, "contacts_import_progress")
    page.goto(f"{world['base']}/contacts/?tag=vip")
    expect(page.locator("#contacts-table tbody tr")).to_have_count(1)
    assert page.errors == []
    context.close()


def test_key_created_in_the_page_calls_the_api(world, browser):
    from playwright.sync_api import expect

    base = world["base"]
    Contact.objects.create(workspace=world["workspace"], phone="+14155550301", name="Keyed")
    context, page = _login(browser, base, world["owner"].username)
    page.goto(f"{base}/settings/keys/")
    page.fill("#k-name", "CRM sync")
    page.click("#key-form button[type=submit]")
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("ak_live_")
    _shot(page, "settings_keys_created")
    answer = requests.get(f"{base}/api/v1/contacts", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert answer.status_code == 200 and [c["name"] for c in answer.json()["data"]] == ["Keyed"]
    page.goto(f"{base}/settings/keys/")
    expect(page.locator("#keys-table")).to_contain_text("CRM sync")
    assert secret not in page.content()
    context.close()


class _Receiver:
    def __init__(self):
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def _reloaded_count(page, selector: str) -> int:
    """The page reloaded, then how many `selector` it shows (0 when a navigation of its own was still running)."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.reload(wait_until="load")
    except PlaywrightError:
        return 0
    return page.locator(selector).count()


def test_webhook_subscription_and_its_delivery(world, browser):
    from playwright.sync_api import expect

    base = world["base"]
    receiver = _Receiver()
    try:
        context, page = _login(browser, base, world["owner"].username)
        page.goto(f"{base}/settings/webhooks/")
        page.fill("#w-url", receiver.url)
        page.check("input[name=events][value='*']")
        page.click("#webhook-form button[type=submit]")
        expect(page.locator("#new-secret")).to_contain_text("whsec_")
        page.click("text=Open its deliveries")
        page.click("#send-test")
        assert _wait(lambda: len(receiver.bodies) == 1, timeout=20)
        page.wait_for_load_state()
        assert _wait(lambda: _reloaded_count(page, ".delivery[data-status=succeeded]") == 1, timeout=20)
        page.locator(".delivery summary").first.click()
        expect(page.locator(".delivery").first).to_contain_text("HTTP 200")
        _shot(page, "settings_webhook_detail")
        assert page.errors == []
        context.close()
    finally:
        receiver.httpd.shutdown()


def test_embedded_signup_code_exchange_against_fakemeta(world, browser):
    from playwright.sync_api import expect

    base, fake = world["base"], world["fake"]
    requests.post(f"{fake.base_url}/_admin/signup", timeout=5, json={
        "code": "ES-CODE-77", "waba_id": "7700000000001", "name": "Acme",
        "phone_numbers": [{"id": "7700000000002", "display_phone_number": "+1 555 010 7777",
                           "verified_name": "Acme Store"}]}).raise_for_status()
    context, page = _login(browser, base, world["owner"].username)
    page.goto(f"{base}/settings/channels/")
    page.fill("#su-pin", "246810")
    page.fill("#su-code", "ES-CODE-77")
    page.click("#su-submit")
    expect(page.locator("#numbers-table")).to_contain_text("+15550107777")
    expect(page.locator("#numbers-table")).to_contain_text("Acme Store")
    _shot(page, "settings_channels_connected")
    assert PhoneNumber.objects.get(meta_phone_number_id="7700000000002").workspace == world["workspace"]
    assert requests.get(f"{fake.base_url}/_admin/signup", timeout=5).json() == {
        "registered": ["7700000000002"], "subscribed": ["7700000000001"]}
    context.close()


def test_staff_of_workspace_b_sees_none_of_a_in_the_admin(world, browser):
    from playwright.sync_api import expect

    base = world["base"]
    Contact.objects.create(workspace=world["workspace"], phone="+14155550401", name="Alpha Only")
    other = core_services.workspace_create(name="Beta", slug=f"beta-{next(_n)}")
    staff = make_agent(other, username=f"bob{next(_n)}", role="owner", staff=True)
    context, page = _login(browser, base, staff.username)
    expect(page.locator("a[href='/admin/']")).to_have_count(0)
    for path in ("/admin/", "/admin/contacts/contact/", "/admin/core/apikey/"):
        page.goto(f"{base}{path}")
        assert "/admin/login/" in page.url
        assert "Alpha Only" not in page.content()
    context.close()


PAGES = ["/contacts/", "/contacts/{contact}/", "/contacts/import/", "/templates/", "/templates/new/",
         "/campaigns/", "/campaigns/new/", "/campaigns/audiences/", "/settings/keys/", "/settings/webhooks/",
         "/settings/team/", "/settings/channels/", "/settings/automation/", "/reports/", "/inbox/"]


def test_every_console_page_fits_a_phone_and_raises_no_script_error(world, browser):
    """390 px wide, in English and in Portuguese (longer words), nothing overflows sideways. With CONSOLE_SHOTS
    set, also full-page screenshots of every page at 1440×900 and 390×844 (what the closing note describes)."""
    from tests.conversations.inbox_support import add_message, make_conversation

    workspace = world["workspace"]
    contact = Contact.objects.create(workspace=workspace, phone="+14155550501", name="Maria Silva",
                                     email="maria@example.com", custom_fields={"city": "Recife"})
    add_message(make_conversation(workspace, phone="+14155550502", name="Rui Costa", preview="Is my order on its way?"),
                body="Is my order on its way?")
    shots = bool(os.environ.get("CONSOLE_SHOTS"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    sizes = [(1440, 900, "en-US", ""), (390, 844, "en-US", ""), (390, 844, "pt-BR", "_pt")]
    for width, height, locale, suffix in sizes if shots else sizes[1:]:
        context, page = _login(browser, world["base"], world["owner"].username, width=width, height=height,
                               locale=locale)
        for path in PAGES:
            url = path.format(contact=contact.pk)
            page.goto(f"{world['base']}{url}")
            name = url.strip("/").replace("/", "_").replace(contact.pk, "detail") or "home"
            if shots:
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(SHOTS / f"{name}{suffix}_{width}.png"), full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if url != "/inbox/":  # the inbox's own layout is the inbox branch's (issue 20)
                assert overflow <= 0, (url, width, overflow)  # nothing wider than the screen
        assert page.errors == []
        context.close()
    if shots:  # the sign-in page too
        for width, height, locale, suffix in sizes:
            context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
            page = context.new_page()
            page.goto(f"{world['base']}/login/")
            page.screenshot(path=str(SHOTS / f"login{suffix}_{width}.png"), full_page=True)
            context.close()
    assert User.objects.filter(username=world["owner"].username).exists()


def test_the_inbox_speaks_portuguese_in_a_brazilian_browser(world, browser):
    """The words inbox.js writes come from the pt-BR catalogue (/jsi18n/): the list, the window badge, the thread,
    the contact sidebar and the composer."""
    from playwright.sync_api import expect

    from tests.conversations.inbox_support import add_message, make_conversation

    conversation = make_conversation(world["workspace"], phone="+14155550601", name="Rui Costa", preview="Olá")
    add_message(conversation, body="Olá, meu pedido já saiu?")
    context, page = _login(browser, world["base"], world["owner"].username, locale="pt-BR")
    expect(page.locator("#empty-state")).to_contain_text("Escolha uma conversa")
    expect(page.locator("#list-footer")).to_have_text("1 conversa")
    expect(page.locator(f"#conv-{conversation.pk} .badge")).to_contain_text("restam")
    page.click(f"#conv-{conversation.pk}")
    expect(page.locator("#side-pane")).to_contain_text("Consentimento")
    expect(page.locator("#side-pane")).to_contain_text("Nenhum consentimento registrado")
    assert page.get_attribute("#compose", "placeholder").startswith("Digite uma resposta")
    expect(page.locator("#send-btn")).to_have_text("Enviar")
    _shot(page, "inbox_conversation_pt")
    assert page.errors == []
    context.close()
