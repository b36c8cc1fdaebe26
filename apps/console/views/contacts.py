"""Contacts: list with search and filters, the contact page (edit, consent, conversations), CSV import with
live progress, export. Every write is the service the API calls."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.console.access import attempt, console_view, page
from apps.contacts import imports, selectors, services
from apps.contacts.models import ConsentRecord, Contact, ContactImport
from apps.conversations.models import Conversation
from apps.core.selectors import tenant_queryset

PAGE_SIZE = 50


def _filtered(request):
    g = request.GET
    field_key, _sep, field_value = (g.get("field") or "").partition("=")
    return selectors.contact_list(workspace=request.tenant.workspace, search=g.get("q") or None,
                                  tag=g.get("tag") or None, opted_in=g.get("opted_in") or None,
                                  custom_field=(field_key.strip(), field_value.strip()) if field_key else None)


@console_view(scope="contacts:read")
def contact_list(request):
    ok, qs = attempt(request, _filtered, request)
    if not ok:
        qs = Contact.objects.none()
    paginator = Paginator(qs.order_by("-created_at", "-pk").prefetch_related("tag_rows"), PAGE_SIZE)
    page_obj = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return page(request, "console/contacts/list.html", page_obj=page_obj, query=query.urlencode(), f=request.GET)


@console_view(scope="contacts:read")
def contact_export(request):
    ok, qs = attempt(request, _filtered, request)
    if not ok:
        return HttpResponseRedirect("/contacts/")
    rows = qs.order_by("created_at", "pk").prefetch_related("tag_rows")

    class Echo:
        def write(self, value):
            return value

    def stream():
        writer = csv.writer(Echo())
        keys: list[str] = []
        contacts = list(rows.iterator(chunk_size=2000)) if rows.count() <= 20000 else None
        if contacts is not None:
            keys = sorted({k for c in contacts for k in (c.custom_fields or {})})
        yield writer.writerow(["phone", "name", "email", "tags", "external_id", "opted_in", *keys])
        for c in contacts if contacts is not None else rows.iterator(chunk_size=2000):
            tags = ";".join(sorted(t.name for t in c.tag_rows.all()))
            yield writer.writerow([c.phone or "", c.name, c.email, tags, c.external_id,
                                   "true" if c.opted_in else "false",
                                   *[(c.custom_fields or {}).get(k, "") for k in keys]])

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
    return response


def _contact(request, pk: str) -> Contact:
    return get_object_or_404(tenant_queryset(Contact, tenant=request.tenant), pk=pk)


@console_view(scope="contacts:read")
def contact_detail(request, pk: str):
    contact = _contact(request, pk)
    if request.method == "POST":
        if not request.tenant.has_scope("contacts:write"):
            return page(request, "console/forbidden.html", status=403)
        keys = request.POST.getlist("cf_key")
        values = request.POST.getlist("cf_value")
        custom = {k.strip(): v for k, v in zip(keys, values, strict=False) if k.strip()}
        data = {"name": request.POST.get("name", ""), "email": request.POST.get("email", ""),
                "tags": [t.strip() for t in request.POST.get("tags", "").split(",") if t.strip()],
                "custom_fields": custom}
        ok, _r = attempt(request, services.contact_update, contact=contact, data=data)
        if ok:
            messages.success(request, _("Saved."))
            return HttpResponseRedirect(f"/contacts/{contact.pk}/")
        contact.refresh_from_db()
    conversations = (tenant_queryset(Conversation, tenant=request.tenant).filter(contact=contact)
                     .select_related("assigned_user").order_by("-created_at")[:20])
    return page(request, "console/contacts/detail.html", contact=contact,
                tags=", ".join(selectors.contact_tags(contact=contact)),
                consents=selectors.consent_history(contact=contact).select_related("user")[:50],
                conversations=conversations, status=400 if request.method == "POST" else 200)


@require_POST
@console_view(scope="contacts:write")
def contact_consent(request, pk: str):
    contact = _contact(request, pk)
    status = request.POST.get("status", "")
    ok, _r = attempt(request, services.consent_record, contact=contact, status=status,
                     source=ConsentRecord.Source.ADMIN,
                     note=request.POST.get("note", "").strip()[:1000], user=request.user)
    if ok:
        messages.success(request, _("Opted in.") if status == "opt_in" else _("Opted out."))
    return HttpResponseRedirect(f"/contacts/{contact.pk}/")


@console_view(scope="contacts:write")
def contact_import(request):
    workspace = request.tenant.workspace
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, _("Choose a CSV file."))
        else:
            record = imports.contact_import_start(workspace=workspace, upload=upload, filename=upload.name,
                                                  user=request.user)
            return HttpResponseRedirect(f"/contacts/imports/{record.pk}/")
    recent = ContactImport.objects.filter(workspace=workspace).order_by("-created_at")[:10]
    return page(request, "console/contacts/import.html", recent=recent)


@console_view(scope="contacts:read")
def contact_import_progress(request, pk: str):
    record = selectors.contact_import_get(workspace=request.tenant.workspace, import_id=pk)
    if record is None:
        return page(request, "console/not_found.html", status=404)
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({
            "status": record.status, "progress_percent": record.progress_percent, "rows": record.rows_seen,
            "created": record.created_count, "updated": record.updated_count, "rejected": record.rejected_count,
            "rejected_rows": record.rejected_rows[:200], "error": record.error or None})
    return page(request, "console/contacts/import_progress.html", record=record)
