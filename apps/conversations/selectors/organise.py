"""Reads that organise the inbox: labels, teams, saved views, who is online."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import QuerySet
from django.utils import timezone

from apps.conversations.models import AgentPresence, Label, SavedView, Team
from apps.core.models import User, Workspace


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def labels(*, workspace: Workspace) -> QuerySet[Label]:
    return Label.objects.filter(workspace=workspace).order_by("name")


def label_to_dict(label: Label) -> dict:
    return {"id": label.pk, "name": label.name, "color": label.color, "created_at": _iso(label.created_at)}


def teams(*, workspace: Workspace) -> QuerySet[Team]:
    return Team.objects.filter(workspace=workspace).prefetch_related("members").order_by("name")


def team_to_dict(team: Team) -> dict:
    return {"id": team.pk, "name": team.name, "member_ids": sorted(m.pk for m in team.members.all()),
            "auto_assign": team.auto_assign, "max_open_per_agent": team.max_open_per_agent,
            "inbound_default": team.inbound_default, "created_at": _iso(team.created_at)}


def saved_views(*, workspace: Workspace, user: User) -> QuerySet[SavedView]:
    return SavedView.objects.filter(workspace=workspace, user=user).order_by("name")


def saved_view_to_dict(view: SavedView) -> dict:
    return {"id": view.pk, "name": view.name, "filters": view.filters, "created_at": _iso(view.created_at)}


def presence_list(*, workspace: Workspace, now: datetime | None = None) -> list[dict]:
    """Every agent of the workspace with online / away / offline (no heartbeat within the timeout)."""
    from apps.conversations.selectors.conversations import workspace_agents
    from apps.conversations.services.organise import online_since

    now = now or timezone.now()
    rows = {p.user_id: p for p in AgentPresence.objects.filter(workspace=workspace.live)}
    out = []
    for agent in workspace_agents(workspace=workspace):
        row = rows.get(agent["id"])
        status = "offline"
        if row is not None and row.last_seen_at and row.last_seen_at >= online_since(now):
            status = row.status
        out.append({"user_id": agent["id"], "name": agent["name"], "status": status,
                    "last_seen_at": _iso(row.last_seen_at) if row else None})
    return out
