"""A real server for the browser tests: `manage.py serve --with-worker` (Daphne + Celery worker + beat) in a
subprocess on a free port, on the test database and the test Redis DB, with fakemeta (in a thread of the
test process) as Meta: it posts signed webhooks to the server's /webhooks/meta and answers its Graph calls.
Headless Debian Chromium driven by Playwright's Python package."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from apps.providers.simulator.testing import TEST_APP_SECRET, start_fakemeta_in_thread

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _free_port(*, avoid: tuple[int, ...] = ()) -> int:
    """Any free port, or one of REACH_TEST_PORTS (e.g. "8164-8169") on a machine shared by several runs
    (`avoid`: ports already handed out but not bound yet)."""
    low, _, high = os.environ.get("REACH_TEST_PORTS", "").partition("-")
    candidates = [p for p in range(int(low), int(high or low) + 1) if p not in avoid] if low else [0]
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in REACH_TEST_PORTS={os.environ['REACH_TEST_PORTS']}")


def _skip_reason() -> str | None:
    if chromium_path() is None:
        return "no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)"
    if not settings.IS_POSTGRES or settings.EMBEDDED:
        return ("needs DATABASE_URL (PostgreSQL) and REDIS_URL: the served app runs in its own process and must "
                "share the test database, broker and channel layer")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="session")
def browser_skip():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def served(browser_skip, django_db_setup, django_db_blocker):
    """(base_url, fake handle). The server process reads the same test DB pytest-django created."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    fake = start_fakemeta_in_thread(webhook_url=f"{base}/webhooks/meta", app_secret=TEST_APP_SECRET,
                                    pair_limit_enabled=False)
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "META_GRAPH_URL": fake.base_url,
        "META_APP_SECRET": TEST_APP_SECRET,
        "SIMULATOR_SKIP_DELIVERED_PROBABILITY": "0",
        "REACH_ALLOW_HTTP_WEBHOOKS": "1",  # the console test's webhook receiver listens on http://127.0.0.1
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(ROOT / "var" / f"browser-server-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--with-worker",
                             "--concurrency", "4"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120  # a deadline, not a pace: slack for a loaded CI machine
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {log.name}")
            time.sleep(0.2)
        yield base, fake
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        fake.stop()


@pytest.fixture(scope="module")
def browser(browser_skip):
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still plain
    # synchronous code (Playwright's documented workaround for Django).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
