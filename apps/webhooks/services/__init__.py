"""Webhooks write layer: inbound.py (Meta -> us) and outbound.py (us -> subscribers)."""
