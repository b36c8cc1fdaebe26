"""Messenger and Instagram through Meta's Send API: payloads (payloads.py), the HTTP client (client.py) and
the webhook reader for `object` page / instagram (webhooks.py)."""
