"""Campaign tasks: thin. The beat tick fires due schedules and makes sure every running campaign has a pump;
the pump task drives one campaign under a lease (the recipient rows are the queue, so a lost task only delays)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.campaigns import selectors, services


@shared_task(name="apps.campaigns.tasks.campaigns_tick")
def campaigns_tick() -> dict:
    now = timezone.now()
    started = services.campaigns_start_due(now=now)  # each start enqueues its own pump on commit
    resumed = services.campaigns_resume_funded_missed(now=now)  # each resume kicks its own pump on commit
    orphaned = [cid for cid in selectors.campaigns_running(now=now) if cid not in started and cid not in resumed]
    for campaign_id in orphaned:
        campaign_pump.delay(campaign_id)
    return {"started": started, "resumed": resumed, "pumped": orphaned}


@shared_task(name="apps.campaigns.tasks.campaign_pump")
def campaign_pump(campaign_id: str) -> str:
    return services.campaign_pump(campaign_id=campaign_id)


@shared_task(name="apps.campaigns.tasks.campaign_feed")
def campaign_feed(campaign_id: str, max_seconds: float) -> int:
    return services.campaign_feed(campaign_id=campaign_id, max_seconds=max_seconds)
