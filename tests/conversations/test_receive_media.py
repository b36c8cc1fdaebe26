"""Inbound media: the message is stored first with Meta's media id; the file is fetched after commit,
and a failed fetch keeps the message and retries later."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.models import Message
from apps.conversations.services import receiving
from apps.providers.registry import whatsapp_provider
from apps.webhooks.services import inbound

pytestmark = pytest.mark.django_db
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _sandbox_image(workspace, media_id: str) -> Message:
    number = workspace.sandbox.phone_numbers.select_related("waba").get()
    receiving.sandbox_inbound_simulate(
        workspace=workspace.sandbox, phone_number=number, from_phone="+16505551234",
        message={"type": "image", "image": {"id": media_id, "mime_type": "image/png", "caption": "look"}})
    inbound.inbound_webhooks_sweep()
    return Message.objects.get(type="image")


def test_inbound_image_is_downloaded_and_attached(workspace):
    number = workspace.sandbox.phone_numbers.get()
    media_id = whatsapp_provider(simulated=True).upload_media(
        phone_number_id=number.meta_phone_number_id, data=PNG, mime_type="image/png", filename="dot.png")
    message = _sandbox_image(workspace, media_id)
    assert message.body == "look"
    assert message.media_id is None
    assert message.next_attempt_at is not None
    assert receiving.inbound_media_fetch(message_id=message.pk) is True
    message.refresh_from_db()
    assert message.media is not None
    assert message.media.meta_media_id == media_id
    assert message.media.size == len(PNG)
    assert message.media.workspace == workspace.sandbox
    assert message.next_attempt_at is None
    assert receiving.inbound_media_due() == []


def test_failed_download_keeps_the_message_and_retries_later(workspace):
    message = _sandbox_image(workspace, "9999999999999999")  # Meta would answer 404 for an unknown id
    assert receiving.inbound_media_fetch(message_id=message.pk) is False
    message.refresh_from_db()
    assert message.media_id is None
    assert message.content["id"] == "9999999999999999"
    assert message.attempts == 1
    assert message.error_code == "MEDIA_DOWNLOAD_FAILED"
    assert message.next_attempt_at > timezone.now()
    assert receiving.inbound_media_due() == []
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert receiving.inbound_media_due() == [message.pk]


def test_media_retries_stop_when_metas_id_has_expired(workspace, settings):
    message = _sandbox_image(workspace, "8888888888888888")
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=8))
    assert receiving.inbound_media_fetch(message_id=message.pk) is False
    message.refresh_from_db()
    assert message.next_attempt_at is None
    assert Message.objects.filter(pk=message.pk).exists()
