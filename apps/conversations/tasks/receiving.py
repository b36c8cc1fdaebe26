"""Celery tasks for the receiving road (thin: take ids, call a service)."""
