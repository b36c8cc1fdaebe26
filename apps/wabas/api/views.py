"""GET /api/v1/wabas, /api/v1/wabas/{id}, /api/v1/phone-numbers."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.wabas import services
from apps.wabas.models import PhoneNumber, Waba


def _ts(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def phone_number_out(number: PhoneNumber) -> dict:
    return {
        "id": number.pk, "waba_id": number.waba_id, "meta_phone_number_id": number.meta_phone_number_id,
        "display_phone_number": number.display_phone_number, "verified_name": number.verified_name,
        "quality_rating": number.quality_rating, "messaging_tier": number.messaging_tier,
        "throughput_mps": number.throughput_mps, "created_at": _ts(number.created_at),
    }


def waba_out(waba: Waba) -> dict:
    return {
        "id": waba.pk, "meta_waba_id": waba.meta_waba_id, "name": waba.name, "simulated": waba.is_simulated,
        "marketing_messages_enabled": waba.marketing_messages_enabled, "business_id": waba.business_id or None,
        "phone_numbers": [phone_number_out(n) for n in waba.phone_numbers.all()],
        "created_at": _ts(waba.created_at),
    }


# Reading the sender numbers is part of sending and reading messages; any key with messages:read may.
READ = {"GET": "messages:read"}


class WabaListView(ApiView):
    scopes = READ

    def get(self, request):
        return self.paginated(self.scoped(Waba).prefetch_related("phone_numbers"), waba_out, newest_first=False)


class WabaDetailView(ApiView):
    scopes = {**READ, "PATCH": "templates:write"}

    class PatchIn(serializers.Serializer):
        marketing_messages_enabled = serializers.BooleanField(required=False)
        business_id = serializers.RegexField(r"^\d{1,64}$", required=False, allow_blank=True)

    def get(self, request, pk: str):
        return Response(waba_out(self.get_scoped(Waba.objects.prefetch_related("phone_numbers"), pk)))

    def patch(self, request, pk: str):
        """Switch Meta's Marketing Messages API on or off for this WABA's MARKETING templates."""
        waba = self.get_scoped(Waba.objects.prefetch_related("phone_numbers"), pk)
        data = self.PatchIn(data=request.data if isinstance(request.data, dict) else {})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "marketing_messages_enabled" in values:
            waba = services.waba_marketing_messages_set(waba=waba, enabled=values["marketing_messages_enabled"])
        if "business_id" in values:
            waba = services.waba_business_set(waba=waba, business_id=values["business_id"])
        self.audit_target = ("waba", waba.pk)
        return Response(waba_out(waba))


class PhoneNumberListView(ApiView):
    scopes = READ

    def get(self, request):
        return self.paginated(self.scoped(PhoneNumber), phone_number_out, newest_first=False)
