"""Sandbox-only operations (API.md "Operational"): simulate a customer's inbound message, and age a
contact's customer service window.

Live keys get 403 PERMISSION_DENIED (not 404): the route exists for every partner, and the answer
tells them to use their test key. Scopes: simulating an inbound message is part of testing a send
flow, so it takes `messages:send`; ageing a window changes a contact, so it takes `contacts:write`.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers
from rest_framework.response import Response

from apps.contacts.models import Contact
from apps.contacts.services import normalize_bsuid, normalize_phone
from apps.conversations.api.schemas_inbox import SandboxInboundOut, SandboxWindowOut
from apps.conversations.services import receiving
from apps.core.api.base import ApiView
from apps.core.api.docs import api_doc
from apps.core.errors import PermissionDeniedError, ValidationFailed
from apps.wabas import selectors as waba_selectors

# Every inbound type Meta delivers (META.md §3.4); each is given as {"type": t, t: {...}} like Meta's.
INBOUND_TYPES = ("text", "image", "video", "audio", "document", "sticker", "location", "contacts", "reaction",
                 "button", "interactive", "order", "system", "unsupported")
SANDBOX_ONLY = "This endpoint is for sandbox keys only: use your ak_test_… key."


def _iso(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


class _SandboxView(ApiView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not self.tenant.is_sandbox:
            raise PermissionDeniedError(SANDBOX_ONLY)


class InboundDoc(serializers.Serializer):
    """A customer's message as Meta delivers it: `type` and the object of that type."""

    from_ = serializers.CharField(max_length=40, help_text="The customer's E.164 number.")
    type = serializers.ChoiceField(choices=INBOUND_TYPES, required=False)
    text = serializers.DictField(required=False, help_text='{"body": "…"} for type text.')
    name = serializers.CharField(required=False, allow_blank=True, max_length=255, help_text="Profile name.")
    phone_number_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    context = serializers.DictField(required=False, help_text="Meta's context (a reply to a message).")
    channel = serializers.ChoiceField(choices=["whatsapp", "messenger", "instagram"], required=False,
                                      help_text="messenger / instagram: a message to the sandbox Page / Instagram "
                                      "account; `from` is then the customer's id (digits).")
    account_id = serializers.CharField(required=False, max_length=64, help_text="Messenger / Instagram: which "
                                       "sandbox account (sac_…), when there are several.")
    quick_reply = serializers.DictField(required=False, help_text='Messenger / Instagram: {"payload", "title"}.')

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class SandboxInboundView(_SandboxView):
    scopes = {"POST": "messages:send"}

    class InboundInput(serializers.Serializer):
        type = serializers.ChoiceField(choices=INBOUND_TYPES, required=False)
        name = serializers.CharField(required=False, allow_blank=True, max_length=255)
        phone_number_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
        context = serializers.DictField(required=False)
        # API.md Identity: a customer known by a business-scoped user id, with or without a phone.
        from_user_id = serializers.CharField(required=False, max_length=160)
        parent_user_id = serializers.CharField(required=False, max_length=160)
        username = serializers.CharField(required=False, max_length=64)
        # A click-to-WhatsApp ad entry (Meta's referral object, META.md §3.4).
        referral = serializers.DictField(required=False)

    class SocialInboundInput(serializers.Serializer):
        channel = serializers.ChoiceField(choices=["messenger", "instagram"])
        account_id = serializers.CharField(required=False, max_length=64)
        from_ = serializers.RegexField(r"^[0-9]{1,64}$", required=False)
        text = serializers.DictField(required=False)
        quick_reply = serializers.DictField(required=False)

        def get_fields(self):
            fields = super().get_fields()
            fields["from"] = fields.pop("from_")
            return fields

    @api_doc(operation_id="sandbox_inbound", summary="Simulate a customer's message (sandbox)",
             description="Test keys only (a live key gets 403 PERMISSION_DENIED): the simulator delivers a "
             "customer message to your sandbox number through the same inbound road as live traffic — it opens the "
             "24-hour window, fires auto-replies and `message.inbound`. Any inbound type of Meta's may be given as "
             "`{\"type\": t, t: {…}}`. With `channel` messenger or instagram it is a message to your sandbox Page / "
             "Instagram account instead (`from`: the customer's id, a new one when absent; `text` or `quick_reply`). "
             "Answers 202 with the Meta-style message id.",
             request=InboundDoc, responses={202: SandboxInboundOut}, examples=[
                 OpenApiExample("text", request_only=True, value={
                     "from": "+15551234567", "type": "text", "text": {"body": "Hi"}, "name": "Ada"}),
                 OpenApiExample("messenger", request_only=True, value={
                     "channel": "messenger", "from": "6200000000000001", "text": {"body": "Is it in stock?"}}),
                 OpenApiExample("button reply", request_only=True, value={
                     "from": "+15551234567", "type": "interactive", "interactive": {
                         "type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}})])
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        if data.get("channel") not in (None, "", "whatsapp"):
            return self._social(data)
        serializer = self.InboundInput(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        bsuid = normalize_bsuid(values["from_user_id"], field="from_user_id") if values.get("from_user_id") else None
        from_phone = None
        if data.get("from") not in (None, "") or bsuid is None:
            from_phone = normalize_phone(data.get("from") if isinstance(data.get("from"), str) else "", field="from")
        message_type = values.get("type") or self._infer_type(data)
        obj = data.get(message_type)
        if message_type == "contacts":
            if not isinstance(obj, list) or not obj:
                raise ValidationFailed("contacts must be a non-empty list.", field="contacts")
        elif not isinstance(obj, dict):
            raise ValidationFailed(f"{message_type} must be an object.", field=message_type)
        if message_type == "text":
            body = obj.get("body")
            if not isinstance(body, str) or not body or len(body) > 4096:
                raise ValidationFailed("text.body must be 1–4096 characters.", field="text.body")
        message = {"type": message_type, message_type: obj}
        if values.get("context"):
            message["context"] = values["context"]
        if values.get("referral"):
            message["referral"] = values["referral"]
        number = waba_selectors.phone_number_for_send(
            tenant_workspace=self.tenant.workspace, waba_id=self.tenant.waba_id,
            phone_number_id=values.get("phone_number_id") or None,
        )
        wamid = receiving.sandbox_inbound_simulate(
            workspace=self.tenant.workspace, phone_number=number, from_phone=from_phone, message=message,
            name=values.get("name") or None, bsuid=bsuid, username=values.get("username") or None,
            parent_bsuid=values.get("parent_user_id") or None,
        )
        self.audit_target = ("phone_number", number.pk)
        return Response({"wamid": wamid, "from": from_phone, "type": message_type, "phone_number_id": number.pk,
                         "status": "accepted"}, status=202)

    def _social(self, data: dict) -> Response:
        """Messenger / Instagram: `{"channel", "account_id"?, "from"? (the PSID / IGSID; a new customer when
        absent), "text": {"body"} | "quick_reply": {"payload", "title"}}`."""
        from apps.conversations.services.social import sandbox_social_inbound_simulate

        serializer = self.SocialInboundInput(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        text = (values.get("text") or {}).get("body")
        quick = values.get("quick_reply")
        if quick is not None:
            text = text or str(quick.get("title") or "")
        if not isinstance(text, str) or not text or len(text) > 2000:
            raise ValidationFailed("text.body must be 1–2000 characters.", field="text.body")
        mid, user, account = sandbox_social_inbound_simulate(
            workspace=self.tenant.workspace, channel=values["channel"], account_id=values.get("account_id"),
            user_id=values.get("from"), text=text, quick_reply=str(quick.get("payload", "")) if quick else None,
            waba_id=self.tenant.waba_id)
        self.audit_target = ("social_account", account.pk)
        return Response({"wamid": mid, "from": user, "type": "button" if quick else "text", "phone_number_id": None,
                         "channel": values["channel"], "social_account_id": account.pk, "status": "accepted"},
                        status=202)

    @staticmethod
    def _infer_type(data: dict) -> str:
        present = [t for t in INBOUND_TYPES if t in data]
        if len(present) == 1:
            return present[0]
        raise ValidationFailed("Give `type` and the matching object (e.g. \"text\": {\"body\": …}).", field="type")


class SandboxAgeWindowView(_SandboxView):
    scopes = {"POST": "contacts:write"}

    class AgeWindowInput(serializers.Serializer):
        hours = serializers.FloatField(min_value=0, max_value=24 * 365)

    @api_doc(operation_id="sandbox_age_window", summary="Age a contact's window (sandbox)",
             description="Test keys only: moves a sandbox contact's last inbound `hours` into the past, to test "
             "what happens after the 24-hour window.", request=AgeWindowInput, responses={200: SandboxWindowOut})
    def post(self, request, pk: str):
        serializer = self.AgeWindowInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = self.get_scoped(Contact, pk)
        contact = receiving.sandbox_window_age(workspace=self.tenant.workspace, contact=contact,
                                               hours=serializer.validated_data["hours"])
        self.audit_target = ("contact", contact.pk)
        from django.utils import timezone

        from apps.conversations import policy

        expires = policy.window_expires_at(channel="whatsapp", last_inbound_at=contact.last_inbound_at,
                                           now=timezone.now())
        return Response({"contact_id": contact.pk, "last_inbound_at": _iso(contact.last_inbound_at),
                         "window_expires_at": _iso(expires)})
