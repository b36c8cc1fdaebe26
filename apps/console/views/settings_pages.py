"""Settings: API keys, webhook subscriptions and their deliveries, and the team. Admins and owners only."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.console.access import attempt, console_view, page
from apps.core import selectors as core_selectors
from apps.core import services as core_services
from apps.core.events import public_event_types
from apps.core.models import API_SCOPES, Membership
from apps.wabas import selectors as waba_selectors
from apps.webhooks import selectors as webhook_selectors
from apps.webhooks.models import WebhookSubscription
from apps.webhooks.services.outbound import runner as webhook_runner
from apps.webhooks.services.outbound import subscriptions as webhook_services

ADMIN = Membership.Role.ADMIN


@console_view(role=ADMIN)
def settings_home(request):
    return HttpResponseRedirect("/settings/keys/")


# --- API keys ------------------------------------------------------------------------------------------


@console_view(role=ADMIN)
def keys(request):
    tenant = request.tenant
    live = tenant.workspace.live
    created = None
    if request.method == "POST":
        sandbox = request.POST.get("environment") == "sandbox"
        ok, result = attempt(request, core_services.api_key_create, workspace=live,
                             name=request.POST.get("name", "").strip(), sandbox=sandbox,
                             scopes=request.POST.getlist("scopes"), waba_id=request.POST.get("waba_id", ""),
                             created_by=request.user)
        if ok:
            created = {"key": result[0], "secret": result[1]}
    wabas = list(waba_selectors.wabas_for(workspace=live)) + list(waba_selectors.wabas_for(workspace=live.sandbox))
    return page(request, "console/settings/keys.html", section="keys", created=created,
                keys=core_selectors.api_keys_for(workspace=live), scopes=API_SCOPES, wabas=wabas,
                status=201 if created else (400 if request.method == "POST" else 200))


@require_POST
@console_view(role=ADMIN)
def key_revoke(request, pk: str):
    key = get_object_or_404(core_selectors.api_keys_for(workspace=request.tenant.workspace), pk=pk)
    core_services.api_key_revoke(api_key=key)
    messages.success(request, _("Key %(name)s revoked.") % {"name": key.name})
    return HttpResponseRedirect("/settings/keys/")


# --- webhooks ------------------------------------------------------------------------------------------


@console_view(scope="webhooks:manage")
def webhooks(request):
    workspace = request.tenant.workspace
    created = None
    if request.method == "POST":
        ok, result = attempt(request, webhook_services.subscription_create, workspace=workspace,
                             url=request.POST.get("url", "").strip(), events=request.POST.getlist("events"),
                             description=request.POST.get("description", "").strip())
        if ok:
            created = {"subscription": result[0], "secret": result[1]}
    return page(request, "console/settings/webhooks.html", section="webhooks", created=created,
                subscriptions=webhook_selectors.subscription_list(workspace=workspace),
                event_types=sorted(public_event_types()),
                status=201 if created else (400 if request.method == "POST" else 200))


def _subscription(request, pk: str) -> WebhookSubscription:
    return get_object_or_404(webhook_selectors.subscription_list(workspace=request.tenant.workspace), pk=pk)


@console_view(scope="webhooks:manage")
def webhook_detail(request, pk: str):
    sub = _subscription(request, pk)
    deliveries = webhook_selectors.delivery_list(workspace=request.tenant.workspace,
                                                 subscription=sub).order_by("-created_at")[:50]
    return page(request, "console/settings/webhook_detail.html", section="webhooks", sub=sub,
                deliveries=deliveries)


@require_POST
@console_view(scope="webhooks:manage")
def webhook_action(request, pk: str, action: str):
    sub = _subscription(request, pk)
    if action == "test":
        ok, _d = attempt(request, webhook_runner.subscription_send_test, subscription=sub)
        if ok:
            messages.success(request, _("A test event is on its way."))
    elif action in ("enable", "disable"):
        attempt(request, webhook_services.subscription_set_enabled, subscription=sub, enabled=action == "enable")
    elif action == "delete":
        ok, _d = attempt(request, webhook_services.subscription_delete, subscription=sub)
        if ok:
            return HttpResponseRedirect("/settings/webhooks/")
    else:
        raise Http404
    return HttpResponseRedirect(f"/settings/webhooks/{sub.pk}/")


@require_POST
@console_view(scope="webhooks:manage")
def delivery_redeliver(request, pk: str):
    delivery = get_object_or_404(
        webhook_selectors.delivery_list(workspace=request.tenant.workspace).select_related("subscription"), pk=pk)
    ok, _d = attempt(request, webhook_services.delivery_redeliver, delivery=delivery)
    if ok:
        messages.success(request, _("Queued for redelivery."))
    return HttpResponseRedirect(f"/settings/webhooks/{delivery.subscription_id}/")


# --- team ----------------------------------------------------------------------------------------------


@console_view(role=ADMIN)
def team(request):
    tenant = request.tenant
    if request.method == "POST":
        ok, result = attempt(request, core_services.member_invite, workspace=tenant.workspace,
                             email=request.POST.get("email", ""), role=request.POST.get("role", "agent"),
                             invited_by=request.user, link_base=request.build_absolute_uri("/").rstrip("/"))
        if ok:
            messages.success(request, _("%(email)s was added.") % {"email": result[0].user.email})
            return HttpResponseRedirect("/settings/team/")
    return page(request, "console/settings/team.html", section="team",
                members=core_selectors.workspace_members(workspace=tenant.workspace), roles=Membership.Role.choices,
                status=400 if request.method == "POST" else 200)


@require_POST
@console_view(role=ADMIN)
def team_member(request, pk: int):
    tenant = request.tenant
    membership = get_object_or_404(core_selectors.workspace_members(workspace=tenant.workspace), pk=pk)
    if request.POST.get("action") == "remove":
        ok, _r = attempt(request, core_services.member_remove, membership=membership, actor_role=tenant.role)
        if ok:
            messages.success(request, _("%(user)s was removed.") % {"user": membership.user.username})
    else:
        ok, _r = attempt(request, core_services.member_role_change, membership=membership,
                         role=request.POST.get("role", ""), actor_role=tenant.role)
        if ok:
            messages.success(request, _("Role changed."))
    return HttpResponseRedirect("/settings/team/")
