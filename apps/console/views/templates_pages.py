"""Templates: list, the builder (live preview; Meta's rules checked as you type by the same validator the
API runs), submit, status and quality history, sync from Meta."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.console.access import attempt, console_view, page
from apps.core.errors import ValidationFailed
from apps.message_templates import selectors, services
from apps.message_templates.models import MessageTemplate
from apps.wabas import selectors as waba_selectors

# The kinds of button the builder offers (the validator decides what each needs).
BUTTON_KINDS = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP", "FLOW", "VOICE_CALL", "REQUEST_CONTACT_INFO")
LANGUAGES = ("en", "en_US", "en_GB", "pt_BR", "pt_PT", "es", "es_MX", "fr", "de", "it", "id", "hi", "ar")


def _wabas(request):
    tenant = request.tenant
    return waba_selectors.wabas_for(workspace=tenant.workspace, waba_id=tenant.waba_id)


@console_view(scope="templates:read")
def template_list(request):
    g = request.GET
    ok, qs = attempt(request, selectors.template_list, workspace=request.tenant.workspace,
                     status=g.get("status") or None, category=g.get("category") or None)
    if not ok:
        qs = MessageTemplate.objects.none()
    return page(request, "console/templates/list.html", templates=qs.order_by("name", "language")[:500],
                statuses=MessageTemplate.Status.values, categories=MessageTemplate.Category.values, f=g)


@require_POST
@console_view(scope="templates:write")
def template_sync(request):
    total = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    for waba in _wabas(request):
        ok, counts = attempt(request, services.template_sync, waba=waba)
        if ok:
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
    messages.success(request, _("Synced from Meta: %(created)s new, %(updated)s updated, %(deleted)s deleted.")
                     % total)
    return HttpResponseRedirect("/templates/")


def _payload(request) -> dict:
    try:
        data = json.loads(request.POST.get("payload") or request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(_("The builder sent something unreadable; reload the page."), field="payload") from None
    return data if isinstance(data, dict) else {}


@require_POST
@console_view(scope="templates:write")
def template_validate(request):
    """The builder asks as the user types: every rule Meta would apply, from the API's own validator."""
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"errors": [{"field": "", "message": "unreadable"}]}, status=400)
    _cleaned, errors = services.template_validate(data)
    return JsonResponse({"errors": errors})


@console_view(scope="templates:write")
def template_new(request):
    wabas = list(_wabas(request))
    initial = {}
    if request.method == "POST":
        waba = next((w for w in wabas if w.pk == request.POST.get("waba_id")), None)
        ok, data = attempt(request, _payload, request)
        if ok and waba is None:
            messages.error(request, _("Choose the WhatsApp Business Account."))
        elif ok:
            ok, template = attempt(request, services.template_create, workspace=request.tenant.workspace,
                                   waba=waba, data=data)
            if ok:
                messages.success(request, _("Submitted to Meta for review."))
                return HttpResponseRedirect(f"/templates/{template.pk}/")
        initial = data if isinstance(data, dict) else {}
    return page(request, "console/templates/builder.html", wabas=wabas, languages=LANGUAGES,
                categories=MessageTemplate.Category.values,
                button_types=BUTTON_KINDS,
                initial=initial, status=400 if request.method == "POST" else 200)


@console_view(scope="templates:read")
def template_detail(request, pk: str):
    template = get_object_or_404(selectors.template_list(workspace=request.tenant.workspace,
                                                        waba_id=request.tenant.waba_id), pk=pk)
    return page(request, "console/templates/detail.html", template=template,
                history=selectors.template_history(template=template).order_by("-created_at")[:100],
                components=json.dumps(template.components, indent=2, ensure_ascii=False))
