"""GET /api/v1/wabas, /api/v1/wabas/{id}, /api/v1/phone-numbers."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.core.api.docs import PAGE_PARAMETERS, api_doc, paginated
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


class PhoneNumberOut(serializers.Serializer):
    id = serializers.CharField()
    waba_id = serializers.CharField()
    meta_phone_number_id = serializers.CharField()
    display_phone_number = serializers.CharField()
    verified_name = serializers.CharField(allow_blank=True)
    quality_rating = serializers.ChoiceField(choices=PhoneNumber.Quality.values)
    messaging_tier = serializers.ChoiceField(choices=PhoneNumber.Tier.values)
    throughput_mps = serializers.IntegerField(help_text="Messages per second Meta allows this number.")
    created_at = serializers.DateTimeField()


class WabaOut(serializers.Serializer):
    id = serializers.CharField()
    meta_waba_id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    simulated = serializers.BooleanField(help_text="Served by the built-in simulator (sandbox).")
    marketing_messages_enabled = serializers.BooleanField(
        help_text="MARKETING templates go through Meta's Marketing Messages API (/marketing_messages).")
    business_id = serializers.CharField(allow_null=True, help_text="Meta business portfolio id; its numbers "
                                        "share the portfolio's messaging limit.")
    phone_numbers = PhoneNumberOut(many=True)
    created_at = serializers.DateTimeField()


# Reading the sender numbers is part of sending and reading messages; any key with messages:read may.
READ = {"GET": "messages:read"}


class WabaListView(ApiView):
    scopes = READ

    @api_doc(operation_id="wabas_list", summary="List WhatsApp Business Accounts",
             description="The WABAs the key may use (one when the key is bound to a WABA), with their numbers.",
             parameters=PAGE_PARAMETERS, responses={200: paginated(WabaOut)})
    def get(self, request):
        return self.paginated(self.scoped(Waba).prefetch_related("phone_numbers"), waba_out, newest_first=False)


class WabaPatchIn(serializers.Serializer):
    marketing_messages_enabled = serializers.BooleanField(
        required=False, help_text="Send MARKETING templates through Meta's Marketing Messages API.")
    business_id = serializers.RegexField(r"^\d{1,64}$", required=False, allow_blank=True,
                                         help_text="Meta business portfolio id (digits); blank clears it.")


class WabaDetailView(ApiView):
    scopes = {**READ, "PATCH": "templates:write"}


    @api_doc(operation_id="wabas_get", summary="Get a WhatsApp Business Account",
             description="One WABA with its phone numbers.", responses={200: WabaOut})
    def get(self, request, pk: str):
        return Response(waba_out(self.get_scoped(Waba.objects.prefetch_related("phone_numbers"), pk)))

    @api_doc(operation_id="wabas_update", summary="Update a WhatsApp Business Account",
             description="Switches Meta's Marketing Messages API on or off for this WABA's MARKETING templates "
             "(`marketing_messages_enabled`) and sets the Meta business portfolio it belongs to (`business_id`; "
             "the portfolio's numbers share one messaging limit). Needs the templates:write scope.",
             request=WabaPatchIn, responses={200: WabaOut}, errors=(422,))
    def patch(self, request, pk: str):
        waba = self.get_scoped(Waba.objects.prefetch_related("phone_numbers"), pk)
        data = WabaPatchIn(data=request.data if isinstance(request.data, dict) else {})
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

    @api_doc(operation_id="phone_numbers_list", summary="List sender phone numbers",
             description="Every sender number the key may use, with quality rating, messaging tier and "
             "throughput.", parameters=PAGE_PARAMETERS, responses={200: paginated(PhoneNumberOut)})
    def get(self, request):
        return self.paginated(self.scoped(PhoneNumber), phone_number_out, newest_first=False)
