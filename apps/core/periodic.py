"""Registry of periodic jobs. Apps register in AppConfig.ready(); `manage.py serve` and beat read it
(django-celery-beat syncs CELERY_BEAT_SCHEDULE into its tables)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def register(name: str, task: str, *, seconds: float) -> None:
    settings.CELERY_BEAT_SCHEDULE[name] = {"task": task, "schedule": timedelta(seconds=seconds)}
