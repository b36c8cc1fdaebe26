"""Celery tasks for the inbox road (thin: take ids, call a service)."""

from celery import shared_task

from apps.conversations.services import inbox


@shared_task(name="apps.conversations.tasks.inbox.conversations_wake_snoozed")
def conversations_wake_snoozed() -> int:
    return inbox.conversations_wake_snoozed()
