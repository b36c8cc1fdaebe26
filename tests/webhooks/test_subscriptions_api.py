"""/api/v1/webhook-subscriptions and /api/v1/webhook-deliveries."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import outbound
from tests.webhooks import outbound_support
from tests.webhooks.outbound_support import emit

pytestmark = pytest.mark.django_db
receiver = outbound_support.receiver
allow_http = outbound_support.allow_http
BASE = "/api/v1/webhook-subscriptions"


def _create(api, url, events=("*",), **extra):
    return api.post(BASE, {"url": url, "events": list(events), **extra}, format="json")


def test_create_shows_the_secret_once(live_api, workspace, receiver, allow_http):
    response = _create(live_api, receiver.url(), events=["message.inbound", "contact.opted_out"],
                       description="CRM")
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("whs_")
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 32
    assert body["events"] == ["contact.opted_out", "message.inbound"]
    assert body["description"] == "CRM" and body["enabled"] is True and body["sandbox"] is False
    got = live_api.get(f"{BASE}/{body['id']}").json()
    assert "secret" not in got
    assert [s["id"] for s in live_api.get(BASE).json()["data"]] == [body["id"]]
    stored = WebhookSubscription.objects.get()
    assert body["secret"] not in stored.secret  # encrypted at rest


@pytest.mark.parametrize("events,field", [([], "events"), (["message.nope"], "events"), (["*", "message.sent"], "events")])
def test_create_validates_events(live_api, receiver, allow_http, events, field):
    response = _create(live_api, receiver.url(), events=events)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"
    assert response.json()["error"]["details"]["field"] == field
    assert WebhookSubscription.objects.count() == 0


@pytest.mark.parametrize("url", [
    "http://example.com/hook",  # plain http without the development flag
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://127.0.0.1/hook",
    "ftp://example.com/x",
    "https://user:pw@example.com/x",
])
def test_create_refuses_unsafe_urls(live_api, url):
    response = _create(live_api, url)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "url"
    assert WebhookSubscription.objects.count() == 0


def test_scope_is_required(workspace, api_client_for, receiver, allow_http):
    api = api_client_for(workspace, scopes=["messages:read"])
    assert _create(api, receiver.url()).status_code == 403
    assert api.get(BASE).status_code == 403
    assert WebhookSubscription.objects.count() == 0


def test_sandbox_and_live_are_separate(workspace, live_api, sandbox_api, receiver, allow_http):
    live_id = _create(live_api, receiver.url("/live")).json()["id"]
    sandbox = _create(sandbox_api, receiver.url("/sandbox")).json()
    assert sandbox["sandbox"] is True
    assert [s["id"] for s in sandbox_api.get(BASE).json()["data"]] == [sandbox["id"]]
    assert sandbox_api.get(f"{BASE}/{live_id}").status_code == 404
    assert live_api.delete(f"{BASE}/{sandbox['id']}").status_code == 404


def test_foreign_workspace_gets_404(other_workspace, api_client_for, live_api, receiver, allow_http):
    sub_id = _create(live_api, receiver.url()).json()["id"]
    other = api_client_for(other_workspace)
    for response in (other.get(f"{BASE}/{sub_id}"), other.patch(f"{BASE}/{sub_id}", {"enabled": False},
                                                                   format="json"),
                     other.post(f"{BASE}/{sub_id}/rotate-secret"), other.get(f"{BASE}/{sub_id}/deliveries")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert WebhookSubscription.objects.get().enabled is True


def test_patch_and_delete(live_api, receiver, allow_http):
    sub_id = _create(live_api, receiver.url()).json()["id"]
    response = live_api.patch(f"{BASE}/{sub_id}", {"enabled": False, "events": ["message.read"],
                                                   "description": "x", "rate_limit_per_second": 5}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["enabled"] is False and body["disabled_reason"] == "manual"
    assert body["events"] == ["message.read"] and body["rate_limit_per_second"] == 5
    assert live_api.patch(f"{BASE}/{sub_id}", {"url": "https://10.1.2.3/"}, format="json").status_code == 400
    assert live_api.patch(f"{BASE}/{sub_id}", {"enabled": True}, format="json").json()["enabled"] is True
    assert live_api.delete(f"{BASE}/{sub_id}").status_code == 204
    assert live_api.get(f"{BASE}/{sub_id}").status_code == 404
    assert live_api.get(BASE).json()["data"] == []


def test_rotate_secret_returns_a_new_secret_once(live_api, receiver, allow_http):
    created = _create(live_api, receiver.url()).json()
    response = live_api.post(f"{BASE}/{created['id']}/rotate-secret")
    assert response.status_code == 200
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    assert body["previous_secret_expires_at"] is not None
    assert "secret" not in live_api.get(f"{BASE}/{created['id']}").json()


def test_test_event_and_deliveries_listing(live_api, receiver, allow_http):
    created = _create(live_api, receiver.url("/t")).json()
    response = live_api.post(f"{BASE}/{created['id']}/test")
    assert response.status_code == 200
    delivery = response.json()
    assert delivery["event_type"] == "webhook.test" and delivery["status"] == "succeeded"
    assert delivery["attempts"][0]["status_code"] == 200
    [req] = receiver.for_path("/t")
    assert req.headers["webhook-id"] == delivery["id"]
    listing = live_api.get(f"{BASE}/{created['id']}/deliveries").json()
    assert [d["id"] for d in listing["data"]] == [delivery["id"]]
    attempt = listing["data"][0]["attempts"][0]
    assert set(attempt) >= {"status_code", "latency_ms", "error", "request_id"}


def test_deliveries_are_paginated_with_a_cursor(workspace, live_api, receiver, allow_http):
    sub_id = _create(live_api, receiver.url()).json()["id"]
    for _ in range(5):
        emit(workspace)
    outbound.events_fan_out()
    page1 = live_api.get(f"{BASE}/{sub_id}/deliveries?limit=3").json()
    page2 = live_api.get(f"{BASE}/{sub_id}/deliveries?limit=3&cursor={page1['next_cursor']}").json()
    assert len(page1["data"]) == 3 and len(page2["data"]) == 2 and page2["next_cursor"] is None
    assert live_api.get(f"{BASE}/{sub_id}/deliveries?status=bogus").status_code == 400


def test_redeliver_keeps_the_webhook_id(workspace, live_api, receiver, allow_http):
    receiver.script("/r", [500, 200])
    sub_id = _create(live_api, receiver.url("/r")).json()["id"]
    emit(workspace)
    outbound.events_fan_out()
    outbound.deliver_due()
    WebhookDelivery.objects.update(status="failed", next_attempt_at=None)
    delivery = WebhookDelivery.objects.get()
    response = live_api.post(f"/api/v1/webhook-deliveries/{delivery.id}/redeliver")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    outbound.deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_count == 2
    assert [r.headers["webhook-id"] for r in receiver.for_path("/r")] == [delivery.id, delivery.id]
    assert WebhookSubscription.objects.get(pk=sub_id).last_success_at is not None


def test_redeliver_failed_since_at_most_14_days_back(workspace, live_api, receiver, allow_http):
    receiver.script("/f", [500])
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with time_machine.travel(t0, tick=False) as clock:
        sub_id = _create(live_api, receiver.url("/f")).json()["id"]
        emit(workspace)
        emit(workspace)
        outbound.events_fan_out()
        WebhookDelivery.objects.update(status="failed", next_attempt_at=None)
        clock.move_to(t0 + timedelta(days=2))
        emit(workspace)
        outbound.events_fan_out()
        WebhookDelivery.objects.update(status="failed", next_attempt_at=None)
        clock.move_to(t0 + timedelta(days=3))
        too_old = (t0 + timedelta(days=3) - timedelta(days=15)).isoformat()
        response = live_api.post(f"{BASE}/{sub_id}/redeliver-failed", {"since": too_old}, format="json")
        assert response.status_code == 400 and response.json()["error"]["details"]["field"] == "since"
        assert WebhookDelivery.objects.filter(status="pending").count() == 0
        since = (t0 + timedelta(days=1)).isoformat()
        response = live_api.post(f"{BASE}/{sub_id}/redeliver-failed", {"since": since}, format="json")
        assert response.status_code == 202 and response.json() == {"redelivered": 1}
        assert WebhookDelivery.objects.filter(status="pending").count() == 1


def test_idempotent_create(live_api, receiver, allow_http):
    headers = {"HTTP_IDEMPOTENCY_KEY": "create-1"}
    first = live_api.post(BASE, {"url": receiver.url(), "events": ["*"]}, format="json", **headers)
    again = live_api.post(BASE, {"url": receiver.url(), "events": ["*"]}, format="json", **headers)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert WebhookSubscription.objects.count() == 1
