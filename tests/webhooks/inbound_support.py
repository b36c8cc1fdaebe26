"""Helpers for the receive-road tests (not collected: no test_ prefix)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from django.conf import settings

from apps.providers.meta_cloud.signatures import sign_body
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "meta"
META_WABA_ID = "102290129340398"
META_PHONE_ID = "106540352242922"
DISPLAY = "+15550783881"


def fixture(name: str) -> dict:
    for sub in ("webhooks", "extra"):
        path = FIXTURES / sub / name
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError(name)


def connect_number(workspace, *, meta_waba_id: str = META_WABA_ID, phone_number_id: str = META_PHONE_ID,
                   display: str = DISPLAY):
    from apps.wabas.services import waba_connect

    return waba_connect(workspace=workspace, meta_waba_id=meta_waba_id, phone_number_id=phone_number_id,
                        display_phone_number=display, access_token="EAAG-test-token", name="Acme")


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def signed_post(client, payload_or_body, *, secret: str | None = None, header: str | None = "auto"):
    body = payload_or_body if isinstance(payload_or_body, bytes) else body_of(payload_or_body)
    headers = {}
    if header == "auto":
        headers["HTTP_X_HUB_SIGNATURE_256"] = sign_body(body, secret or settings.META_APP_SECRET)
    elif header is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = header
    return client.generic("POST", "/webhooks/meta", body, content_type="application/json", **headers)


def deliver(payload: dict) -> inbound.ProcessOutcome:
    """Store and process a payload the way the endpoint and the task would."""
    webhook_id = inbound.inbound_webhook_store(body=body_of(payload))
    if webhook_id is None:
        webhook_id = InboundWebhook.objects.get(dedupe_key=inbound.inbound_webhook_dedupe_key(body_of(payload))).pk
    return inbound.inbound_webhook_process(webhook_id=webhook_id)


def text_payload(*, wamid: str, body: str = "hello", wa_id: str = "16505551234", name: str = "Sheena Nelson",
                 timestamp: int = 1749416383, phone_number_id: str = META_PHONE_ID) -> dict:
    payload = copy.deepcopy(fixture("oas_text_message.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = phone_number_id
    value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
    value["messages"] = [{"from": wa_id, "id": wamid, "timestamp": str(timestamp), "type": "text",
                          "text": {"body": body}}]
    return payload


def status_payload(statuses: list[dict], *, phone_number_id: str = META_PHONE_ID) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": META_WABA_ID, "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
                      "statuses": statuses}}]}]}


def status(wamid: str, status: str, ts: int, **extra) -> dict:
    return {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": "16505551234", **extra}
