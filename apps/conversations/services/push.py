"""Mobile push for new inbound messages: each device of the conversation's assignee (or, unassigned, of
the members who asked for those) gets one FCM request; registration tokens FCM reports invalid are
forgotten. Runs in a task after the inbound message committed (never inside its transaction)."""

from __future__ import annotations

import logging

from django.conf import settings

from apps.conversations.models import Message

logger = logging.getLogger("reach.push")


def push_enabled() -> bool:
    return bool(settings.FCM_SERVICE_ACCOUNT_JSON)


def push_inbound_enqueue(message_id: str) -> None:
    """After commit of an inbound message (best effort: a lost push is not a lost message)."""
    if not push_enabled():
        return
    from apps.conversations.tasks.push import push_inbound_task

    try:
        push_inbound_task.delay(message_id)
    except Exception:
        logger.warning("could not enqueue the push for %s", message_id, exc_info=True)


def push_inbound(*, message_id: str) -> dict[str, int]:
    """Send the pushes of one inbound message: {"sent", "failed", "forgotten"}."""
    from apps.core import selectors as core_selectors
    from apps.core import services as core_services
    from apps.providers.fcm import get_fcm_client

    out = {"sent": 0, "failed": 0, "forgotten": 0}
    message = (Message.objects.select_related("conversation", "contact", "workspace")
               .filter(pk=message_id, direction=Message.Direction.INBOUND).first())
    client = get_fcm_client()
    if message is None or message.conversation is None or client is None:
        return out
    devices = core_selectors.push_devices_for_inbound(workspace_id=message.workspace.live.pk,
                                                      assigned_user_id=message.conversation.assigned_user_id)
    contact = message.contact
    title = (contact.name or contact.phone or "New message") if contact else "New message"
    invalid = []
    for device in devices:
        result = client.send(token=device.push_token, title=title, body=message.body or f"[{message.type}]",
                             data={"conversation_id": message.conversation_id, "message_id": message.pk,
                                   "channel": message.channel})
        if result.ok:
            out["sent"] += 1
        else:
            out["failed"] += 1
            if result.invalid_token:
                invalid.append(device.push_token)
            else:
                logger.warning("push to %s failed: %s %s", device.pk, result.status, result.error)
    if invalid:
        out["forgotten"] = core_services.devices_forget_tokens(push_tokens=invalid)
    return out
