from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils.html import format_html

from apps.core import services
from apps.core.models import API_SCOPES, ApiKey, AuditLog, Event, Membership, User, Workspace

admin.site.site_header = "Reach admin"
admin.site.site_title = "Reach admin"
admin.site.index_title = "Workspaces, keys, messaging"


def _platform_staff_only(request) -> bool:
    """The admin spans every workspace, so only platform staff (superusers) may open it. A workspace's
    owners, admins and agents use the console (/settings/, /contacts/, …), which is scoped to their
    workspaces; a staff flag alone no longer opens the admin, so no one sees another workspace's rows."""
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = _platform_staff_only


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _admin_audit(request, action: str, obj=None, *, model=None, details: dict | None = None) -> None:
    model = model or type(obj)
    if isinstance(obj, Workspace):
        workspace = obj
    else:
        workspace = getattr(obj, "workspace", None) if obj is not None else None
        workspace = workspace if isinstance(workspace, Workspace) else None
    services.audit_record(
        action=f"{action} {model._meta.label}", workspace=workspace,
        actor_user=request.user if getattr(request.user, "pk", None) else None,
        target_type=model._meta.model_name, target_id=str(obj.pk) if obj is not None else "",
        ip_address=request.META.get("REMOTE_ADDR"), request_id=getattr(request, "request_id", ""),
        details=details,
    )


def _install_admin_audit() -> None:
    """Every admin add, change, delete and action, on every app's ModelAdmin, leaves an audit row (the API
    does the same in its base view). Installed once on ModelAdmin itself so apps cannot forget it."""
    model_admin = admin.ModelAdmin
    if getattr(model_admin, "_reach_audited", False):
        return
    log_addition, log_change, log_deletions = (
        model_admin.log_addition, model_admin.log_change, model_admin.log_deletions)
    response_action = model_admin.response_action

    def audited_addition(self, request, obj, message):
        result = log_addition(self, request, obj, message)
        _admin_audit(request, "admin.add", obj)
        return result

    def audited_change(self, request, obj, message):
        result = log_change(self, request, obj, message)
        _admin_audit(request, "admin.change", obj)
        return result

    def audited_deletions(self, request, queryset):
        for obj in queryset:
            _admin_audit(request, "admin.delete", obj)
        return log_deletions(self, request, queryset)

    def audited_action(self, request, queryset):
        selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
        name = request.POST.get("action", "")
        response = response_action(self, request, queryset)
        if name and selected and name != "delete_selected":  # deletions: one row per object above
            _admin_audit(request, f"admin.action:{name}", model=self.model,
                         details={"selected": selected[:500], "count": len(selected)})
        return response

    model_admin.log_addition = audited_addition
    model_admin.log_change = audited_change
    model_admin.log_deletions = audited_deletions
    model_admin.response_action = audited_action
    model_admin._reach_audited = True


_install_admin_audit()


class AuditedAdminMixin:
    """Kept for compatibility: auditing now happens for every ModelAdmin (see _install_admin_audit)."""


@admin.register(User)
class ReachUserAdmin(AuditedAdminMixin, UserAdmin):
    list_display = ("username", "email", "display_name", "is_staff", "last_login")
    fieldsets = UserAdmin.fieldsets + (("Reach", {"fields": ("display_name",)}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


class WorkspaceForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ("name", "slug", "plan", "settings")


@admin.register(Workspace)
class WorkspaceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = WorkspaceForm
    list_display = ("__str__", "slug", "is_sandbox", "plan", "event_sequence", "created_at")
    list_filter = ("is_sandbox", "plan")
    search_fields = ("name", "slug")
    readonly_fields = ("id", "is_sandbox", "sandbox_of", "event_sequence", "created_at")
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sandbox_of")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.workspace_create(name=obj.name, slug=obj.slug, plan=obj.plan, owner=request.user)
        obj.pk = created.pk
        obj._state.adding = False
        obj.refresh_from_db()


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in API_SCOPES], initial=list(API_SCOPES), widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ("workspace", "name", "is_sandbox", "scopes", "waba_id")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].queryset = Workspace.objects.filter(is_sandbox=False)
        self.fields["is_sandbox"].label = "Sandbox key (ak_test_)"
        self.fields["is_sandbox"].help_text = "Acts on the workspace's sandbox twin: simulated numbers, no real sends."
        self.fields["waba_id"].label = "Bind to WABA"
        self.fields["waba_id"].help_text = "Optional waba_… id: the key then sees only that WABA's numbers and traffic."
        self.fields["workspace"].help_text = "The secret is shown once, right after you save."


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "status", "workspace", "is_sandbox", "waba_id", "last_used_at", "created_at")
    list_filter = ("is_sandbox", "revoked_at")
    search_fields = ("name", "prefix", "workspace__slug")
    actions = ["revoke_keys"]
    readonly_fields = ("id", "workspace", "name", "is_sandbox", "prefix", "scopes", "waba_id", "created_by",
                       "created_at", "last_used_at", "revoked_at")

    @admin.display(description="Status", ordering="revoked_at")
    def status(self, obj):
        return f"revoked {obj.revoked_at:%Y-%m-%d %H:%M}" if obj.revoked_at else "active"

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj else ("workspace", "name", "is_sandbox", "scopes", "waba_id")

    def save_model(self, request, obj, form, change):
        if change:
            return
        key, secret = services.api_key_create(
            workspace=form.cleaned_data["workspace"], name=form.cleaned_data["name"],
            sandbox=form.cleaned_data["is_sandbox"], scopes=form.cleaned_data["scopes"],
            waba_id=form.cleaned_data.get("waba_id") or "", created_by=request.user,
        )
        obj.pk = key.pk
        obj._state.adding = False
        obj.refresh_from_db()
        services.audit_record(action="admin.create_api_key", workspace=key.workspace, actor_user=request.user,
                              target_type="apikey", target_id=key.pk, ip_address=request.META.get("REMOTE_ADDR"),
                              request_id=getattr(request, "request_id", ""))
        kind = "sandbox (ak_test_)" if key.is_sandbox else "live (ak_live_)"
        self.message_user(
            request,
            format_html(
                "New {} API key “{}” created. Copy the secret now: it is shown only this once, and Reach keeps "
                "only its hash.<br><code style='font-size:1.15em;user-select:all'>{}</code><br>"
                "Use it as <code>Authorization: Bearer &lt;key&gt;</code>. Lost it? Revoke this key and create another.",
                kind, key.name, secret,
            ),
            level=messages.WARNING,
        )

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=key)
            services.audit_record(action="admin.revoke_api_key", workspace=key.workspace, actor_user=request.user,
                                  target_type="apikey", target_id=key.pk, ip_address=request.META.get("REMOTE_ADDR"),
                                  request_id=getattr(request, "request_id", ""))
        self.message_user(request, "Revoked.")


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "action", "workspace", "actor_user", "api_key", "target_type", "target_id",
                    "status_code", "ip_address", "request_id")
    list_filter = ("action", "status_code")
    search_fields = ("action", "target_id", "request_id")
    date_hierarchy = "created_at"
    list_select_related = ("workspace", "actor_user", "api_key")


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("workspace", "sequence", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("id", "type")
    list_select_related = ("workspace",)
