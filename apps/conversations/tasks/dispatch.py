"""Celery tasks for the dispatch road (thin: take ids, call a service). Safe to run twice: claims are
compare-and-set and the rows are the queue."""

from celery import shared_task

from apps.conversations.services import dispatch


@shared_task(name="apps.conversations.tasks.dispatch.dispatch_number", ignore_result=True)
def dispatch_number(phone_number_id: str) -> dict:
    return dict(dispatch.dispatch_drain(phone_number_id=phone_number_id))


@shared_task(name="apps.conversations.tasks.dispatch.dispatch_sweep", ignore_result=True)
def dispatch_sweep() -> dict:
    return dispatch.dispatch_sweep()


@shared_task(name="apps.conversations.tasks.dispatch.dispatch_social_account", ignore_result=True)
def dispatch_social_account(account_id: str) -> dict:
    from apps.conversations.services.dispatch.social import social_dispatch_drain

    return dict(social_dispatch_drain(account_id=account_id))
