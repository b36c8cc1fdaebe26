"""Campaigns: list with progress, the wizard (template → audience → variables → sender → review), the draft's
preflight with start/schedule, the live page (progress, chart, pause/resume/cancel, why it is held) and
audiences with their live size. Every write is the service the API calls."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.campaigns import selectors
from apps.campaigns.models import Audience, Campaign
from apps.campaigns.services import audiences as audience_services
from apps.campaigns.services import lifecycle
from apps.campaigns.services.preflight import campaign_preflight
from apps.console.access import attempt, console_view, page
from apps.contacts.models import Contact
from apps.conversations.selectors import conversations as conv_selectors
from apps.core.errors import ValidationFailed
from apps.core.selectors import tenant_queryset
from apps.message_templates import selectors as template_selectors
from apps.wabas import selectors as waba_selectors

CONTACT_FIELDS = ("name", "first_name", "phone", "email", "external_id")
ACTIONS = {"start": lifecycle.campaign_start, "pause": lifecycle.campaign_pause,
           "resume": lifecycle.campaign_resume, "cancel": lifecycle.campaign_cancel}


def _campaigns(request):
    return tenant_queryset(Campaign, tenant=request.tenant).select_related("audience", "phone_number")


def _progress(stats: dict) -> int:
    total = stats.get("total") or 0
    done = total - stats.get("pending", 0) - stats.get("deferred_tier_limit", 0) - stats.get("queued", 0)
    return int(done * 100 / total) if total else 0


@console_view(scope="campaigns:read")
def campaign_list(request):
    items = list(_campaigns(request).order_by("-created_at")[:100])
    stats = selectors.campaigns_stats(campaign_ids=[c.pk for c in items])
    rows = [{"c": c, "stats": stats[c.pk], "progress": _progress(stats[c.pk])} for c in items]
    return page(request, "console/campaigns/list.html", rows=rows)


def _filter_from(post) -> dict:
    spec: dict = {}
    tags = [t.strip() for t in (post.get("f_tags") or "").split(",") if t.strip()]
    if tags:
        spec["tags_any"] = tags
    if post.get("f_opted_in") in ("true", "false"):
        spec["opted_in"] = post.get("f_opted_in") == "true"
    key, _sep, value = (post.get("f_field") or "").partition("=")
    if key.strip():
        spec["custom_fields"] = {key.strip(): value.strip()}
    return spec


def _custom_keys(workspace) -> list[str]:
    keys: set[str] = set()
    for fields in Contact.objects.filter(workspace=workspace).exclude(custom_fields={}).values_list(
            "custom_fields", flat=True)[:500]:
        keys.update(fields or {})
    return sorted(keys)[:50]


def _variables_from(post, keys: list[str]) -> dict:
    out = {}
    for key in keys:
        field = post.get(f"var_{key}_field", "")
        default = (post.get(f"var_{key}_default") or "").replace("{", "").replace("}", "").replace("|", "/")
        if field == "__text__":
            out[key] = default
        elif field:
            out[key] = f"{{{{contact.{field}|{default}}}}}" if default else f"{{{{contact.{field}}}}}"
        else:
            raise ValidationFailed(_("Choose a value for variable %(key)s.") % {"key": key}, field=f"variables.{key}")
    return out


def _create_from_wizard(request, approved: dict):
    tenant, post = request.tenant, request.POST
    template = approved.get(post.get("template_id", ""))
    if template is None:
        raise ValidationFailed(_("Choose an approved template."), field="template")
    keys = conv_selectors.template_variables(template)
    variables = _variables_from(post, keys)
    with transaction.atomic():
        mode = post.get("audience_mode", "saved")
        if mode == "filter":
            audience = audience_services.audience_create(workspace=tenant.workspace,
                                                         name=post.get("audience_name") or post.get("name", ""),
                                                         filter=_filter_from(post))
        elif mode == "csv":
            upload = request.FILES.get("audience_file")
            if upload is None:
                raise ValidationFailed(_("Choose a CSV file of phone numbers."), field="audience_file")
            audience = audience_services.audience_create_from_csv(
                workspace=tenant.workspace, name=post.get("audience_name") or post.get("name", ""),
                data=upload.read())
        else:
            audience = get_object_or_404(tenant_queryset(Audience, tenant=tenant), pk=post.get("audience_id", ""))
        return lifecycle.campaign_create(tenant=tenant, data={
            "name": post.get("name", ""), "template": {"name": template.name, "language": template.language},
            "audience_id": audience.pk, "phone_number_id": post.get("phone_number_id") or None,
            "variables": variables or None})


@console_view(scope="campaigns:write")
def campaign_new(request):
    tenant = request.tenant
    approved = {t.pk: t for t in template_selectors.template_list(workspace=tenant.workspace, status="APPROVED",
                                                                  waba_id=tenant.waba_id).order_by("name")}
    if request.method == "POST":
        ok, campaign = attempt(request, _create_from_wizard, request, approved)
        if ok:
            return HttpResponseRedirect(f"/campaigns/{campaign.pk}/")
    audiences = list(tenant_queryset(Audience, tenant=tenant).order_by("-created_at")[:100])
    for a in audiences:
        a.size = selectors.audience_size(workspace=tenant.workspace, audience=a)
    templates = [{"id": t.pk, "name": t.name, "language": t.language, "category": t.category,
                  "variables": conv_selectors.template_variables(t),
                  "body": next((c.get("text", "") for c in t.components if c.get("type") == "BODY"), "")}
                 for t in approved.values()]
    return page(request, "console/campaigns/wizard.html", templates=templates, audiences=audiences,
                numbers=waba_selectors.phone_numbers_for(workspace=tenant.workspace, waba_id=tenant.waba_id),
                fields=[*CONTACT_FIELDS, *(f"custom_fields.{k}" for k in _custom_keys(tenant.workspace))],
                form=request.POST, status=400 if request.method == "POST" else 200)


@console_view(scope="campaigns:read")
def audience_size(request):
    """The live size of a filter as the wizard or the audience form is filled in."""
    probe = Audience(workspace=request.tenant.workspace, kind=Audience.Kind.FILTER, filter=_filter_from(request.GET))
    return JsonResponse({"size": selectors.audience_size(workspace=request.tenant.workspace, audience=probe)})


def _hold_explanations(campaign: Campaign, stats: dict) -> list[str]:
    notes = []
    if stats.get("deferred_tier_limit"):
        limit = selectors.tier_limit(campaign.phone_number.messaging_tier)
        notes.append(_("%(n)s people are waiting: this number may start conversations with %(limit)s new people "
                       "per 24 hours (its messaging tier). They are sent as the quota frees up, unless the campaign's "
                       "validity ends first.") % {"n": stats["deferred_tier_limit"], "limit": limit})
    if campaign.status == Campaign.Status.PAUSED:
        reason = campaign.pause_reason or ""
        if reason == Campaign.PAUSE_INSUFFICIENT_BALANCE:  # the hand-out's code, never prose to search
            notes.append(_("Paused because the wallet cannot pay for the next messages. Add funds to the wallet, "
                           "then press Resume: the campaign carries on where it stopped and nobody gets a message "
                           "twice."))
        elif campaign.auto_paused:
            notes.append(_("Paused automatically: %(reason)s Check the failures, then press Resume.")
                         % {"reason": reason})
        else:
            notes.append(_("Paused: %(reason)s") % {"reason": reason})
    if campaign.status == Campaign.Status.SCHEDULED and campaign.schedule_at:
        notes.append(_("Starts by itself at %(when)s (UTC).") % {"when": campaign.schedule_at.strftime("%Y-%m-%d %H:%M")})
    return notes


@console_view(scope="campaigns:read")
def campaign_detail(request, pk: str):
    campaign = get_object_or_404(_campaigns(request), pk=pk)
    stats = selectors.campaign_stats(campaign=campaign)
    preflight = None
    if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        ok, preflight = attempt(request, campaign_preflight, campaign=campaign)
        preflight = preflight if ok else None
    return page(request, "console/campaigns/detail.html", campaign=campaign, stats=stats, preflight=preflight,
                progress=_progress(stats), holds=_hold_explanations(campaign, stats))


@console_view(scope="campaigns:read")
def campaign_stats(request, pk: str):
    campaign = get_object_or_404(_campaigns(request), pk=pk)
    stats = selectors.campaign_stats(campaign=campaign)
    series = selectors.campaign_series(campaign=campaign)
    return JsonResponse({"status": campaign.status, "stats": stats, "progress": _progress(stats),
                         "holds": _hold_explanations(campaign, stats),
                         "series": {**series, "started_at": series["started_at"].isoformat()}})


@require_POST
@console_view(scope="campaigns:write")
def campaign_action(request, pk: str, action: str):
    campaign = get_object_or_404(_campaigns(request), pk=pk)
    if action == "schedule":
        when = request.POST.get("schedule_at", "")
        ok, _c = attempt(request, lifecycle.campaign_schedule, campaign=campaign,
                         schedule_at=f"{when}:00Z" if len(when) == 16 else when)
    elif action in ACTIONS:
        ok, _c = attempt(request, ACTIONS[action], campaign=campaign)
    else:
        raise Http404
    if ok:
        messages.success(request, {
            "schedule": _("Scheduled."), "start": _("Started: messages are going out."), "pause": _("Paused."),
            "resume": _("Resumed."), "cancel": _("Canceled: nobody else gets a message."),
        }[action])
    return HttpResponseRedirect(f"/campaigns/{campaign.pk}/")


@console_view(scope="campaigns:read")
def audience_list(request):
    tenant = request.tenant
    if request.method == "POST":
        if not tenant.has_scope("campaigns:write"):
            return page(request, "console/forbidden.html", status=403)
        upload = request.FILES.get("audience_file")
        if upload is not None:
            ok, _a = attempt(request, audience_services.audience_create_from_csv, workspace=tenant.workspace,
                             name=request.POST.get("audience_name", ""), data=upload.read())
        else:
            ok, _a = attempt(request, audience_services.audience_create, workspace=tenant.workspace,
                             name=request.POST.get("audience_name", ""), filter=_filter_from(request.POST))
        if ok:
            messages.success(request, _("Audience saved."))
            return HttpResponseRedirect("/campaigns/audiences/")
    audiences = list(tenant_queryset(Audience, tenant=tenant).order_by("-created_at")[:200])
    for a in audiences:
        a.size = selectors.audience_size(workspace=tenant.workspace, audience=a)
    return page(request, "console/campaigns/audiences.html", audiences=audiences, now=timezone.now())
