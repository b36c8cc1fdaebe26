"""Helpers for the send-road tests (not collected: no test_ prefix)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.contacts.models import Contact
from apps.message_templates.models import MessageTemplate
from apps.wabas.models import PhoneNumber
from apps.wabas.services import waba_connect

TO = "+15557654321"


def live_number(workspace, *, meta_waba_id="102290129340398", phone_number_id="106540352242922",
                display="+15550783881", mps: int | None = None) -> PhoneNumber:
    number = waba_connect(workspace=workspace, meta_waba_id=meta_waba_id, phone_number_id=phone_number_id,
                          display_phone_number=display, access_token="EAAG-test-token", name="Acme")
    if mps:
        PhoneNumber.objects.filter(pk=number.pk).update(throughput_mps=mps)
        number.refresh_from_db()
    return number


def contact(workspace, phone=TO, *, inbound_hours_ago: float | None = 1, opted_in=True) -> Contact:
    last = timezone.now() - timedelta(hours=inbound_hours_ago) if inbound_hours_ago is not None else None
    return Contact.objects.create(workspace=workspace, phone=phone, last_inbound_at=last, opted_in=opted_in)


def template(workspace, waba, *, name="order_update", language="en", category="UTILITY", status="APPROVED",
             body="Hi {{1}}, order {{2}} shipped.", parameter_format="POSITIONAL") -> MessageTemplate:
    return MessageTemplate.objects.create(
        workspace=workspace, waba=waba, name=name, language=language, category=category, status=status,
        parameter_format=parameter_format, components=[{"type": "BODY", "text": body}],
    )


def redis_keys_clear() -> None:
    """Forget every pacer, bucket and kick key (reach:*), so a test starts with full buckets."""
    from apps.core.redis import get_redis

    r = get_redis()
    for key in r.scan_iter("reach:*"):
        r.delete(key)


def sandbox_template_send(api, workspace):
    """The sandbox's one number and a 202 answer to an order_update template send to +15557654321."""
    sandbox = workspace.sandbox
    number = sandbox.phone_numbers.get()
    template(sandbox, number.waba)
    r = api.post("/api/v1/messages", {"to": "+15557654321", "template": {
        "name": "order_update", "language": "en", "variables": ["Ann", "7"]}}, format="json")
    assert r.status_code == 202, r.content
    return number, r
