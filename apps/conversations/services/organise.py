"""Writes that organise the inbox: labels (and labelling threads, one or many), teams, assignment to a team
or agent (with round-robin auto-assignment), bulk actions, saved views and agent presence. Each write appends
its event in the same transaction."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.conversations import events as ev
from apps.conversations.models import AgentPresence, Conversation, Label, SavedView, Team
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.models import Membership, User, Workspace
from apps.core.services import event_append_many

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
BULK_MAX = 500


# --- labels ------------------------------------------------------------------------------------------------


def _label_clean(name: str | None, color: str | None) -> tuple[str | None, str | None]:
    if name is not None:
        name = name.strip()
        if not name:
            raise ValidationFailed("A label needs a name.", field="name")
        if len(name) > 50:
            raise ValidationFailed("name is at most 50 characters.", field="name")
    if color is not None and not _COLOR.match(color):
        raise ValidationFailed("color is a #rrggbb hex colour.", field="color")
    return name, (color.lower() if color else color)


def label_create(*, workspace: Workspace, name: str, color: str = "#6941c6") -> Label:
    name, color = _label_clean(name, color)
    try:
        with transaction.atomic():
            label = Label.objects.create(workspace=workspace, name=name, color=color)
            event_append_many(workspace=workspace, events=[("label.changed", ev.label_changed(label=label,
                                                                                               change="created"))])
    except IntegrityError:
        raise Conflict(f"A label named {name!r} exists already.", details={"field": "name"})
    return label


def label_update(*, label: Label, name: str | None = None, color: str | None = None) -> Label:
    name, color = _label_clean(name, color)
    if name is not None:
        label.name = name
    if color is not None:
        label.color = color
    try:
        with transaction.atomic():
            label.save(update_fields=["name", "color"])
            event_append_many(workspace=label.workspace, events=[("label.changed", ev.label_changed(
                label=label, change="updated"))])
    except IntegrityError:
        raise Conflict(f"A label named {label.name!r} exists already.", details={"field": "name"})
    return label


def label_delete(*, label: Label) -> None:
    with transaction.atomic():
        event_append_many(workspace=label.workspace, events=[("label.changed", ev.label_changed(
            label=label, change="deleted"))])
        label.delete()


def _labels_of(workspace: Workspace, label_ids: list[str], *, field: str) -> list[Label]:
    ids = list(dict.fromkeys(label_ids))
    labels = list(Label.objects.filter(workspace=workspace, pk__in=ids))
    if len(labels) != len(ids):
        missing = sorted(set(ids) - {lb.pk for lb in labels})
        raise ValidationFailed(f"No such label: {missing[0]}.", field=field)
    return labels


def conversations_labels_change(*, workspace: Workspace, conversation_ids: list[str], add: list[str] = (),
                                remove: list[str] = (), actor: User | None = None) -> list[str]:
    """Add and remove labels on one or many conversations of the workspace; an event per conversation whose
    labels changed. Returns the ids that changed."""
    to_add = _labels_of(workspace, list(add), field="add")
    to_remove = _labels_of(workspace, list(remove), field="remove")
    if set(lb.pk for lb in to_add) & set(lb.pk for lb in to_remove):
        raise ValidationFailed("A label cannot be added and removed at once.", field="remove")
    through = Conversation.labels.through
    changed: list[str] = []
    with transaction.atomic():
        conversations = list(Conversation.objects.select_for_update().filter(workspace=workspace,
                                                                             pk__in=conversation_ids)
                             .order_by("pk"))
        current: dict[str, set[str]] = {c.pk: set() for c in conversations}
        for cid, lid in through.objects.filter(conversation_id__in=current).values_list("conversation_id",
                                                                                         "label_id"):
            current[cid].add(lid)
        new_rows, events = [], []
        removals = Q(pk__in=[])
        for conversation in conversations:
            before = current[conversation.pk]
            added = [lb.pk for lb in to_add if lb.pk not in before]
            removed = [lb.pk for lb in to_remove if lb.pk in before]
            if not added and not removed:
                continue
            new_rows += [through(conversation_id=conversation.pk, label_id=lid) for lid in added]
            if removed:
                removals |= Q(conversation_id=conversation.pk, label_id__in=removed)
            after = (before | set(added)) - set(removed)
            events.append(("conversation.labels_changed", ev.conversation_labels_changed(
                conversation_id=conversation.pk, label_ids=list(after), added=added, removed=removed,
                by_user_id=actor.pk if actor else None)))
            changed.append(conversation.pk)
        if new_rows:
            through.objects.bulk_create(new_rows, ignore_conflicts=True)
        if to_remove:
            through.objects.filter(removals).delete()
        if changed:
            Conversation.objects.filter(pk__in=changed).update(updated_at=timezone.now())
            event_append_many(workspace=workspace, events=events)
    return changed


# --- teams -------------------------------------------------------------------------------------------------


def _members(workspace: Workspace, member_ids: list[str]) -> list[str]:
    ids = list(dict.fromkeys(member_ids))
    found = set(Membership.objects.filter(workspace=workspace.live, user_id__in=ids).values_list("user_id",
                                                                                                flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed(f"No such agent in this workspace: {missing[0]}.", field="member_ids")
    return ids


def team_save(*, workspace: Workspace, team: Team | None = None, name: str | None = None,
              member_ids: list[str] | None = None, auto_assign: bool | None = None,
              max_open_per_agent: int | None = None, inbound_default: bool | None = None) -> Team:
    """Create (team=None) or change a team."""
    creating = team is None
    if creating:
        if not (name or "").strip():
            raise ValidationFailed("A team needs a name.", field="name")
        team = Team(workspace=workspace)
    if name is not None:
        if not name.strip() or len(name.strip()) > 100:
            raise ValidationFailed("name is 1 to 100 characters.", field="name")
        team.name = name.strip()
    if auto_assign is not None:
        team.auto_assign = auto_assign
    if max_open_per_agent is not None:
        if max_open_per_agent < 0:
            raise ValidationFailed("max_open_per_agent is 0 (no cap) or more.", field="max_open_per_agent")
        team.max_open_per_agent = max_open_per_agent
    ids = _members(workspace, member_ids) if member_ids is not None else None
    try:
        with transaction.atomic():
            if inbound_default:
                Team.objects.filter(workspace=workspace, inbound_default=True).exclude(pk=team.pk).update(
                    inbound_default=False)
            if inbound_default is not None:
                team.inbound_default = inbound_default
            team.save()
            if ids is not None:
                team.members.set(ids)
            members = list(team.members.values_list("pk", flat=True))
            _routing_forget(workspace.pk)
            transaction.on_commit(lambda: _routing_forget(workspace.pk))
            event_append_many(workspace=workspace, events=[("team.changed", ev.team_changed(
                team=team, change="created" if creating else "updated", member_ids=members))])
    except IntegrityError:
        raise Conflict(f"A team named {team.name!r} exists already.", details={"field": "name"})
    return team


def team_delete(*, team: Team) -> None:
    _routing_forget(team.workspace_id)
    with transaction.atomic():
        event_append_many(workspace=team.workspace, events=[("team.changed", ev.team_changed(
            team=team, change="deleted", member_ids=[]))])
        team.delete()


# --- assignment --------------------------------------------------------------------------------------------


def online_since(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.INBOX_PRESENCE_TIMEOUT_SECONDS)


def _pick_agent(*, team: Team, workspace: Workspace, now: datetime) -> str | None:
    """The online member with the fewest open conversations (under the cap), longest since their last
    assignment first. The caller holds the team's row lock, so two pickers never pick on the same counts."""
    members = list(team.members.values_list("pk", flat=True))
    if not members:
        return None
    online = dict(AgentPresence.objects.filter(
        workspace=workspace.live, user_id__in=members, status=AgentPresence.Status.ONLINE,
        last_seen_at__gte=online_since(now)).values_list("user_id", "last_assigned_at"))
    if not online:
        return None
    load = dict(Conversation.objects.filter(workspace=workspace, assigned_user_id__in=list(online))
                .exclude(state=Conversation.State.RESOLVED).values("assigned_user_id")
                .annotate(n=Count("pk")).values_list("assigned_user_id", "n"))
    cap = team.max_open_per_agent
    candidates = [u for u in online if not cap or load.get(u, 0) < cap]
    if not candidates:
        return None
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    return min(candidates, key=lambda u: (load.get(u, 0), online[u] or epoch, u))


# Whether a workspace routes at all (has an inbound team or an auto-assigning one), cached per process for a few
# seconds: the receive road asks on every customer message, and most workspaces have no teams.
ROUTING_CACHE_SECONDS = 5.0
_routing: dict[str, tuple[float, bool]] = {}
_routing_lock = threading.Lock()


def workspace_routes(workspace_id: str) -> bool:
    now = time.monotonic()
    hit = _routing.get(workspace_id)
    if hit is not None and now - hit[0] < ROUTING_CACHE_SECONDS:
        return hit[1]
    routes = Team.objects.filter(workspace_id=workspace_id).filter(Q(inbound_default=True) | Q(auto_assign=True)) \
        .exists()
    with _routing_lock:
        _routing[workspace_id] = (now, routes)
    return routes


def _routing_forget(workspace_id: str) -> None:
    with _routing_lock:
        _routing.pop(workspace_id, None)


def conversation_route_inbound(*, conversation: Conversation, workspace: Workspace,
                               now: datetime | None = None) -> list[tuple[str, dict]]:
    """A customer wrote on an unassigned conversation: it joins the workspace's inbound team (if it has no
    team), and that team's auto-assignment picks an agent. Runs in the receive road's transaction; returns
    the events to append with the inbound."""
    if conversation.assigned_user_id is not None or not workspace_routes(workspace.pk):
        return []
    now = now or timezone.now()
    team = None
    if conversation.team_id is not None:
        team = Team.objects.select_for_update().filter(pk=conversation.team_id, auto_assign=True).first()
    else:
        team = Team.objects.select_for_update().filter(workspace=workspace, inbound_default=True).first()
    if team is None:
        return []
    previous_team = conversation.team_id
    agent = _pick_agent(team=team, workspace=workspace, now=now) if team.auto_assign else None
    if agent is None and previous_team == team.pk:
        return []
    conversation.team_id = team.pk
    conversation.assigned_user_id = agent
    Conversation.objects.filter(pk=conversation.pk).update(team_id=team.pk, assigned_user_id=agent, updated_at=now)
    if agent is not None:
        AgentPresence.objects.filter(workspace=workspace.live, user_id=agent).update(last_assigned_at=now)
    return [("conversation.assigned", ev.conversation_assigned(
        conversation=conversation, previous_assigned_user_id=None, by_user_id=None, previous_team_id=previous_team,
        reason="auto_assignment" if agent else None))]


def conversation_team_set(*, conversation: Conversation, team_id: str | None, actor: User | None) -> Conversation:
    """Move a conversation to a team (None: no team). The agent stays unless they are not in the new team."""
    team = None
    if team_id is not None:
        team = Team.objects.filter(workspace=conversation.workspace, pk=team_id).first()
        if team is None:
            raise ValidationFailed("No such team in this workspace.", field="team_id")
    with transaction.atomic():
        current = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if current.team_id == team_id:
            return current
        previous_team, previous_agent = current.team_id, current.assigned_user_id
        current.team_id = team_id
        if team is not None and previous_agent and not team.members.filter(pk=previous_agent).exists():
            current.assigned_user_id = None
        current.save(update_fields=["team", "assigned_user", "updated_at"])
        event_append_many(workspace=current.workspace, events=[("conversation.assigned", ev.conversation_assigned(
            conversation=current, previous_assigned_user_id=previous_agent, previous_team_id=previous_team,
            by_user_id=actor.pk if actor else None))])
    return current


# --- bulk --------------------------------------------------------------------------------------------------


def conversations_bulk(*, workspace: Workspace, actor: User | None, conversation_ids: list[str], action: str,
                       assigned_user_id: str | None = None, team_id: str | None = None,
                       label_ids: list[str] = ()) -> dict:
    """One action on many conversations (at most BULK_MAX): assign (agent and/or team), label, unlabel,
    resolve, reopen. Every conversation must be the workspace's; the whole request fails or none."""
    from apps.conversations.services.inbox import conversation_update

    ids = list(dict.fromkeys(conversation_ids))
    if not ids:
        raise ValidationFailed("Pick at least one conversation.", field="conversation_ids")
    if len(ids) > BULK_MAX:
        raise ValidationFailed(f"At most {BULK_MAX} conversations at once.", field="conversation_ids")
    found = {c.pk: c for c in Conversation.objects.filter(workspace=workspace, pk__in=ids)
             .select_related("workspace")}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"No such conversation: {missing[0]}.")
    if action in ("label", "unlabel"):
        if not label_ids:
            raise ValidationFailed("Give label_ids.", field="label_ids")
        changed = conversations_labels_change(workspace=workspace, conversation_ids=ids, actor=actor,
                                              add=label_ids if action == "label" else [],
                                              remove=label_ids if action == "unlabel" else [])
        return {"updated": len(changed)}
    if action not in ("assign", "resolve", "reopen"):
        raise ValidationFailed(f"Unknown action {action!r}.", field="action")
    updated = 0
    with transaction.atomic():
        for pk in ids:
            conversation = found[pk]
            if action == "assign":
                if team_id is not None:
                    conversation = conversation_team_set(conversation=conversation, team_id=team_id or None,
                                                         actor=actor)
                if assigned_user_id is not None:
                    conversation_update(conversation=conversation, actor=actor,
                                        assigned_user_id=assigned_user_id or None)
            else:
                state = Conversation.State.RESOLVED if action == "resolve" else Conversation.State.OPEN
                conversation_update(conversation=conversation, actor=actor, state=state)
            updated += 1
    return {"updated": updated}


# --- saved views -------------------------------------------------------------------------------------------

VIEW_FILTERS = ("state", "assignee", "channel_kind", "label", "team_id", "sort", "needs_reply", "q", "unread")


def saved_view_create(*, workspace: Workspace, user: User, name: str, filters: dict) -> SavedView:
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValidationFailed("name is 1 to 80 characters.", field="name")
    unknown = sorted(set(filters) - set(VIEW_FILTERS))
    if unknown:
        raise ValidationFailed(f"Unknown filter {unknown[0]!r}.", field="filters")
    clean = {k: str(v)[:200] for k, v in filters.items() if v not in (None, "")}
    try:
        with transaction.atomic():
            return SavedView.objects.create(workspace=workspace, user=user, name=name, filters=clean)
    except IntegrityError:
        raise Conflict(f"You have a view named {name!r} already.", details={"field": "name"})


def saved_view_delete(*, view: SavedView) -> None:
    view.delete()


# --- presence ----------------------------------------------------------------------------------------------


def presence_set(*, workspace: Workspace, user: User, status: str | None = None,
                 now: datetime | None = None) -> AgentPresence:
    """A heartbeat (status None: keep the chosen one; the inbox's socket sends one on connect and every
    ping) or a choice of online/away. A choice that changes the status appends agent.presence_changed; a
    heartbeat never does (presence is soft state: it would flood the event log every reconnect)."""
    now = now or timezone.now()
    if status is not None and status not in AgentPresence.Status.values:
        raise ValidationFailed("status is online or away.", field="status")
    live = workspace.live
    with transaction.atomic():
        row, created = AgentPresence.objects.select_for_update().get_or_create(
            workspace=live, user=user, defaults={"status": status or AgentPresence.Status.ONLINE, "last_seen_at": now})
        was_visible = None if created else (row.status if row.last_seen_at and row.last_seen_at >= online_since(now)
                                             else "offline")
        if not created:
            row.last_seen_at = now
            if status is not None:
                row.status = status
            row.save(update_fields=["status", "last_seen_at"])
        if status is not None and was_visible != row.status:
            event_append_many(workspace=workspace, events=[("agent.presence_changed", ev.agent_presence_changed(
                user_id=user.pk, status=row.status))])
    return row
