"""The Reports page: a server-rendered shell; the script reads the reports API with the session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from apps.billing.selectors import wallet_for
from apps.campaigns.models import Campaign
from apps.core.models import Membership
from apps.core.selectors import memberships_for_user, tenant_for_session
from apps.message_templates.models import MessageTemplate

REPORT_ROLES = (Membership.Role.ADMIN, Membership.Role.OWNER)


@login_required
@ensure_csrf_cookie
def reports_page(request):
    tenant = tenant_for_session(user=request.user, session=request.session)
    if tenant is None:
        return render(request, "inbox/no_workspace.html", status=403)
    workspace = tenant.workspace
    context = {"tenant": tenant, "workspace": workspace.live, "sandbox": workspace.is_sandbox,
               "memberships": memberships_for_user(user=request.user),
               "is_admin": tenant.role in REPORT_ROLES and request.user.is_staff,
               "can_report": tenant.role in REPORT_ROLES}
    if tenant.role not in REPORT_ROLES:
        return render(request, "reports/forbidden.html", context, status=403)
    today = datetime.now(UTC).date()
    wallet = wallet_for(workspace=workspace)
    names = {"templates": dict(MessageTemplate.objects.filter(workspace=workspace).order_by("-pk")
                               .values_list("pk", "name")[:1000]),
             "campaigns": dict(Campaign.objects.filter(workspace=workspace).order_by("-pk")
                               .values_list("pk", "name")[:1000])}
    context.update({"default_from": (today - timedelta(days=29)).isoformat(), "default_to": today.isoformat(),
                    "wallet": wallet, "names": names})
    return render(request, "reports/reports.html", context)
