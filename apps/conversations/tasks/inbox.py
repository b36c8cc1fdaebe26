"""Celery tasks for the inbox road (thin: take ids, call a service)."""
