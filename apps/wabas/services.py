"""Write layer for WABAs and phone numbers."""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.db import transaction

from apps.core.crypto import decrypt_secret, encrypt_secret
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.models import Workspace
from apps.core.services import event_append
from apps.wabas.events import phone_number_quality_changed
from apps.wabas.models import EmailChannel, PhoneNumber, Waba

_QUALITY_EVENTS = {"FLAGGED": "YELLOW", "UNFLAGGED": "GREEN", "DOWNGRADE": None, "UPGRADE": None}
_TIER_FROM_LIMIT = {
    "TIER_50": PhoneNumber.Tier.TIER_250, "TIER_250": PhoneNumber.Tier.TIER_250,
    "TIER_1K": PhoneNumber.Tier.TIER_1K, "TIER_2K": PhoneNumber.Tier.TIER_2K,
    "TIER_10K": PhoneNumber.Tier.TIER_10K, "TIER_100K": PhoneNumber.Tier.TIER_100K,
    "TIER_UNLIMITED": PhoneNumber.Tier.TIER_UNLIMITED, "UNLIMITED": PhoneNumber.Tier.TIER_UNLIMITED,
}


@transaction.atomic
def waba_connect(*, workspace: Workspace, meta_waba_id: str, phone_number_id: str, display_phone_number: str,
                 access_token: str, name: str = "") -> PhoneNumber:
    """Register (or update) a live WABA and one of its numbers by hand; the token is stored encrypted."""
    if not meta_waba_id.strip():
        raise ValidationFailed("The WABA id is required.", field="waba_id")
    if not phone_number_id.strip():
        raise ValidationFailed("The phone number id is required.", field="phone_number_id")
    if not access_token.strip():
        raise ValidationFailed("The access token is required.", field="access_token")
    display = normalize_phone(display_phone_number, field="display_phone_number")
    waba = Waba.objects.select_for_update().filter(meta_waba_id=meta_waba_id).first()
    if waba is not None and waba.workspace_id != workspace.pk:
        raise Conflict("This WABA is connected to another workspace.", details={"field": "waba_id"})
    if waba is None:
        waba = Waba.objects.create(workspace=workspace, meta_waba_id=meta_waba_id, name=name or meta_waba_id,
                                   is_simulated=False, access_token_encrypted=encrypt_secret(access_token))
    else:
        waba.access_token_encrypted = encrypt_secret(access_token)
        if name:
            waba.name = name
        waba.save(update_fields=["access_token_encrypted", "name", "updated_at"])
    number = PhoneNumber.objects.select_for_update().filter(meta_phone_number_id=phone_number_id).first()
    if number is not None and number.waba_id != waba.pk:
        raise Conflict("This phone number belongs to another WABA.", details={"field": "phone_number_id"})
    if number is None:
        number = PhoneNumber.objects.create(
            workspace=workspace, waba=waba, meta_phone_number_id=phone_number_id, display_phone_number=display,
            throughput_mps=settings.DEFAULT_THROUGHPUT_MPS,
        )
    elif number.display_phone_number != display:
        number.display_phone_number = display
        number.save(update_fields=["display_phone_number", "updated_at"])
    return number


def normalize_phone(raw: str, *, field: str) -> str:
    """E.164 check kept local: contacts (which owns phone rules) sits above wabas in the layers."""
    value = re.sub(r"[\s\-().]", "", raw or "")
    value = value if value.startswith("+") else "+" + value
    if not re.fullmatch(r"\+\d{8,15}", value):
        raise ValidationFailed(f"{raw!r} is not an E.164 phone number.", field=field)
    return value


def waba_access_token(waba: Waba) -> str:
    return decrypt_secret(waba.access_token_encrypted)


def _digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


def waba_provision_sandbox(*, live: Workspace, sandbox: Workspace) -> PhoneNumber:
    """Each sandbox twin gets a simulated WABA with one number (registered as a workspace provisioner)."""
    waba = Waba.objects.create(
        workspace=sandbox, meta_waba_id="9" + _digits(14), name=f"{live.name} sandbox", is_simulated=True,
        access_token_encrypted=encrypt_secret("sandbox-" + secrets.token_hex(16)),
    )
    return PhoneNumber.objects.create(
        workspace=sandbox, waba=waba, meta_phone_number_id="8" + _digits(14),
        display_phone_number="+1555" + _digits(7), verified_name=f"{live.name} (sandbox)",
        throughput_mps=settings.DEFAULT_THROUGHPUT_MPS,
    )


def phone_number_set_throughput(*, phone_number: PhoneNumber, mps: int) -> PhoneNumber:
    if mps < 1:
        raise ValidationFailed("throughput_mps must be at least 1.", field="throughput_mps")
    PhoneNumber.objects.filter(pk=phone_number.pk).update(throughput_mps=mps)
    phone_number.throughput_mps = mps
    return phone_number


@transaction.atomic
def phone_number_quality_apply(*, waba_meta_id: str, display_phone_number: str, event: str,
                               current_limit: str | None = None, quality: str | None = None) -> PhoneNumber:
    """Apply Meta's phone_number_quality_update: quality rating and messaging tier, plus an event."""
    try:
        display = normalize_phone(display_phone_number, field="display_phone_number")
    except ValidationFailed:
        display = display_phone_number
    number = (
        PhoneNumber.objects.select_for_update()
        .filter(waba__meta_waba_id=waba_meta_id, display_phone_number=display)
        .select_related("workspace")
        .first()
    )
    if number is None:
        raise NotFound("No such phone number for this WABA.")
    before = {"quality_rating": number.quality_rating, "messaging_tier": number.messaging_tier}
    new_quality = quality or _QUALITY_EVENTS.get((event or "").upper()) or number.quality_rating
    if new_quality not in PhoneNumber.Quality.values:
        new_quality = number.quality_rating
    new_tier = _TIER_FROM_LIMIT.get((current_limit or "").upper(), number.messaging_tier)
    number.quality_rating, number.messaging_tier = new_quality, new_tier
    if (event or "").upper() == "THROUGHPUT_UPGRADE":
        number.throughput_mps = max(number.throughput_mps, settings.UPGRADED_THROUGHPUT_MPS)
    number.save(update_fields=["quality_rating", "messaging_tier", "throughput_mps", "updated_at"])
    event_append(workspace=number.workspace, type="phone_number.quality_changed", data=phone_number_quality_changed(
        number=number, event=event, previous_quality_rating=before["quality_rating"],
        previous_messaging_tier=before["messaging_tier"]))
    if new_tier != before["messaging_tier"]:  # the limit is the portfolio's: every number of it moves
        portfolio_tier_set(waba=number.waba, tier=new_tier, event=event, exclude_pk=number.pk)
    return number


def portfolio_wabas(*, waba: Waba):
    """The WABAs that share `waba`'s business portfolio (and so its messaging limit) in its workspace."""
    if not waba.business_id:
        return Waba.objects.filter(pk=waba.pk)
    return Waba.objects.filter(workspace_id=waba.workspace_id, business_id=waba.business_id)


def _tier_from_capability(value) -> str | None:
    """Meta's max_daily_conversations_per_business: a TIER_* name or a number of unique users."""
    if value is None or value == "":
        return None
    text = str(value).upper()
    if text in _TIER_FROM_LIMIT:
        return _TIER_FROM_LIMIT[text]
    if text.isdigit():
        n = int(text)
        for tier, limit in sorted(((t, v) for t, v in settings.CAMPAIGN_TIER_LIMITS.items() if v is not None),
                                  key=lambda tv: tv[1], reverse=True):
            if n >= limit:
                return tier
        return PhoneNumber.Tier.TIER_250
    return None


@transaction.atomic
def portfolio_tier_set(*, waba: Waba, tier: str, event: str | None, exclude_pk: str | None = None) -> list:
    """Set the portfolio's messaging limit on every number of every WABA of the portfolio (the campaign tier
    check and its daily budget read it), each with its `phone_number.quality_changed`."""
    changed = []
    for number in (PhoneNumber.objects.select_for_update().select_related("workspace", "waba")
                   .filter(waba__in=portfolio_wabas(waba=waba)).exclude(pk=exclude_pk or "").order_by("pk")):
        previous = number.messaging_tier
        if previous == tier:
            continue
        number.messaging_tier = tier
        number.save(update_fields=["messaging_tier", "updated_at"])
        changed.append(number)
        event_append(workspace=number.workspace, type="phone_number.quality_changed",
                     data=phone_number_quality_changed(number=number, event=event,
                                                       previous_quality_rating=number.quality_rating,
                                                       previous_messaging_tier=previous))
    return changed


def business_capability_apply(*, waba_meta_id: str, max_daily_conversations_per_business=None,
                              max_phone_numbers_per_business=None) -> list | None:
    """Meta's business_capability_update: the portfolio's messaging limit. None: unknown WABA or no limit."""
    tier = _tier_from_capability(max_daily_conversations_per_business)
    waba = Waba.objects.filter(meta_waba_id=waba_meta_id).first()
    if waba is None or tier is None:
        return None
    return portfolio_tier_set(waba=waba, tier=tier, event="BUSINESS_CAPABILITY_UPDATE")


def waba_marketing_messages_set(*, waba: Waba, enabled: bool) -> Waba:
    """The per-WABA switch for Meta's Marketing Messages API (the portfolio must have accepted its terms)."""
    Waba.objects.filter(pk=waba.pk).update(marketing_messages_enabled=bool(enabled))
    waba.marketing_messages_enabled = bool(enabled)
    return waba


def waba_business_set(*, waba: Waba, business_id: str) -> Waba:
    """Which Meta business portfolio the WABA belongs to (its numbers then share the portfolio's limit)."""
    Waba.objects.filter(pk=waba.pk).update(business_id=business_id or "")
    waba.business_id = business_id or ""
    return waba
# --- Embedded Signup: the server half ---------------------------------------------------------------------


def waba_embedded_signup(*, workspace: Workspace, code: str, pin: str, waba_id_hint: str = "",
                         phone_number_id_hint: str = "") -> list[PhoneNumber]:
    """Finish Meta's Embedded Signup: exchange the browser's one-time code for the business token, find the
    WABAs it was granted (debug_token) and their numbers, register each number for Cloud API messaging with the
    chosen two-step PIN, subscribe our app to the WABA's webhooks, then connect them here (token encrypted).
    The hints (from the SDK's session-info message) narrow the discovery to what the person picked."""
    from apps.core.errors import UpstreamError
    from apps.providers.base import ProviderError
    from apps.providers.registry import whatsapp_provider

    if workspace.is_sandbox:
        raise ValidationFailed("Sandbox numbers are simulated; switch to Live to connect a WhatsApp account.",
                               field="code")
    code, pin = (code or "").strip(), (pin or "").strip()
    if not code:
        raise ValidationFailed("The signup code is missing.", field="code")
    if not (len(pin) == 6 and pin.isdigit()):
        raise ValidationFailed("Choose a 6-digit PIN for two-step verification.", field="pin")
    graph = whatsapp_provider(simulated=False)
    app = {"app_id": settings.META_APP_ID, "app_secret": settings.META_APP_SECRET}
    try:
        token = graph.exchange_code(code=code, **app)
        waba_ids = graph.shared_waba_ids(access_token=token, **app)
        if waba_id_hint:
            waba_ids = [w for w in waba_ids if w == waba_id_hint]
        if not waba_ids:
            raise ValidationFailed("Meta granted no WhatsApp Business Account to this signup.", field="code")
        found: list[tuple[str, dict]] = []
        for meta_waba_id in waba_ids:
            for number in graph.list_phone_numbers(waba_id=meta_waba_id, access_token=token):
                if not phone_number_id_hint or str(number.get("id")) == phone_number_id_hint:
                    found.append((meta_waba_id, number))
        if not found:
            raise ValidationFailed("The WhatsApp Business Account has no phone number yet.", field="code")
        for _waba, number in found:
            graph.register_phone_number(phone_number_id=str(number["id"]), access_token=token, pin=pin)
        for meta_waba_id in dict.fromkeys(w for w, _ in found):
            graph.subscribe_app(waba_id=meta_waba_id, access_token=token)
    except ProviderError as exc:
        raise UpstreamError(f"Meta refused the signup: {getattr(exc, 'message', str(exc))}",
                            details={"provider_code": getattr(exc, "code", None)}) from exc
    connected = []
    with transaction.atomic():
        for meta_waba_id, number in found:
            phone = waba_connect(workspace=workspace, meta_waba_id=meta_waba_id, phone_number_id=str(number["id"]),
                                 display_phone_number=str(number.get("display_phone_number") or ""),
                                 access_token=token, name=str(number.get("verified_name") or ""))
            quality = str(number.get("quality_rating") or "").upper()
            tier = _TIER_FROM_LIMIT.get(str(number.get("messaging_limit_tier") or "").upper())
            changed = []
            if quality in PhoneNumber.Quality.values and quality != phone.quality_rating:
                phone.quality_rating = quality
                changed.append("quality_rating")
            if tier and tier != phone.messaging_tier:
                phone.messaging_tier = tier
                changed.append("messaging_tier")
            if number.get("verified_name") and number["verified_name"] != phone.verified_name:
                phone.verified_name = str(number["verified_name"])[:200]
                changed.append("verified_name")
            if changed:
                phone.save(update_fields=[*changed, "updated_at"])
            connected.append(phone)
    return connected


def social_access_token(account) -> str:
    return decrypt_secret(account.access_token_encrypted)


# --- Messenger and Instagram accounts ------------------------------------------------------------------

_META_ID = re.compile(r"^\d{1,64}$")


def _meta_id(value, field: str, *, required: bool) -> str:
    value = str(value or "").strip()
    if not value:
        if required:
            raise ValidationFailed(f"{field} is required.", field=field)
        return ""
    if not _META_ID.fullmatch(value):
        raise ValidationFailed(f"{field} must be Meta's numeric id.", field=field)
    return value


@transaction.atomic
def social_account_connect(*, workspace: Workspace, channel: str, page_id: str = "", ig_user_id: str = "",
                           access_token: str = "", name: str = "", waba: Waba | None = None):
    """Connect a Facebook Page (messenger) or an Instagram professional account (instagram, with the Page it
    is linked to) beside the WABAs; the Page access token is stored encrypted, as a WABA's. A sandbox
    workspace's account is simulated (ids made up when not given, no token needed). Connecting the same
    account again updates its token and name: (account, created)."""
    from apps.wabas.models import SocialAccount

    if channel not in SocialAccount.Channel.values:
        raise ValidationFailed("channel must be messenger or instagram.", field="channel")
    simulated = workspace.is_sandbox
    page_id = _meta_id(page_id, "page_id", required=not simulated)
    ig_user_id = _meta_id(ig_user_id, "ig_user_id", required=channel == "instagram" and not simulated)
    if simulated:
        page_id = page_id or "1" + _digits(14)
        if channel == "instagram":
            ig_user_id = ig_user_id or "17841" + _digits(12)
        access_token = access_token or "sandbox-" + secrets.token_hex(16)
    if not access_token.strip():
        raise ValidationFailed("The Page access token is required.", field="access_token")
    if waba is not None and waba.workspace_id != workspace.pk:
        raise NotFound("No such WABA.", details={"field": "waba_id"})
    key = {"ig_user_id": ig_user_id} if channel == "instagram" else {"page_id": page_id}
    account = SocialAccount.objects.select_for_update().filter(channel=channel, **key).first()
    if account is not None and account.workspace_id != workspace.pk:
        raise Conflict("This account is connected to another workspace.",
                       details={"field": "ig_user_id" if channel == "instagram" else "page_id"})
    if account is None:
        account = SocialAccount.objects.create(
            workspace=workspace, waba=waba, channel=channel, page_id=page_id, ig_user_id=ig_user_id,
            name=name[:200], access_token_encrypted=encrypt_secret(access_token), is_simulated=simulated)
        return account, True
    account.access_token_encrypted = encrypt_secret(access_token)
    account.page_id, account.name, account.waba = page_id, name[:200] or account.name, waba or account.waba
    account.save(update_fields=["access_token_encrypted", "page_id", "name", "waba", "updated_at"])
    return account, False


def social_account_remove(*, account) -> None:
    """Disconnect: the account goes; its threads and messages stay (their account reference is cleared)."""
    account.delete()
# --- the email channel -------------------------------------------------------------------------------------

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
EMAIL_CHANNEL_FIELDS = ("from_address", "from_name", "phone_number_id", "smtp_host", "smtp_port", "smtp_username",
                        "smtp_password", "smtp_security", "inbound_address", "inbound_domain")


def _email(value, field: str, *, required: bool) -> str | None:
    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.core.validators import validate_email

    if value in (None, ""):
        if required:
            raise ValidationFailed("An email address is required.", field=field)
        return None
    if not isinstance(value, str) or len(value) > 254:
        raise ValidationFailed("Enter a valid email address.", field=field)
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValidationFailed("Enter a valid email address.", field=field) from None
    return value.strip().lower() if field.startswith("inbound") else value.strip()


def _text(data: dict, field: str, *, max_len: int) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len or any(c in value for c in "\r\n\x00"):
        raise ValidationFailed(f"Must be a string of at most {max_len} characters on one line.", field=field)
    return value.strip()


@transaction.atomic
def email_channel_set(*, workspace: Workspace, data, waba_id: str = "") -> EmailChannel:
    """PUT /api/v1/channels/email: create or replace the workspace's email channel. `smtp_password` is
    write-only (encrypted; omitted keeps the stored one, "" clears it); a blank `smtp_host` uses the EMAIL_*
    settings. Inbound addresses and domains are unique across workspaces (409: another workspace has it)."""
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="")
    unknown = sorted(set(data) - set(EMAIL_CHANNEL_FIELDS))
    if unknown:
        raise ValidationFailed("Unknown field.", field=unknown[0])
    if workspace.is_sandbox:
        raise ValidationFailed("The sandbox has no email channel: mail would reach real people.", field="")
    channel = EmailChannel.objects.select_for_update().filter(workspace=workspace).first()
    if channel is not None and waba_id and channel.phone_number.waba_id != waba_id:
        raise NotFound()
    from apps.wabas.selectors import phone_number_for_send

    pinned = _text(data, "phone_number_id", max_len=64)
    if pinned or channel is None:
        number = phone_number_for_send(tenant_workspace=workspace, waba_id=waba_id, phone_number_id=pinned or None)
    else:
        number = channel.phone_number
    port = data.get("smtp_port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise ValidationFailed("Must be a port number from 1 to 65535.", field="smtp_port")
    security = data.get("smtp_security", EmailChannel.Security.NONE)
    if security not in EmailChannel.Security.values:
        raise ValidationFailed(f"Must be one of {', '.join(EmailChannel.Security.values)}.", field="smtp_security")
    domain = _text(data, "inbound_domain", max_len=253)
    domain = domain.lower() if domain else None
    if domain and not _DOMAIN.match(domain):
        raise ValidationFailed("Enter a domain name such as mail.example.com.", field="inbound_domain")
    values = {
        "phone_number": number,
        "from_address": _email(data.get("from_address"), "from_address", required=True),
        "from_name": _text(data, "from_name", max_len=200) or "",
        "smtp_host": _text(data, "smtp_host", max_len=255) or "",
        "smtp_port": port,
        "smtp_username": _text(data, "smtp_username", max_len=255) or "",
        "smtp_security": security,
        "inbound_address": _email(data.get("inbound_address"), "inbound_address", required=False),
        "inbound_domain": domain,
    }
    for field in ("inbound_address", "inbound_domain"):
        if values[field] and EmailChannel.objects.filter(**{field: values[field]}).exclude(
                workspace=workspace).exists():
            raise Conflict("Another workspace receives mail there.", details={"field": field})
    if "smtp_password" in data:
        password = data["smtp_password"]
        if not isinstance(password, str) or len(password) > 1024:
            raise ValidationFailed("Must be a string.", field="smtp_password")
        values["smtp_password_encrypted"] = encrypt_secret(password) if password else ""
    if channel is None:
        channel = EmailChannel(workspace=workspace, inbound_token=secrets.token_urlsafe(32))
    for field, value in values.items():
        setattr(channel, field, value)
    channel.save()
    return channel


@transaction.atomic
def email_channel_delete(*, workspace: Workspace, waba_id: str = "") -> None:
    from apps.wabas.selectors import email_channel_for

    channel = email_channel_for(workspace=workspace, waba_id=waba_id)
    if channel is None:
        raise NotFound("This workspace has no email channel.")
    channel.delete()


def email_channel_smtp(channel: EmailChannel) -> dict:
    """The SMTP connection the channel sends through (Django's SMTP backend's arguments): its own server,
    else the EMAIL_* settings."""
    if not channel.smtp_host:
        return {"host": settings.EMAIL_HOST, "port": settings.EMAIL_PORT, "username": settings.EMAIL_HOST_USER,
                "password": settings.EMAIL_HOST_PASSWORD, "use_tls": settings.EMAIL_USE_TLS,
                "use_ssl": settings.EMAIL_USE_SSL, "timeout": settings.EMAIL_TIMEOUT}
    security = channel.smtp_security
    return {"host": channel.smtp_host,
            "port": channel.smtp_port or (465 if security == EmailChannel.Security.SSL else 587 if security ==
                                          EmailChannel.Security.STARTTLS else 25),
            "username": channel.smtp_username,
            "password": decrypt_secret(channel.smtp_password_encrypted) if channel.smtp_password_encrypted else "",
            "use_tls": security == EmailChannel.Security.STARTTLS, "use_ssl": security == EmailChannel.Security.SSL,
            "timeout": settings.EMAIL_TIMEOUT}
