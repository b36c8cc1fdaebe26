"""Celery tasks for the sending road (thin: take ids, call a service)."""

from celery import shared_task

from apps.conversations.services import sending


@shared_task(name="apps.conversations.tasks.sending.messages_release_scheduled", ignore_result=True)
def messages_release_scheduled() -> int:
    return sending.messages_release_scheduled()
