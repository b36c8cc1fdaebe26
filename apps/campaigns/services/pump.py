"""The pump that drives a running campaign (under a lease) and the feeders that help it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.campaigns.models import Campaign
from apps.campaigns.services.common import S, _in_flight, _window
from apps.campaigns.services.hand_out import campaign_hand_out_batch
from apps.campaigns.services.lifecycle import campaign_check, campaign_expire, campaign_materialize


def campaign_step(*, campaign_id: str, now: datetime | None = None, check: bool = True) -> str:
    """One round of the pump: expand if needed, expire, top the in-flight window up, then auto-pause/complete.
    Returns "stopped" (not running), "busy" (window full or quota exhausted), "handed" or the final status."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("phone_number", "template", "workspace", "audience").filter(
        pk=campaign_id).first()
    if campaign is None or campaign.status != S.RUNNING:
        return "stopped"
    if campaign.materialized_at is None:
        campaign_materialize(campaign=campaign, now=now)
    campaign_expire(campaign=campaign, now=now)
    room = _window(campaign) - _in_flight(campaign)
    handed = 0
    while room > 0:
        n = campaign_hand_out_batch(campaign_id=campaign_id, limit=min(room, settings.CAMPAIGN_BATCH_SIZE), now=now)
        if n == 0:
            break
        handed += n
        room -= n
    # Nothing handed out with a full window: messages are in flight, so the campaign cannot be drained yet; the
    # periodic check (auto-pause) still runs. Nothing handed out with room to spare may mean the end: check.
    if check or (handed == 0 and room > 0):
        status = campaign_check(campaign=campaign, now=now)
        if status != S.RUNNING:
            return status
    return "handed" if handed else "busy"


def campaign_feed(*, campaign_id: str, max_seconds: float, sleep=time.sleep) -> int:
    """A feeder that only hands out batches (no lease: batches are safe side by side), so a campaign on a fast
    number is fed by several workers. Stops when the campaign stops running or the time is up."""
    deadline = time.monotonic() + max_seconds
    handed = 0
    while time.monotonic() < deadline:
        campaign = Campaign.objects.select_related("phone_number").filter(pk=campaign_id).first()
        if campaign is None or campaign.status != S.RUNNING:
            break
        if campaign.materialized_at is None:
            sleep(settings.CAMPAIGN_PUMP_IDLE_SECONDS)  # the pump expands the audience first
            continue
        room = _window(campaign) - _in_flight(campaign)
        n = campaign_hand_out_batch(campaign_id=campaign_id, limit=min(room, settings.CAMPAIGN_BATCH_SIZE)) \
            if room > 0 else 0
        handed += n
        if n == 0:
            sleep(settings.CAMPAIGN_PUMP_IDLE_SECONDS)
    return handed


def campaign_claim_pump(*, campaign_id: str, now: datetime, lease_seconds: float) -> bool:
    """Compare-and-set lease: one pump per campaign across all workers; a dead worker's lease runs out."""
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=S.RUNNING)
        .filter(Q(pump_claimed_until__isnull=True) | Q(pump_claimed_until__lt=now))
        .update(pump_claimed_until=now + timedelta(seconds=lease_seconds))
    )


def _start_feeders(*, campaign_id: str, max_seconds: float) -> None:
    feeders = settings.CAMPAIGN_PUMP_FEEDERS
    if feeders <= 0 or max_seconds <= 0:
        return
    campaign = Campaign.objects.select_related("phone_number").filter(pk=campaign_id).first()
    # Only worth it when one worker cannot keep the in-flight window full (fast numbers).
    if campaign is None or _window(campaign) <= settings.CAMPAIGN_BATCH_SIZE:
        return
    from apps.campaigns import tasks

    for _ in range(feeders):
        tasks.campaign_feed.delay(campaign_id, max_seconds)


def campaign_pump(*, campaign_id: str, max_seconds: float | None = None, sleep=time.sleep) -> str:
    """Drive one campaign for up to `max_seconds` under a lease (the Celery task and the bench call this)."""
    max_seconds = settings.CAMPAIGN_PUMP_SECONDS if max_seconds is None else max_seconds
    lease = max_seconds + 30
    if not campaign_claim_pump(campaign_id=campaign_id, now=timezone.now(), lease_seconds=lease):
        return "claimed"
    started = time.monotonic()
    last_check = 0.0
    result = "busy"
    _start_feeders(campaign_id=campaign_id, max_seconds=max_seconds)
    try:
        while True:
            elapsed = time.monotonic() - started
            do_check = elapsed - last_check >= settings.CAMPAIGN_CHECK_SECONDS
            if do_check:
                last_check = elapsed
            result = campaign_step(campaign_id=campaign_id, check=do_check)
            if result not in ("busy", "handed") or elapsed >= max_seconds:
                return result
            if result == "busy":
                sleep(settings.CAMPAIGN_PUMP_IDLE_SECONDS)
    finally:
        Campaign.objects.filter(pk=campaign_id).update(pump_claimed_until=None)
