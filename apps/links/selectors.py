"""Reads of tracked links; `workspace` always required."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, Sum

from apps.core.models import Workspace
from apps.links.models import TrackedLink


def link_get(*, workspace: Workspace, link_id: str) -> TrackedLink | None:
    return TrackedLink.objects.filter(workspace=workspace, pk=link_id).first()


@dataclass(frozen=True)
class ClickStats:
    clicks: int
    unique_clicks: int  # recipients (contacts) who clicked at least once


def campaign_click_stats(*, workspace: Workspace, campaign_id: str) -> ClickStats:
    return campaigns_click_stats(workspace_id=workspace.pk, campaign_ids=[campaign_id])[campaign_id]


def campaigns_click_stats(*, workspace_id: str, campaign_ids: list[str]) -> dict[str, ClickStats]:
    """Clicks and unique clicks of several campaigns in one grouped query (every id answered)."""
    rows = (TrackedLink.objects.filter(workspace_id=workspace_id, campaign_id__in=campaign_ids).values("campaign_id")
            .annotate(total=Sum("clicks"), unique=Count("contact_id", filter=Q(clicks__gt=0), distinct=True))
            .order_by())
    out = {r["campaign_id"]: ClickStats(clicks=r["total"] or 0, unique_clicks=r["unique"] or 0) for r in rows}
    return {cid: out.get(cid, ClickStats(0, 0)) for cid in campaign_ids}
