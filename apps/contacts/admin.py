"""Admin: contacts (tags, consent history read-only), the consent ledger (read-only) and CSV imports with
an upload page and a progress bar (the import runs in a Celery task; the page polls its row)."""

from django import forms
from django.contrib import admin
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.contacts.imports import contact_import_start
from apps.contacts.models import ConsentRecord, Contact, ContactImport, ContactTag
from apps.core.models import Workspace


class ContactTagInline(admin.TabularInline):
    model = ContactTag
    extra = 0
    fields = ("name",)


class ConsentRecordInline(admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    fields = ("created_at", "status", "source", "note", "inbound_message_id", "api_key_id", "user")
    readonly_fields = fields
    ordering = ("-created_at",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("__str__", "phone", "opted_in", "workspace", "created_at")
    list_filter = ("opted_in",)
    search_fields = ("phone", "name", "email", "external_id")
    readonly_fields = ("id", "opted_in", "consent_updated_at", "last_inbound_at", "created_at", "updated_at")
    inlines = [ContactTagInline, ConsentRecordInline]

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for instance in instances:
            if isinstance(instance, ContactTag):
                instance.workspace_id = form.instance.workspace_id
            instance.save()
        formset.save_m2m()

    def delete_model(self, request, obj):
        from apps.contacts.services import contact_delete

        contact_delete(contact=obj)

    def delete_queryset(self, request, queryset):
        from apps.contacts.services import contact_delete

        for contact in queryset:
            contact_delete(contact=contact)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    """The ledger is append-only: viewable, never editable or deletable here."""

    list_display = ("created_at", "contact", "status", "source", "workspace")
    list_filter = ("status", "source")
    search_fields = ("contact__phone", "contact__name", "inbound_message_id")
    readonly_fields = [f.name for f in ConsentRecord._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ImportForm(forms.Form):
    workspace = forms.ModelChoiceField(queryset=Workspace.objects.order_by("name", "is_sandbox"))
    file = forms.FileField(help_text="CSV, UTF-8: phone,name,email,tags,external_id,… (other columns become "
                                     "custom fields; tags separated by ; or |).")


@admin.register(ContactImport)
class ContactImportAdmin(admin.ModelAdmin):
    list_display = ("created_at", "filename", "workspace", "status", "rows_seen", "created_count", "updated_count",
                    "rejected_count")
    list_filter = ("status",)
    readonly_fields = [f.name for f in ContactImport._meta.fields]
    change_form_template = "admin/contacts/contactimport/progress.html"

    def has_add_permission(self, request):
        return True

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        own = [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="contacts_contactimport_upload"),
            path("<str:pk>/progress/", self.admin_site.admin_view(self.progress_view),
                 name="contacts_contactimport_progress"),
        ]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:contacts_contactimport_upload")

    def upload_view(self, request):
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            record = contact_import_start(workspace=form.cleaned_data["workspace"], upload=request.FILES["file"],
                                          filename=request.FILES["file"].name, user=request.user)
            return redirect(reverse("admin:contacts_contactimport_change", args=[record.pk]))
        context = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                   "title": "Import contacts from CSV"}
        return TemplateResponse(request, "admin/contacts/contactimport/upload.html", context)

    def progress_view(self, request, pk):
        record = get_object_or_404(ContactImport, pk=pk)
        return JsonResponse({
            "status": record.status, "percent": record.progress_percent, "rows": record.rows_seen,
            "created": record.created_count, "updated": record.updated_count, "rejected": record.rejected_count,
            "rejected_rows": record.rejected_rows[:200] if record.status == ContactImport.Status.DONE else [],
            "error": record.error,
        })
