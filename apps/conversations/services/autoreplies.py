"""Auto-replies: welcome, out-of-office and keyword rules, answered through the send road.

Guards, in order: never answer a stop/start word; only customer messages (an auto-reply is outbound,
so it can never trigger another: no loops); only inside the customer service window; at most one
auto-reply per conversation per cooldown, checked under the conversation's row lock so two inbound
messages processed at once cannot both answer."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.conversations.models import AutoReplyRule, AutoReplySettings, Conversation, Message
from apps.core.errors import ApplicationError, ValidationFailed
from apps.core.models import Workspace

logger = logging.getLogger("reach.autoreplies")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_KIND_RANK = {AutoReplyRule.Kind.KEYWORD: 0, AutoReplyRule.Kind.OUT_OF_OFFICE: 1, AutoReplyRule.Kind.WELCOME: 2}


# --- configuration ---------------------------------------------------------------------------------


def _clean_keywords(keywords) -> list[str]:
    out = []
    for word in keywords or []:
        norm = _normalize(str(word))
        if norm and norm not in out:
            out.append(norm)
    return out


def _check_rule(kind: str, keywords: list[str], reply_text: str) -> None:
    if kind not in AutoReplyRule.Kind.values:
        raise ValidationFailed(f"Unknown kind {kind!r}.", field="kind")
    if kind == AutoReplyRule.Kind.KEYWORD and not keywords:
        raise ValidationFailed("A keyword rule needs at least one keyword.", field="keywords")
    if not (reply_text or "").strip():
        raise ValidationFailed("reply_text is required.", field="reply_text")


def auto_reply_rule_create(*, workspace: Workspace, kind: str, reply_text: str, name: str = "",
                           enabled: bool = True, keywords: list[str] | None = None, match: str = "contains",
                           language: str = "", priority: int = 100) -> AutoReplyRule:
    words = _clean_keywords(keywords)
    _check_rule(kind, words, reply_text)
    if match not in AutoReplyRule.Match.values:
        raise ValidationFailed(f"Unknown match {match!r}.", field="match")
    return AutoReplyRule.objects.create(workspace=workspace, kind=kind, name=name, enabled=enabled, keywords=words,
                                        match=match, language=language.strip(), reply_text=reply_text,
                                        priority=priority)


def auto_reply_rule_update(*, rule: AutoReplyRule, **fields) -> AutoReplyRule:
    allowed = {"kind", "name", "enabled", "keywords", "match", "language", "reply_text", "priority"}
    for key, value in fields.items():
        if key not in allowed:
            raise ValidationFailed(f"Unknown field {key!r}.", field=key)
        setattr(rule, key, _clean_keywords(value) if key == "keywords" else value)
    _check_rule(rule.kind, rule.keywords, rule.reply_text)
    rule.save()
    return rule


def auto_reply_rule_validate(*, rule: AutoReplyRule) -> AutoReplyRule:
    """For the admin's forms: the same normalisation and checks as the API, without saving."""
    rule.keywords = _clean_keywords(rule.keywords)
    _check_rule(rule.kind, rule.keywords, rule.reply_text)
    return rule


def auto_reply_rule_delete(*, rule: AutoReplyRule) -> None:
    rule.delete()


def _parse_hhmm(value, field: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(f"{value!r} is not a HH:MM time.", field=field)


def check_business_hours(hours: dict) -> dict:
    clean: dict = {}
    for day, intervals in (hours or {}).items():
        if day not in DAYS:
            raise ValidationFailed(f"Unknown day {day!r}; use {', '.join(DAYS)}.", field="business_hours")
        if not isinstance(intervals, list):
            raise ValidationFailed("Each day is a list of [start, end] pairs.", field=f"business_hours.{day}")
        clean[day] = []
        for pair in intervals:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValidationFailed("Each interval is [start, end].", field=f"business_hours.{day}")
            start, end = (_parse_hhmm(p, f"business_hours.{day}") for p in pair)
            if end <= start and end != time(0, 0):
                raise ValidationFailed("An interval ends after it starts.", field=f"business_hours.{day}")
            clean[day].append([start.strftime("%H:%M"), end.strftime("%H:%M")])
    return clean


def auto_reply_settings_set(*, workspace: Workspace, cooldown_seconds: int | None = None,
                            timezone: str | None = None, business_hours: dict | None = None,
                            holidays: list | None = None) -> AutoReplySettings:
    row, _ = AutoReplySettings.objects.get_or_create(
        workspace=workspace, defaults={"cooldown_seconds": settings.AUTO_REPLY_DEFAULT_COOLDOWN_SECONDS}
    )
    if cooldown_seconds is not None:
        row.cooldown_seconds = cooldown_seconds
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationFailed(f"Unknown time zone {timezone!r}.", field="timezone")
        row.timezone = timezone
    if business_hours is not None:
        row.business_hours = check_business_hours(business_hours)
    if holidays is not None:
        row.holidays = sorted({(d if isinstance(d, date) else date.fromisoformat(str(d))).isoformat()
                               for d in holidays})
    row.save()
    return row


# --- evaluation ------------------------------------------------------------------------------------------


def _normalize(text: str) -> str:
    text = re.sub(r"\s+", " ", (text or "").casefold()).strip()
    return text.strip(" .,!?¡¿;:'\"()")


def is_within_business_hours(*, config: AutoReplySettings | None, at: datetime) -> bool:
    """True when someone is in (or no schedule is configured: out-of-office then never fires)."""
    if config is None or (not config.business_hours and not config.holidays):
        return True
    try:
        local = at.astimezone(ZoneInfo(config.timezone or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        local = at
    if local.date().isoformat() in set(config.holidays or []):
        return False
    now_t = local.time().replace(tzinfo=None)
    for start_s, end_s in (config.business_hours or {}).get(DAYS[local.weekday()], []):
        start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
        if start <= now_t and (now_t < end or end == time(0, 0)):
            return True
    return False


def keyword_matches(rule: AutoReplyRule, text: str) -> bool:
    norm = _normalize(text)
    if not norm:
        return False
    for word in rule.keywords or []:
        if rule.match == AutoReplyRule.Match.EXACT:
            if norm == word:
                return True
        elif re.search(rf"(?<!\w){re.escape(word)}(?!\w)", norm):
            return True
    return False


def _language_ok(rule: AutoReplyRule, contact_language: str) -> bool:
    if not rule.language or not contact_language:
        return True
    return contact_language.lower().replace("-", "_").startswith(rule.language.lower().replace("-", "_")[:2])


def inbound_text(message: Message) -> str:
    if message.body:
        return message.body
    content = message.content or {}
    if isinstance(content.get("body"), str):
        return content["body"]
    for key in ("button_reply", "list_reply"):
        reply = content.get(key) or (content.get("interactive") or {}).get(key)
        if isinstance(reply, dict) and reply.get("title"):
            return reply["title"]
    if isinstance(content.get("text"), str):
        return content["text"]
    return ""


def auto_reply_choose(*, workspace: Workspace, text: str, contact_created: bool, contact_language: str,
                      at: datetime) -> AutoReplyRule | None:
    rules = list(AutoReplyRule.objects.filter(workspace=workspace, enabled=True))
    if not rules:
        return None
    config = AutoReplySettings.objects.filter(workspace=workspace).first()
    candidates = []
    for rule in rules:
        if not _language_ok(rule, contact_language):
            continue
        applies = {
            AutoReplyRule.Kind.KEYWORD: lambda r=rule: keyword_matches(r, text),
            AutoReplyRule.Kind.WELCOME: lambda: contact_created,
            AutoReplyRule.Kind.OUT_OF_OFFICE: lambda: not is_within_business_hours(config=config, at=at),
        }[rule.kind]
        if applies():
            candidates.append(rule)
    if not candidates:
        return None
    return min(candidates, key=lambda r: (r.priority, _KIND_RANK[r.kind], r.created_at))


def _cooldown_seconds(workspace: Workspace) -> int:
    row = AutoReplySettings.objects.filter(workspace=workspace).values_list("cooldown_seconds", flat=True).first()
    return settings.AUTO_REPLY_DEFAULT_COOLDOWN_SECONDS if row is None else row


def auto_reply_for_inbound(*, message_id: str, contact_created: bool, consent_keyword: str | None,
                           now: datetime | None = None) -> Message | None:
    """Called by the receive road after an inbound message commits. Returns the queued auto-reply,
    or None when no rule applies or a guard says no. Never raises for policy refusals."""
    if consent_keyword:
        return None  # a STOP/START word is answered by consent handling, never by a bot
    now = now or timezone.now()
    message = (Message.objects.select_related("conversation", "contact", "phone_number", "workspace")
               .filter(pk=message_id).first())
    if (message is None or message.direction != Message.Direction.INBOUND or message.conversation is None
            or message.contact is None or message.phone_number is None
            or message.channel != Message.Channel.WHATSAPP):
        return None
    text = inbound_text(message)
    from apps.contacts.services import match_consent_keyword

    if text and match_consent_keyword(text):
        return None
    workspace, contact = message.workspace, message.contact
    language = str((contact.custom_fields or {}).get("language", "") or "")
    rule = auto_reply_choose(workspace=workspace, text=text, contact_created=contact_created,
                             contact_language=language, at=now)
    if rule is None:
        return None
    from apps.conversations.selectors.conversations import window_expires_at
    from apps.conversations.services import sending

    cooldown = timedelta(seconds=_cooldown_seconds(workspace))
    try:
        with transaction.atomic():
            conversation = Conversation.objects.select_for_update().select_related("contact").get(
                pk=message.conversation_id)
            if window_expires_at(conversation, now=now) is None:
                return None
            recent = Message.objects.filter(conversation=conversation, sent_by="auto_reply",
                                            created_at__gte=now - cooldown)
            if cooldown.total_seconds() > 0 and recent.exists():
                return None
            reply = sending.message_send_internal(
                workspace=workspace, phone_number=message.phone_number, contact=contact, message_type="text",
                content={"body": rule.reply_text}, sent_by="auto_reply",
            )
            return reply
    except ApplicationError as exc:
        logger.info("auto-reply to %s refused: %s %s", message_id, exc.code, exc.message)
        return None
