"""Celery tasks for the dispatch road (thin: take ids, call a service)."""
