"""Celery task for mobile pushes (thin: take the id, call the service)."""

from celery import shared_task

from apps.conversations.services import push


@shared_task(name="apps.conversations.tasks.push.push_inbound_task", ignore_result=True)
def push_inbound_task(message_id: str) -> dict:
    return push.push_inbound(message_id=message_id)
