"""Read layer for WABAs and phone numbers."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import PhoneNotFound, ValidationFailed
from apps.core.models import Workspace
from apps.core.sql import CompiledRead
from apps.wabas.models import EmailChannel, PhoneNumber, Waba


def wabas_for(*, workspace: Workspace, waba_id: str = "") -> QuerySet[Waba]:
    qs = Waba.objects.filter(workspace=workspace)
    return qs.filter(pk=waba_id) if waba_id else qs


def phone_numbers_for(*, workspace: Workspace, waba_id: str = "") -> QuerySet[PhoneNumber]:
    qs = PhoneNumber.objects.filter(workspace=workspace).select_related("waba")
    return qs.filter(waba_id=waba_id) if waba_id else qs


def phone_number_for_send(*, tenant_workspace: Workspace, waba_id: str = "",
                          phone_number_id: str | None = None) -> PhoneNumber:
    """The sender: pinned by our pn_ id or Meta's id, else the only number the caller can see.
    A foreign or unknown pin is PHONE_NOT_FOUND; several numbers and no pin is a validation error."""
    qs = phone_numbers_for(workspace=tenant_workspace, waba_id=waba_id)
    if phone_number_id:
        field = "pk" if str(phone_number_id).startswith("pn_") else "meta_phone_number_id"
        number = qs.filter(**{field: phone_number_id}).first()
        if number is None:
            raise PhoneNotFound(details={"field": "phone_number_id"})
        return number
    numbers = list(qs.order_by("created_at")[:2])
    if not numbers:
        raise PhoneNotFound("This workspace has no WhatsApp number to send from.",
                            details={"field": "phone_number_id"})
    if len(numbers) > 1:
        raise ValidationFailed("Several numbers can send; pick one with phone_number_id.", field="phone_number_id")
    return numbers[0]


def _phone_number_by_meta_id_query(meta_phone_number_id: str) -> QuerySet[PhoneNumber]:
    return PhoneNumber.objects.select_related("waba", "workspace").filter(
        meta_phone_number_id=meta_phone_number_id).order_by("pk")[:1]


_phone_number_by_meta_id = CompiledRead(_phone_number_by_meta_id_query)  # every stored webhook's first read


def phone_number_by_meta_id(meta_phone_number_id: str) -> PhoneNumber | None:
    found = _phone_number_by_meta_id(meta_phone_number_id=str(meta_phone_number_id))
    return found[0] if found else None


def phone_number_get(*, phone_number_id: str) -> PhoneNumber | None:
    return PhoneNumber.objects.select_related("waba", "workspace").filter(pk=phone_number_id).first()


def waba_exists_in(workspace: Workspace, waba_id: str) -> bool:
    return Waba.objects.filter(workspace=workspace, pk=waba_id).exists()


def phone_number_for_sms(*, to_phone: str) -> PhoneNumber | None:
    """The live number an inbound SMS was sent to (the business texts from its WhatsApp number's line):
    matched on digits, never a sandbox (simulated) number."""
    digits = "".join(ch for ch in to_phone or "" if ch.isdigit())
    if len(digits) < 7:
        return None
    for number in (PhoneNumber.objects.select_related("waba", "workspace")
                   .filter(waba__is_simulated=False, display_phone_number__contains=digits[-7:]).order_by("pk")):
        if "".join(ch for ch in number.display_phone_number if ch.isdigit()) == digits:
            return number
    return None


def social_account_for_webhook(*, channel: str, meta_account_id: str):
    """The connected Page (Messenger) or Instagram account a webhook entry names."""
    from apps.wabas.models import SocialAccount

    qs = SocialAccount.objects.select_related("workspace").filter(channel=channel)
    if channel == SocialAccount.Channel.INSTAGRAM:
        return qs.filter(ig_user_id=meta_account_id).first()
    return qs.filter(page_id=meta_account_id).first()
# --- the email channel -------------------------------------------------------------------------------------


def email_channel_for(*, workspace: Workspace, waba_id: str = "") -> EmailChannel | None:
    """The workspace's email channel (None when it has none, or when it rides on a WABA the key cannot see)."""
    qs = EmailChannel.objects.select_related("phone_number__waba", "workspace").filter(workspace=workspace)
    if waba_id:
        qs = qs.filter(phone_number__waba_id=waba_id)
    return qs.first()


def email_channel_for_recipient(address: str) -> EmailChannel | None:
    """The channel a mail to `address` is for: its inbound address, else its inbound domain (the listener's
    and the webhook's routing; None: not ours, refused)."""
    address = (address or "").strip().strip("<>").lower()
    if "@" not in address:
        return None
    qs = EmailChannel.objects.select_related("phone_number__waba", "workspace")
    return (qs.filter(inbound_address=address).first()
            or qs.filter(inbound_domain=address.rsplit("@", 1)[1]).first())


def email_channel_for_token(token: str) -> EmailChannel | None:
    if not token or len(token) > 64:
        return None
    return EmailChannel.objects.select_related("phone_number__waba", "workspace").filter(inbound_token=token).first()
