"""GET /api/v1/wabas, /api/v1/wabas/{id}, /api/v1/phone-numbers; GET/PUT/DELETE /api/v1/channels/email."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.core.api.docs import PAGE_PARAMETERS, api_doc, paginated
from apps.core.errors import NotFound
from apps.wabas import selectors, services
from apps.wabas.models import EmailChannel, PhoneNumber, Waba


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


# --- the email channel -------------------------------------------------------------------------------------


def email_channel_out(channel: EmailChannel) -> dict:
    return {
        "id": channel.pk, "phone_number_id": channel.phone_number_id, "from_address": channel.from_address,
        "from_name": channel.from_name, "smtp_host": channel.smtp_host or None, "smtp_port": channel.smtp_port,
        "smtp_username": channel.smtp_username, "smtp_password_set": bool(channel.smtp_password_encrypted),
        "smtp_security": channel.smtp_security, "inbound_address": channel.inbound_address,
        "inbound_domain": channel.inbound_domain, "inbound_webhook_path": f"/webhooks/email/{channel.inbound_token}",
        "created_at": _ts(channel.created_at), "updated_at": _ts(channel.updated_at),
    }


class EmailChannelIn(serializers.Serializer):
    from_address = serializers.EmailField(help_text="The address mail is written from.")
    from_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    phone_number_id = serializers.CharField(
        required=False, help_text="The number whose queue and WABA carry the channel's mail (our pn_ id or "
        "Meta's); may be omitted when the key sees one number.")
    smtp_host = serializers.CharField(required=False, allow_blank=True, max_length=255,
                                      help_text="Blank: the server's EMAIL_HOST settings.")
    smtp_port = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=65535)
    smtp_username = serializers.CharField(required=False, allow_blank=True, max_length=255)
    smtp_password = serializers.CharField(required=False, allow_blank=True, write_only=True,
                                          help_text="Write-only, stored encrypted; omitted keeps the stored one.")
    smtp_security = serializers.ChoiceField(choices=EmailChannel.Security.values, required=False)
    inbound_address = serializers.EmailField(required=False, allow_null=True,
                                             help_text="Customers write here (the SMTP listener accepts it); "
                                             "also the Reply-To and the envelope sender that bounces return to.")
    inbound_domain = serializers.CharField(required=False, allow_null=True, max_length=253,
                                           help_text="Or accept mail for any address at this domain.")


class EmailChannelOut(serializers.Serializer):
    id = serializers.CharField()
    phone_number_id = serializers.CharField()
    from_address = serializers.EmailField()
    from_name = serializers.CharField(allow_blank=True)
    smtp_host = serializers.CharField(allow_null=True)
    smtp_port = serializers.IntegerField(allow_null=True)
    smtp_username = serializers.CharField(allow_blank=True)
    smtp_password_set = serializers.BooleanField()
    smtp_security = serializers.ChoiceField(choices=EmailChannel.Security.values)
    inbound_address = serializers.EmailField(allow_null=True)
    inbound_domain = serializers.CharField(allow_null=True)
    inbound_webhook_path = serializers.CharField(
        help_text="Where a provider posts inbound mail (raw RFC 822, or JSON); the path is a secret.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EmailChannelView(ApiView):
    scopes = {**READ, "PUT": "templates:write", "DELETE": "templates:write"}

    @api_doc(operation_id="email_channel_get", summary="Get the email channel",
             description="The workspace's email channel: who mail is from, the SMTP server it goes through "
             "(the password is never shown) and where customers' mail comes in.",
             responses={200: EmailChannelOut})
    def get(self, request):
        channel = selectors.email_channel_for(workspace=self.tenant.workspace, waba_id=self.tenant.waba_id)
        if channel is None:
            raise NotFound("This workspace has no email channel.")
        return Response(email_channel_out(channel))

    @api_doc(operation_id="email_channel_set", summary="Configure the email channel",
             description="Creates or replaces the workspace's email channel. Messages with `channel` `email` "
             "then go out through its SMTP server; customers' mail to `inbound_address` (or `inbound_domain`) "
             "comes in through the SMTP listener or the inbound webhook. Needs the templates:write scope; the "
             "sandbox has no email channel.", request=EmailChannelIn, responses={200: EmailChannelOut},
             errors=(409,))
    def put(self, request):
        channel = services.email_channel_set(workspace=self.tenant.workspace, data=request.data,
                                             waba_id=self.tenant.waba_id)
        self.audit_target = ("email_channel", channel.pk)
        return Response(email_channel_out(channel))

    @api_doc(operation_id="email_channel_delete", summary="Remove the email channel",
             description="Stops email: queued mail fails as EMAIL_CHANNEL_MISSING, inbound mail is refused.",
             responses={204: None})
    def delete(self, request):
        services.email_channel_delete(workspace=self.tenant.workspace, waba_id=self.tenant.waba_id)
        return Response(status=204)
