"""Celery tasks for the sending road (thin: take ids, call a service)."""
