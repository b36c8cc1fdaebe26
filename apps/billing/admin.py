"""Wallets in the admin: read-only state, top-up and adjustment actions (through the services), the
ledger read-only (append-only)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm

from apps.billing import services
from apps.billing.models import LedgerEntry, RatePrice, Wallet
from apps.core.errors import ApplicationError


class WalletActionForm(ActionForm):
    amount = forms.DecimalField(required=False, max_digits=14, decimal_places=4)
    note = forms.CharField(required=False, max_length=500)


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ("workspace", "currency", "balance", "reserved", "credit_limit", "low_balance_threshold", "updated_at")
    readonly_fields = ("workspace", "currency", "balance", "reserved", "updated_at")
    fields = ("workspace", "currency", "balance", "reserved", "credit_limit", "low_balance_threshold", "updated_at")
    action_form = WalletActionForm
    actions = ["topup", "adjust"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.wallet_settings_update(workspace=obj.workspace, credit_limit=obj.credit_limit,
                                        low_balance_threshold=obj.low_balance_threshold)

    def _run(self, request, queryset, func, label):
        amount = request.POST.get("amount")
        note = request.POST.get("note", "")
        for wallet in queryset.select_related("workspace"):
            try:
                func(workspace=wallet.workspace, amount=amount, note=note, created_by=f"admin:{request.user.username}")
            except (ApplicationError, ArithmeticError) as exc:
                self.message_user(request, f"{wallet.workspace}: {getattr(exc, 'message', exc)}", messages.ERROR)
                return
        self.message_user(request, f"{label} {amount} for {queryset.count()} wallet(s).")

    @admin.action(description="Top up by the amount")
    def topup(self, request, queryset):
        self._run(request, queryset, services.wallet_topup, "Topped up")

    @admin.action(description="Adjust by the amount (signed; note required)")
    def adjust(self, request, queryset):
        self._run(request, queryset, services.wallet_adjust, "Adjusted")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ("id", "workspace", "kind", "amount", "balance_after", "reserved_after", "message_id",
                    "campaign_id", "created_at", "created_by")
    list_filter = ("kind",)
    search_fields = ("id", "message_id", "campaign_id", "workspace__slug")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RatePrice)
class RatePriceAdmin(admin.ModelAdmin):
    list_display = ("market", "category", "tier_from", "price", "currency", "effective_from")
    list_filter = ("category", "effective_from")
    search_fields = ("market",)
