"""Messenger / Instagram fixtures: fakemeta on its own port posting signed `page` / `instagram` webhooks
to a live server's /webhooks/meta, the real Send API client pointed at it."""

from __future__ import annotations

import time

import pytest
import requests

from apps.core import services as core_services
from apps.providers import registry
from apps.providers.simulator.testing import TEST_APP_SECRET, start_fakemeta_in_thread

PAGE_ID, IG_USER_ID, IG_PAGE_ID = "104000000000001", "17841400000000001", "104000000000002"
PAGE_TOKEN, IG_TOKEN = "EAAG-page-token", "EAAG-ig-token"


@pytest.fixture
def fake(live_server, settings):
    settings.META_APP_SECRET = TEST_APP_SECRET
    handle = start_fakemeta_in_thread(webhook_url=f"{live_server.url}/webhooks/meta", app_secret=TEST_APP_SECRET)
    settings.META_GRAPH_URL = handle.base_url
    registry.reset_for_tests()
    handle.register_social_account(channel="messenger", account_id=PAGE_ID, token=PAGE_TOKEN)
    handle.register_social_account(channel="instagram", account_id=IG_USER_ID, token=IG_TOKEN)
    yield handle
    handle.stop()
    registry.reset_for_tests()


@pytest.fixture
def live(live_server, fake):
    workspace = core_services.workspace_create(name="Social", slug="social-e2e")
    _, secret = core_services.api_key_create(workspace=workspace, name="e2e", sandbox=False)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {secret}"
    api.base = live_server.url
    return workspace, api


def pump_until(predicate, *, timeout: float = 20.0, account_id: str | None = None) -> bool:
    """The worker's job, done here: process stored webhooks (and drain the account) until done."""
    from apps.conversations.services.dispatch.social import social_dispatch_drain
    from apps.webhooks.services import inbound

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if account_id:
            social_dispatch_drain(account_id=account_id, budget_seconds=0.5)
        inbound.inbound_webhooks_sweep()
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def connect(api, **body) -> dict:
    r = api.post(f"{api.base}/api/v1/social-accounts", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()
