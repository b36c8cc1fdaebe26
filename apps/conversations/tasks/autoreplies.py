"""Celery tasks for the autoreplies road (thin: take ids, call a service)."""
