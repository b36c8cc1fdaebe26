"""GET/POST /webhooks/meta: handshake, signature, limits, store-before-200, dedupe, on-commit enqueue."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.webhooks.inbound_support import body_of, signed_post, text_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def enqueued(monkeypatch):
    calls: list[tuple[str, float]] = []
    monkeypatch.setattr(inbound, "_enqueue", lambda webhook_id, countdown: calls.append((webhook_id, countdown)))
    return calls


def test_handshake_echoes_challenge_as_plain_text(client, settings):
    settings.META_VERIFY_TOKEN = "s3cret-verify"
    response = client.get("/webhooks/meta", {"hub.mode": "subscribe", "hub.verify_token": "s3cret-verify",
                                             "hub.challenge": "1158201444"})
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": "s3cret-verify", "hub.challenge": "1"},
    {"hub.challenge": "1"},
])
def test_handshake_refuses_wrong_token_or_mode(client, settings, params):
    settings.META_VERIFY_TOKEN = "s3cret-verify"
    response = client.get("/webhooks/meta", params)
    assert response.status_code == 403
    assert b"1" not in response.content


def test_signed_post_is_stored_before_200_and_enqueued_on_commit(client, enqueued,
                                                                   django_capture_on_commit_callbacks):
    payload = text_payload(wamid="wamid.A1")
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_post(client, payload)
    assert response.status_code == 200
    row = InboundWebhook.objects.get()
    assert bytes(row.body) == body_of(payload)
    assert row.source == "meta"
    assert row.processed_at is None
    assert row.dedupe_key == inbound.inbound_webhook_dedupe_key(body_of(payload))
    assert enqueued == [(row.pk, 0.0)]


@pytest.mark.parametrize("header", [None, "", "sha256=" + "0" * 64, "sha1=abc", "garbage"])
def test_bad_or_missing_signature_is_401_and_nothing_stored(client, enqueued, header):
    response = signed_post(client, text_payload(wamid="wamid.A2"), header=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert InboundWebhook.objects.count() == 0
    assert enqueued == []


def test_signature_with_another_secret_is_401(client, enqueued):
    response = signed_post(client, text_payload(wamid="wamid.A3"), secret="not-the-app-secret")
    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


def test_signature_covers_the_exact_bytes(client, enqueued, settings):
    from apps.providers.meta_cloud.signatures import sign_body

    body = body_of(text_payload(wamid="wamid.A4"))
    tampered = body.replace(b"hello", b"HELLO")
    response = signed_post(client, tampered, header=sign_body(body, settings.META_APP_SECRET))
    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0


def test_duplicate_body_is_a_noop(client, enqueued, django_capture_on_commit_callbacks):
    payload = text_payload(wamid="wamid.A5")
    with django_capture_on_commit_callbacks(execute=True):
        assert signed_post(client, payload).status_code == 200
        assert signed_post(client, payload).status_code == 200
    assert InboundWebhook.objects.count() == 1
    assert len(enqueued) == 1


def test_body_not_json_is_400_and_not_stored(client, enqueued):
    response = signed_post(client, b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_JSON"
    assert InboundWebhook.objects.count() == 0


def test_body_over_limit_is_413(client, enqueued, settings):
    settings.META_WEBHOOK_MAX_BYTES = 1000
    body = body_of({"object": "whatsapp_business_account", "pad": "x" * 2000})
    response = signed_post(client, body)
    assert response.status_code == 413
    assert InboundWebhook.objects.count() == 0


def test_meta_sized_body_over_the_api_json_limit_is_accepted(client, enqueued, settings):
    # Meta sends up to 3 MB; the 1 MB API body limit must not apply here.
    settings.API_MAX_BODY_BYTES = 1024
    body = body_of({"object": "whatsapp_business_account", "entry": [], "pad": "x" * 5000})
    response = signed_post(client, body)
    assert response.status_code == 200
    assert InboundWebhook.objects.count() == 1


def test_other_methods_are_405(client):
    assert client.put("/webhooks/meta", b"{}", content_type="application/json").status_code == 405


def test_inbound_sink_stores_a_simulator_row_with_delay(enqueued, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from apps.core import hooks

    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        hooks.deliver_inbound(payload=text_payload(wamid="wamid.SIM1"), delay_seconds=30, source="simulator")
    row = InboundWebhook.objects.get()
    assert row.source == "simulator"
    assert 29 <= (row.available_at - before).total_seconds() <= 31
    assert enqueued == [(row.pk, 30)]
