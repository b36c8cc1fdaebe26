"""Settings → Channels (Embedded Signup, the manual form, numbers with quality, tier and throughput) and
Settings → Auto-replies (rules, business hours, canned responses). Admins and owners; the API's services."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from apps.console.access import attempt, console_view, page
from apps.conversations.models import AutoReplyRule
from apps.conversations.selectors import conversations as conv_selectors
from apps.conversations.services import autoreplies, inbox
from apps.core.models import Membership
from apps.wabas import selectors as waba_selectors
from apps.wabas import services as waba_services

ADMIN = Membership.Role.ADMIN
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = {"mon": pgettext_lazy("weekday", "Mon"), "tue": pgettext_lazy("weekday", "Tue"),
             "wed": pgettext_lazy("weekday", "Wed"), "thu": pgettext_lazy("weekday", "Thu"),
             "fri": pgettext_lazy("weekday", "Fri"), "sat": pgettext_lazy("weekday", "Sat"),
             "sun": pgettext_lazy("weekday", "Sun")}
# what the rule kinds and keyword matches read as (the model's choices carry no translatable labels)
RULE_KINDS = [(AutoReplyRule.Kind.WELCOME, gettext_lazy("Welcome: a customer's first message")),
              (AutoReplyRule.Kind.OUT_OF_OFFICE, gettext_lazy("Out of office: outside business hours")),
              (AutoReplyRule.Kind.KEYWORD, gettext_lazy("Keyword: the message matches a word"))]
RULE_KIND_NAMES = {AutoReplyRule.Kind.WELCOME: gettext_lazy("Welcome"),
                   AutoReplyRule.Kind.OUT_OF_OFFICE: gettext_lazy("Out of office"),
                   AutoReplyRule.Kind.KEYWORD: gettext_lazy("Keyword")}
RULE_MATCHES = [(AutoReplyRule.Match.CONTAINS, gettext_lazy("Contains the keyword")),
                (AutoReplyRule.Match.EXACT, gettext_lazy("Is exactly the keyword"))]


@console_view(role=ADMIN)
def channels(request):
    workspace = request.tenant.workspace
    numbers = waba_selectors.phone_numbers_for(workspace=workspace).select_related("waba").order_by("created_at")
    return page(request, "console/settings/channels.html", section="channels", numbers=numbers,
                meta_app_id=settings.META_APP_ID, meta_config_id=settings.META_EMBEDDED_SIGNUP_CONFIG_ID,
                graph_version=settings.META_GRAPH_VERSION)


@require_POST
@console_view(role=ADMIN)
def channels_signup(request):
    post = request.POST
    ok, numbers = attempt(request, waba_services.waba_embedded_signup, workspace=request.tenant.workspace,
                          code=post.get("code", ""), pin=post.get("pin", ""),
                          waba_id_hint=post.get("waba_id", "").strip(),
                          phone_number_id_hint=post.get("phone_number_id", "").strip())
    if ok:
        messages.success(request, _("Connected: %(numbers)s.") % {
            "numbers": ", ".join(n.display_phone_number for n in numbers)})
    return HttpResponseRedirect("/settings/channels/")


@require_POST
@console_view(role=ADMIN)
def channels_manual(request):
    post = request.POST
    workspace = request.tenant.workspace
    if workspace.is_sandbox:
        messages.error(request, _("Sandbox numbers are simulated; switch to Live to connect a WhatsApp account."))
        return HttpResponseRedirect("/settings/channels/")
    ok, number = attempt(request, waba_services.waba_connect, workspace=workspace,
                         meta_waba_id=post.get("waba_id", "").strip(),
                         phone_number_id=post.get("phone_number_id", "").strip(),
                         display_phone_number=post.get("display_phone_number", ""),
                         access_token=post.get("access_token", ""), name=post.get("name", "").strip())
    if ok:
        messages.success(request, _("Connected %(number)s.") % {"number": number.display_phone_number})
    return HttpResponseRedirect("/settings/channels/")


@require_POST
@console_view(role=ADMIN)
def number_throughput(request, pk: str):
    number = get_object_or_404(waba_selectors.phone_numbers_for(workspace=request.tenant.workspace), pk=pk)
    try:
        mps = int(request.POST.get("mps", ""))
    except ValueError:
        mps = 0
    ok, _n = attempt(request, waba_services.phone_number_set_throughput, phone_number=number, mps=mps)
    if ok:
        messages.success(request, _("Throughput saved."))
    return HttpResponseRedirect("/settings/channels/")


# --- auto-replies, business hours, canned responses ----------------------------------------------------


@console_view(role=ADMIN)
def automation(request):
    workspace = request.tenant.workspace
    config = conv_selectors.auto_reply_settings_get(workspace=workspace)
    hours = (config.business_hours if config else {}) or {}
    days = [{"key": d, "name": DAY_NAMES[d], "start": (hours.get(d) or [["", ""]])[0][0],
             "end": (hours.get(d) or [["", ""]])[0][1]} for d in DAYS]
    rules = list(conv_selectors.auto_reply_rules(workspace=workspace))
    for rule in rules:
        rule.kind_label = RULE_KIND_NAMES.get(rule.kind, rule.kind)
    return page(request, "console/settings/automation.html", section="automation", config=config, days=days,
                rules=rules,
                canned=conv_selectors.canned_responses(workspace=workspace),
                kinds=RULE_KINDS, matches=RULE_MATCHES)


def _hours_from(post) -> dict:
    hours = {}
    for day in DAYS:
        start, end = post.get(f"{day}_start", "").strip(), post.get(f"{day}_end", "").strip()
        if start or end:
            hours[day] = [[start, end]]
    return hours


@require_POST
@console_view(role=ADMIN)
def automation_action(request, action: str):
    workspace, post = request.tenant.workspace, request.POST
    if action == "hours":
        try:
            cooldown = int(post.get("cooldown_minutes") or 0) * 60
        except ValueError:
            cooldown = -1
        ok, _r = attempt(request, autoreplies.auto_reply_settings_set, workspace=workspace,
                         cooldown_seconds=max(cooldown, 0), timezone=post.get("timezone", "UTC").strip() or "UTC",
                         business_hours=_hours_from(post),
                         holidays=[d.strip() for d in post.get("holidays", "").split(",") if d.strip()])
    elif action == "rule":
        ok, _r = attempt(request, autoreplies.auto_reply_rule_create, workspace=workspace, kind=post.get("kind", ""),
                         name=post.get("name", "").strip(), reply_text=post.get("reply_text", ""),
                         keywords=[k.strip() for k in post.get("keywords", "").split(",") if k.strip()],
                         match=post.get("match", "contains"), language=post.get("language", ""))
    elif action == "canned":
        ok, _r = attempt(request, inbox.canned_response_create, workspace=workspace,
                         shortcut=post.get("shortcut", ""), body=post.get("body", ""), title=post.get("title", ""),
                         created_by=request.user)
    else:
        raise Http404
    if ok:
        messages.success(request, _("Saved."))
    return HttpResponseRedirect("/settings/automation/")


@require_POST
@console_view(role=ADMIN)
def automation_item(request, kind: str, pk: str):
    workspace = request.tenant.workspace
    if kind == "rule":
        rule = get_object_or_404(conv_selectors.auto_reply_rules(workspace=workspace), pk=pk)
        if request.POST.get("action") == "delete":
            autoreplies.auto_reply_rule_delete(rule=rule)
        else:
            attempt(request, autoreplies.auto_reply_rule_update, rule=rule, enabled=not rule.enabled)
    elif kind == "canned":
        item = get_object_or_404(conv_selectors.canned_responses(workspace=workspace), pk=pk)
        inbox.canned_response_delete(item=item)
    else:
        raise Http404
    return HttpResponseRedirect("/settings/automation/")


