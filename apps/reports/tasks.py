"""Celery tasks for reports (thin)."""

from celery import shared_task

from apps.reports import services


@shared_task(name="apps.reports.tasks.rollups_advance")
def rollups_advance() -> int:
    return services.rollups_advance()
