"""The inbox past Chatwoot, in headless Chromium against one real server (Daphne + worker) and fake Meta,
shared by the module's tests:

- at 390x844 nothing scrolls sideways and the thread is reachable and usable (list -> thread -> contact);
- dark mode follows prefers-color-scheme and the toggle;
- an attachment sent from the composer is uploaded, reaches fake Meta and shows as a preview;
- labels: created with a colour, added from the thread, filtered on, applied in bulk;
- a campaign to 50 contacts leaves "Open" unchanged until one of them replies;
- auto-assignment spreads 30 new conversations evenly over the 3 agents whose inbox is open;
- sandbox replies still work after a server restart inside the window (the simulator's memory gone).
Screenshots (looked at for the closing note) go to /work/notes/shots/inbox/ when that folder exists, else
var/screenshots/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Label, MediaUpload, Message
from apps.core import services as core_services
from tests.browser.conftest import CHROMIUM_ARGS, ROOT, SCREENSHOTS, _free_port, chromium_path
from tests.conversations.inbox_support import PASSWORD, make_agent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WABA_ID, PNID, DISPLAY = "880000000000888", "990000000000888", "+15550783888"
NOTES_SHOTS = Path(os.environ.get("INBOX_SHOTS_DIR", "/work/notes/shots/inbox"))
SHOTS = NOTES_SHOTS if NOTES_SHOTS.is_dir() else SCREENSHOTS
SAMPLES = ROOT / "apps" / "providers" / "simulator" / "samples"


def _wait(predicate, timeout=30.0):  # a deadline, not a pace
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Server:
    """`manage.py serve --with-worker` on a fixed port, restartable (the restart test needs one)."""

    def __init__(self, fake_url: str, port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{self.port}"
        db = settings.DATABASES["default"]
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
            "META_GRAPH_URL": fake_url, "META_APP_SECRET": "test-app-secret",
            "SIMULATOR_SKIP_DELIVERED_PROBABILITY": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        }
        self.proc = None
        self.log = open(ROOT / "var" / f"browser-features-{self.port}.log", "a")  # noqa: SIM115

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(self.port),
                                      "--with-worker", "--concurrency", "4"], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            try:
                return requests.get(f"{self.base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False
        if not _wait(up, timeout=120) or self.proc.poll() is not None:
            raise RuntimeError(f"the server did not start; see {self.log.name}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


@pytest.fixture(scope="module")
def server(browser_skip, django_db_setup, django_db_blocker):
    from apps.providers.simulator.testing import TEST_APP_SECRET, start_fakemeta_in_thread

    port = _free_port()
    fake = start_fakemeta_in_thread(port=_free_port(avoid=(port,)) if os.environ.get("REACH_TEST_PORTS") else 0,
                                    webhook_url=f"http://127.0.0.1:{port}/webhooks/meta", app_secret=TEST_APP_SECRET,
                                    pair_limit_enabled=False)
    srv = Server(fake.base_url, port)
    srv.env["META_APP_SECRET"] = TEST_APP_SECRET
    srv.start()
    try:
        yield srv, fake
    finally:
        srv.stop()
        srv.log.close()
        fake.stop()


@pytest.fixture(scope="module")
def chromium(browser_skip):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def world(server):
    from apps.wabas.services import waba_connect

    srv, fake = server
    workspace = core_services.workspace_create(name="Acme Support", slug=f"acme-{time.monotonic_ns()}")
    number = waba_connect(workspace=workspace, meta_waba_id=WABA_ID, phone_number_id=PNID,
                          display_phone_number=DISPLAY, access_token="EAAG-browser", name="Acme")
    fake.register_number(phone_number_id=PNID, waba_id=WABA_ID, display_phone_number=DISPLAY)
    agent = make_agent(workspace, username="ada", role="agent")
    make_agent(workspace, username="linus", role="agent")
    return {"srv": srv, "fake": fake, "workspace": workspace, "number": number, "agent": agent}


def _login(chromium, base, username="ada", **context_args):
    context = chromium.new_context(**{"viewport": {"width": 1440, "height": 900}, **context_args})
    page = context.new_page()
    page.goto(f"{base}/inbox/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/inbox/")
    page.wait_for_function("document.body.dataset.ws === 'open'", timeout=10000)
    return context, page


def _customers(fake, names):
    """Each writes once (through fake Meta's signed webhook, the live road); returns their conversations."""
    for i, name in enumerate(names):
        fake.inject_inbound(phone_number_id=PNID, from_phone=f"+1650555{i:04d}", text=f"Hello, I am {name}",
                            name=name)
    assert _wait(lambda: Conversation.objects.filter(last_inbound_at__isnull=False,
                                                     phone_number__meta_phone_number_id=PNID).count() == len(names))
    return list(Conversation.objects.filter(phone_number__meta_phone_number_id=PNID).order_by("created_at"))


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth "
                         "&& document.body.scrollWidth <= window.innerWidth")


def test_phone_sized_single_pane_and_dark_mode(world, chromium):
    srv, fake = world["srv"], world["fake"]
    _customers(fake, ["Grace Hopper", "Alan Turing"])
    context, page = _login(chromium, srv.base, viewport={"width": 390, "height": 844}, color_scheme="light")
    page.wait_for_selector(".conv")
    assert _no_sideways_scroll(page)
    assert page.is_visible("#conv-list") and not page.is_visible("#thread-pane")
    page.screenshot(path=str(SHOTS / "mobile-list-390.png"))
    page.click(".conv .name >> text=Grace Hopper")
    page.wait_for_selector(".row.in >> text=Hello, I am Grace Hopper")
    assert not page.is_visible("#conv-list") and page.is_visible("#compose")
    assert _no_sideways_scroll(page)
    width = page.evaluate("document.querySelector('.row.in .bubble').getBoundingClientRect().width")
    assert width > 150  # a bubble a person can read, not two letters a line
    page.fill("#compose", "On it, Grace!")
    page.keyboard.press("Enter")
    assert _wait(lambda: Message.objects.filter(body="On it, Grace!", status__in=["sent", "delivered", "read"]).exists())
    page.screenshot(path=str(SHOTS / "mobile-thread-390.png"))
    page.click("#show-contact")
    assert page.is_visible("#side-pane") and not page.is_visible("#compose") and _no_sideways_scroll(page)
    page.click("#back-to-thread")
    page.click("#back-to-list")
    assert page.is_visible("#conv-list")
    light = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    page.click("#theme-btn")  # the toggle overrides the system's light scheme
    dark = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert (light, dark) == ("rgb(246, 247, 249)", "rgb(15, 20, 25)")
    context.close()
    # The system's dark scheme, untouched toggle (a fresh context has no stored choice): dark from the start.
    context, page = _login(chromium, srv.base, color_scheme="dark")
    page.wait_for_selector(".conv")
    assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == "rgb(15, 20, 25)"
    assert page.evaluate("getComputedStyle(document.querySelector('.list-pane')).backgroundColor") == "rgb(22, 27, 34)"
    page.click(".conv .name >> text=Grace Hopper")
    page.wait_for_selector(".row.out >> text=On it, Grace!")
    page.screenshot(path=str(SHOTS / "dark-thread-1440.png"))
    page.click("#theme-btn")
    assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == "rgb(246, 247, 249)"
    context.close()


def test_attachment_from_the_composer_reaches_meta_and_previews(world, chromium):
    srv, fake = world["srv"], world["fake"]
    _customers(fake, ["Grace Hopper"])
    context, page = _login(chromium, srv.base)
    page.click(".conv .name >> text=Grace Hopper")
    page.wait_for_selector(".row.in")
    page.set_input_files("#attach-input", str(SAMPLES / "image.jpg"))
    page.wait_for_selector("#attach[data-media-id]")
    page.fill("#compose", "Here is the label")
    page.screenshot(path=str(SHOTS / "composer-attachment-1440.png"))
    page.keyboard.press("Enter")
    page.wait_for_selector(".row.out img.media")
    assert _wait(lambda: Message.objects.filter(type="image", status__in=["sent", "delivered", "read"]).exists())
    message = Message.objects.get(type="image")
    assert message.content["caption"] == "Here is the label"
    upload = MediaUpload.objects.get(media_id=message.media_id)
    assert fake.engine.state.get_media(upload.meta_media_id) is not None  # the file reached (fake) Meta
    assert page.evaluate("document.querySelector('.row.out img.media').naturalWidth") == 320  # a real preview
    # A kind WhatsApp cannot carry is refused before any upload.
    page.set_input_files("#attach-input", files=[{"name": "notes.zip", "mimeType": "application/zip",
                                                  "buffer": b"PK\x03\x04"}])
    assert "cannot carry application/zip" in page.inner_text("#compose-error")
    assert page.is_hidden("#attach") and MediaUpload.objects.count() == 1
    context.close()


def test_labels_add_filter_and_bulk(world, chromium):
    srv, fake = world["srv"], world["fake"]
    convs = _customers(fake, ["Grace Hopper", "Alan Turing", "Ada Byron"])
    context, page = _login(chromium, srv.base)
    page.wait_for_selector(".conv >> nth=2")
    page.click(".conv .name >> text=Grace Hopper")
    page.click("#t-label-btn")
    page.fill("#label-new-name", "VIP")
    page.fill("#label-new-color", "#b42318")
    page.click("#label-new button[type=submit]")
    page.wait_for_selector("#t-labels .lchip >> text=VIP")
    page.screenshot(path=str(SHOTS / "labels-1440.png"))
    vip = Label.objects.get(workspace=world["workspace"], name="VIP")
    assert vip.color == "#b42318" and list(convs[0].labels.all()) == [vip]
    page.click("#messages")  # closes the popover
    page.select_option("#f-label", vip.pk)
    _wait(lambda: page.locator(".conv").count() == 1, timeout=10)
    assert page.locator(".conv .name").all_inner_texts() == ["Grace Hopper"]
    page.select_option("#f-label", "")
    page.wait_for_selector(".conv >> nth=2")
    for name in ("Alan Turing", "Ada Byron"):
        page.locator(".conv", has_text=name).locator(".avatar").click()
    assert page.inner_text("#bulk-count") == "2 selected"
    page.screenshot(path=str(SHOTS / "bulk-1440.png"))
    page.select_option("#bulk-label", vip.pk)
    assert _wait(lambda: Conversation.objects.filter(labels=vip).count() == 3)
    page.select_option("#f-label", vip.pk)
    assert _wait(lambda: page.locator(".conv").count() == 3, timeout=10)
    page.screenshot(path=str(SHOTS / "list-labels-filter-1440.png"))
    context.close()


def test_a_campaign_to_50_leaves_open_unchanged_until_one_replies(world, chromium):
    from apps.conversations.services import writer
    from tests.conversations.send_support import template

    srv, fake = world["srv"], world["fake"]
    workspace, number = world["workspace"], world["number"]
    _customers(fake, ["Grace Hopper"])
    people = [Contact.objects.create(workspace=workspace, phone=f"+1650556{i:04d}", wa_id=f"1650556{i:04d}",
                                     name=f"Recipient {i}") for i in range(50)]
    tpl = template(workspace, number.waba)
    fake.seed_template(waba_id=WABA_ID, name="order_update", language="en", category="UTILITY",
                       body_text="Hi {{1}}, order {{2}} shipped.")
    writer.messages_enqueue_bulk(workspace=workspace, phone_number=number, template=tpl, campaign_id="cmp_b",
                                 rows=[{"contact": p, "variables": ["A", "1"], "body": "Hi A, order 1 shipped."}
                                       for p in people])
    context, page = _login(chromium, srv.base)
    page.wait_for_selector(".conv")
    time.sleep(1.0)  # the dispatcher sends the 50 meanwhile: their status events must not add rows
    assert page.locator(".conv .name").all_inner_texts() == ["Grace Hopper"]
    page.screenshot(path=str(SHOTS / "list-1440.png"))
    fake.inject_inbound(phone_number_id=PNID, from_phone=people[7].phone, text="Where is it?", name="Recipient 7")
    page.wait_for_selector(".conv >> text=Where is it?")
    assert page.locator(".conv .name").all_inner_texts() == ["Recipient 7", "Grace Hopper"]
    page.click(".conv .name >> text=Recipient 7")
    page.wait_for_selector(".row.out >> text=Hi A, order 1 shipped.")  # the campaign message is in the thread
    page.screenshot(path=str(SHOTS / "thread-1440.png"))
    context.close()


def test_sandbox_reply_after_a_restart_inside_the_window(world, chromium):
    from apps.conversations.services.receiving import sandbox_inbound_simulate
    from apps.core.redis import get_redis

    srv = world["srv"]
    sandbox = world["workspace"].sandbox
    sandbox_number = sandbox.phone_numbers.get()
    sandbox_inbound_simulate(workspace=sandbox, phone_number=sandbox_number, from_phone="+16505550999",
                             message={"type": "text", "text": {"body": "Sandbox hello"}}, name="Sandra Box")
    assert _wait(lambda: Conversation.objects.filter(workspace=sandbox, last_inbound_at__isnull=False).exists())
    srv.stop()
    r = get_redis()
    for key in r.scan_iter("sim:*"):  # what a restart of the embedded default does: the simulator forgets
        r.delete(key)
    srv.start()
    context, page = _login(chromium, srv.base)
    if not page.is_visible(".sandbox-ribbon"):
        page.click(".env-btn.sandbox")
        page.wait_for_selector(".sandbox-ribbon")
    page.wait_for_selector(".conv >> text=Sandbox hello")
    page.click(".conv .name >> text=Sandra Box")
    page.fill("#compose", "Still here after the restart")
    page.keyboard.press("Enter")
    assert _wait(lambda: Message.objects.filter(workspace=sandbox, body="Still here after the restart",
                                                status__in=["delivered", "read", "failed"]).exists())
    message = Message.objects.get(workspace=sandbox, body="Still here after the restart")
    assert (message.status, message.upstream_code) in (("delivered", None), ("read", None))
    context.close()


def test_auto_assignment_spreads_30_new_conversations_over_3_online_agents(world, chromium):
    """Three agents have the inbox open (their sockets' heartbeats mark them online), a fourth team member has
    not; 30 customers write for the first time; each open inbox gets 10 in "Mine", the fourth none."""
    from collections import Counter

    from apps.conversations.models import AgentPresence
    from apps.conversations.services import organise
    from apps.core.models import User

    srv, fake, workspace = world["srv"], world["fake"], world["workspace"]
    agents = [world["agent"], User.objects.get(username="linus"), make_agent(workspace, username="grace")]
    absent = make_agent(workspace, username="dee")
    team = organise.team_save(workspace=workspace, name="Support", member_ids=[a.pk for a in [*agents, absent]],
                              auto_assign=True, inbound_default=True)
    sessions = [_login(chromium, srv.base, username=a.username) for a in agents]
    assert _wait(lambda: AgentPresence.objects.filter(workspace=workspace, user__in=agents, status="online").count() == 3)
    _customers(fake, [f"Customer {i}" for i in range(30)])
    assert _wait(lambda: Conversation.objects.filter(team=team, assigned_user__isnull=False).count() == 30)
    counts = Counter(Conversation.objects.filter(team=team).values_list("assigned_user__username", flat=True))
    assert counts == {"ada": 10, "linus": 10, "grace": 10}
    for (context, page), agent in zip(sessions, agents, strict=True):
        page.click("button[data-assignee=mine]")
        mine = set(Conversation.objects.filter(team=team, assigned_user=agent).values_list("contact__name", flat=True))
        # The page hears of the assignments over its socket: wait for the list to settle on exactly these ten.
        assert _wait(lambda page=page, mine=mine: set(page.locator(".conv .name").all_inner_texts()) == mine
                     and page.locator(".conv").count() == 10, timeout=20), \
            (agent.username, page.locator(".conv .name").all_inner_texts(), mine)
    sessions[0][1].screenshot(path=str(SHOTS / "auto-assigned-mine-1440.png"))
    for context, _ in sessions:
        context.close()


def test_a_late_answer_for_the_filter_before_does_not_overwrite_mine(world, chromium):
    """List reloads are answered out of order: the answer for "All", held back until "Mine" has shown, must not
    replace Mine's rows when it finally comes (the list briefly showed other agents' conversations)."""
    from apps.core.models import User

    srv, fake, agent = world["srv"], world["fake"], world["agent"]
    conversations = _customers(fake, ["Kept Mine", "Linus One", "Linus Two"])
    Conversation.objects.filter(pk=conversations[0].pk).update(assigned_user=agent)
    Conversation.objects.filter(pk__in=[c.pk for c in conversations[1:]]).update(
        assigned_user=User.objects.get(username="linus"))
    context, page = _login(chromium, srv.base)
    assert _wait(lambda: page.locator(".conv").count() == 3)
    held = []

    def hold_all_but_mine(route):
        if "mine=true" in route.request.url:
            route.continue_()
        else:
            held.append(route)

    page.route("**/api/v1/conversations?*", hold_all_but_mine)
    page.click("button[data-assignee=all]")  # its answer is held back…
    assert _wait(lambda: len(held) == 1)
    page.click("button[data-assignee=mine]")  # …while Mine's comes at once
    assert _wait(lambda: page.locator(".conv .name").all_inner_texts() == ["Kept Mine"])
    with page.expect_response(lambda r: "/api/v1/conversations?" in r.url and "mine=true" not in r.url) as late:
        held[0].continue_()
    late.value.finished()
    page.evaluate("() => new Promise((done) => setTimeout(done, 300))")  # the page has handled the late answer
    assert page.locator(".conv .name").all_inner_texts() == ["Kept Mine"]
    page.unroute("**/api/v1/conversations?*")
    context.close()


def test_a_tour_at_both_sizes_in_both_schemes(world, chromium):
    """The views a person moves through (list, thread with a media preview, composer holding an attachment,
    the labels popover, the contact pane), at 1440x900 and 390x844, light and dark: nothing scrolls sideways
    and each is screenshotted for a person to look at."""
    from apps.conversations.services import organise

    srv, fake, workspace = world["srv"], world["fake"], world["workspace"]
    convs = _customers(fake, ["Grace Hopper", "Alan Turing", "Ada Byron", "Edsger Dijkstra", "Barbara Liskov"])
    vip = organise.label_create(workspace=workspace, name="VIP", color="#b42318")
    billing = organise.label_create(workspace=workspace, name="Billing", color="#175cd3")
    organise.conversations_labels_change(workspace=workspace, conversation_ids=[convs[0].pk], add=[vip.pk, billing.pk])
    organise.conversations_labels_change(workspace=workspace, conversation_ids=[convs[2].pk], add=[billing.pk])
    for scheme in ("light", "dark"):
        for width, height in ((1440, 900), (390, 844)):
            tag = f"{width}-{scheme}"
            context, page = _login(chromium, srv.base, viewport={"width": width, "height": height}, color_scheme=scheme)
            page.wait_for_selector(".conv >> nth=4")
            assert _no_sideways_scroll(page), tag
            page.screenshot(path=str(SHOTS / f"tour-list-{tag}.png"))
            page.click(".conv .name >> text=Grace Hopper")
            page.wait_for_selector(".row.in")
            if scheme == "light" and width == 1440:  # one image in the thread for every later view
                page.set_input_files("#attach-input", str(SAMPLES / "image.jpg"))
                page.wait_for_selector("#attach[data-media-id]")
                page.fill("#compose", "Here is the label")
                page.keyboard.press("Enter")
            page.wait_for_selector(".row.out img.media")
            page.wait_for_function("[...document.querySelectorAll('img.media')].every(i => i.complete)")
            assert _no_sideways_scroll(page), tag
            if scheme == "dark":  # no button keeps the light theme's white (it made their pale text unreadable)
                white = page.evaluate("[...document.querySelectorAll('.btn')].filter(b => b.offsetParent && "
                                      "getComputedStyle(b).backgroundColor === 'rgb(255, 255, 255)')"
                                      ".map(b => b.id || b.textContent.trim())")
                assert white == [], white
            if width >= 768:  # the phone's pane buttons stay on the phone
                assert not any(page.is_visible(s) for s in ("#back-to-list", "#back-to-thread", "#show-contact"))
            page.screenshot(path=str(SHOTS / f"tour-thread-{tag}.png"))
            page.set_input_files("#attach-input", str(SAMPLES / "document.pdf"))
            page.wait_for_selector("#attach[data-media-id]")
            page.fill("#compose", "And the invoice")
            assert _no_sideways_scroll(page), tag
            page.screenshot(path=str(SHOTS / f"tour-composer-attachment-{tag}.png"))
            page.click("#t-label-btn")
            page.wait_for_selector("#label-new-name")
            assert _no_sideways_scroll(page), tag
            page.screenshot(path=str(SHOTS / f"tour-labels-{tag}.png"))
            page.keyboard.press("Escape")
            page.click("#messages")
            if width < 768:
                page.click("#show-contact")
                page.wait_for_selector("#side-pane")
                assert _no_sideways_scroll(page), tag
                page.screenshot(path=str(SHOTS / f"tour-contact-{tag}.png"))
            context.close()
