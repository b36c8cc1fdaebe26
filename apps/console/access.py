"""Who may do what in the console: the one place the browser pages check login, workspace and role.

A page declares the scope it needs (the API's scopes, granted to a role by apps.core.tenancy.ROLE_SCOPES) or
the lowest role (`agent` < `admin` < `owner`). Every page gets `request.tenant`; every write then goes
through the same service the API calls, so the console has no rule of its own."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie

from apps.core.errors import ApplicationError
from apps.core.models import Membership
from apps.core.selectors import memberships_for_user, tenant_for_session

ROLE_RANK = {Membership.Role.AGENT: 0, Membership.Role.ADMIN: 1, Membership.Role.OWNER: 2}


def role_at_least(role: str | None, wanted: str) -> bool:
    return role is not None and ROLE_RANK.get(role, -1) >= ROLE_RANK[wanted]


def may(tenant, *, scope: str | None = None, role: str | None = None) -> bool:
    if scope and not tenant.has_scope(scope):
        return False
    return not (role and not role_at_least(tenant.role, role))


def console_view(*, scope: str | None = None, role: str | None = None) -> Callable:
    """Login, a workspace the user belongs to, and the scope/role this page needs; else a plain refusal."""

    def wrap(view):
        @login_required
        @ensure_csrf_cookie
        @functools.wraps(view)
        def inner(request, *args, **kwargs):
            tenant = tenant_for_session(user=request.user, session=request.session)
            if tenant is None:
                return render(request, "inbox/no_workspace.html", status=403)
            request.tenant = tenant
            if not may(tenant, scope=scope, role=role):
                return render(request, "console/forbidden.html", page_context(request), status=403)
            return view(request, *args, **kwargs)

        return inner

    return wrap


def page_context(request, **extra) -> dict:
    """What base.html's top bar needs, plus the page's own values."""
    tenant = request.tenant
    workspace = tenant.workspace
    ctx = {
        "tenant": tenant, "workspace": workspace.live, "sandbox": workspace.is_sandbox,
        "memberships": memberships_for_user(user=request.user), "is_admin": request.user.is_superuser,
        "can_manage": role_at_least(tenant.role, Membership.Role.ADMIN),
    }
    ctx.update(extra)
    return ctx


def page(request, template_path: str, /, status: int = 200, **extra):
    return render(request, template_path, page_context(request, **extra), status=status)


def attempt(request, fn: Callable, *args, **kwargs):
    """Run a service; an ApplicationError becomes a message on the page (and the field it names)."""
    try:
        return True, fn(*args, **kwargs)
    except ApplicationError as exc:
        field = exc.details.get("field") if isinstance(exc.details, dict) else None
        text = f"{exc.message} ({field})" if field else exc.message
        messages.error(request, text)
        return False, exc
    except PermissionError:
        messages.error(request, _("You are not allowed to do this."))
        return False, None
