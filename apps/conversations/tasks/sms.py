"""Celery tasks for SMS (thin: take ids, call a service)."""

from celery import shared_task

from apps.conversations.services import sms


@shared_task(name="apps.conversations.tasks.sms.sms_price_fetch_task", ignore_result=True,
             autoretry_for=(), max_retries=0)
def sms_price_fetch_task(message_id: str) -> bool:
    return sms.sms_price_fetch(message_id=message_id)
