from django.contrib import admin

from apps.wabas.models import PhoneNumber, SocialAccount, Waba


class PhoneNumberInline(admin.TabularInline):
    model = PhoneNumber
    extra = 0
    fields = ("id", "meta_phone_number_id", "display_phone_number", "quality_rating", "messaging_tier",
              "throughput_mps")
    readonly_fields = ("id", "meta_phone_number_id")


@admin.register(Waba)
class WabaAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "meta_waba_id", "workspace", "is_simulated", "created_at")
    list_filter = ("is_simulated",)
    search_fields = ("id", "name", "meta_waba_id")
    exclude = ("access_token_encrypted",)  # never shown; set it with `manage.py connectwaba`
    readonly_fields = ("id", "workspace", "meta_waba_id", "is_simulated")
    inlines = [PhoneNumberInline]


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ("id", "display_phone_number", "meta_phone_number_id", "waba", "quality_rating",
                    "messaging_tier", "throughput_mps")
    list_filter = ("quality_rating", "messaging_tier")
    search_fields = ("id", "display_phone_number", "meta_phone_number_id")
    readonly_fields = ("id", "workspace", "waba", "meta_phone_number_id")


@admin.register(SocialAccount)
class SocialAccountAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "name", "page_id", "ig_user_id", "workspace", "waba", "is_simulated", "created_at")
    list_filter = ("channel", "is_simulated")
    search_fields = ("id", "name", "page_id", "ig_user_id")
    exclude = ("access_token_encrypted",)  # never shown; set it through POST /api/v1/social-accounts
    readonly_fields = ("id", "workspace", "channel", "page_id", "ig_user_id", "is_simulated")
