"""Celery tasks for the media road (thin: take ids, call a service)."""
