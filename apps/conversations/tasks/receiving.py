"""Celery tasks for the receiving road (thin: take ids, call a service)."""

from celery import shared_task

from apps.conversations.services import receiving


@shared_task(name="apps.conversations.tasks.receiving.inbound_media_fetch_task", ignore_result=True)
def inbound_media_fetch_task(message_id: str) -> bool:
    return receiving.inbound_media_fetch(message_id=message_id)


@shared_task(name="apps.conversations.tasks.receiving.inbound_media_sweep_task", ignore_result=True)
def inbound_media_sweep_task() -> int:
    done = 0
    for message_id in receiving.inbound_media_due():
        done += int(receiving.inbound_media_fetch(message_id=message_id))
    return done
