"""The inbox page: server-rendered shell plus the first state the script starts from."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from apps.conversations.channels import inbox_channels
from apps.conversations.selectors import conversations as sel
from apps.conversations.selectors import organise as org
from apps.conversations.services.media import KIND_BY_MIME, media_limits
from apps.core.selectors import memberships_for_user, tenant_for_session


@login_required
@ensure_csrf_cookie
def inbox_page(request):
    tenant = tenant_for_session(user=request.user, session=request.session)
    if tenant is None:
        return render(request, "inbox/no_workspace.html", status=403)
    workspace = tenant.workspace
    # Read the sequence before the state: events after it are replayed on connect (applying twice is harmless).
    sequence = sel.inbox_current_sequence(workspace=workspace)
    params = {"state": "open"}
    items, next_cursor = sel.conversations_list(tenant=tenant, params=params)
    is_admin = request.user.is_superuser  # the admin spans every workspace: platform staff only
    bootstrap = {
        "me": sel.user_brief(request.user),
        "role": tenant.role,
        "workspace": {"id": workspace.live.pk, "name": workspace.live.name, "sandbox": workspace.is_sandbox},
        "sequence": sequence,
        "conversations": {"data": [sel.conversation_to_dict(c) for c in items], "next_cursor": next_cursor},
        "filters": params,
        "agents": sel.workspace_agents(workspace=workspace),
        "canned": [sel.canned_response_to_dict(c) for c in sel.canned_responses(workspace=workspace)[:500]],
        "labels": [org.label_to_dict(lb) for lb in org.labels(workspace=workspace)],
        "teams": [org.team_to_dict(t) for t in org.teams(workspace=workspace)],
        "views": [org.saved_view_to_dict(v) for v in org.saved_views(workspace=workspace, user=request.user)],
        "presence": org.presence_list(workspace=workspace),
        "media": {"limits": media_limits(), "kinds": KIND_BY_MIME},
        "window_hours": settings.CUSTOMER_SERVICE_WINDOW_HOURS,
        "channels": inbox_channels(),
        "heartbeat_seconds": settings.INBOX_HEARTBEAT_SECONDS,
    }
    return render(request, "inbox/inbox.html", {
        "tenant": tenant, "workspace": workspace.live, "sandbox": workspace.is_sandbox, "is_admin": is_admin,
        "memberships": memberships_for_user(user=request.user), "bootstrap": bootstrap,
        "channels": bootstrap["channels"],
    })
