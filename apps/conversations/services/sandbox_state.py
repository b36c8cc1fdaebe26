"""The in-process simulator's memory, rebuilt from ours: its window records live in Redis, which in the
embedded default is in memory, so a restart would make it refuse replies the inbox shows as in the window."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone


def sandbox_windows_rebuild() -> int:
    """Every sandbox conversation whose customer wrote within the window: its record put back into the
    simulator (core.hooks.process_started runs this when a server starts). Returns how many."""
    from apps.conversations.selectors.messages import sandbox_open_windows
    from apps.providers.registry import whatsapp_provider

    since = timezone.now() - timedelta(hours=settings.CUSTOMER_SERVICE_WINDOW_HOURS)
    simulator = whatsapp_provider(simulated=True)
    rows = sandbox_open_windows(since=since)
    for pnid, wa_id, at in rows:
        simulator.window_restore(phone_number_id=pnid, wa_id=wa_id, at=at)
    return len(rows)
