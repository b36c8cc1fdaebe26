"""Celery tasks for the autoreplies road (thin: take ids, call a service)."""

from celery import shared_task

from apps.conversations.services import autoreplies


@shared_task(name="apps.conversations.tasks.autoreplies.auto_reply_for_inbound")
def auto_reply_for_inbound(message_id: str, contact_created: bool, consent_keyword: str | None = None) -> str | None:
    reply = autoreplies.auto_reply_for_inbound(message_id=message_id, contact_created=contact_created,
                                               consent_keyword=consent_keyword)
    return reply.pk if reply is not None else None
