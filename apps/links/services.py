"""Tracked links: `{{track:URL}}` -> a per-recipient short link REACH_PUBLIC_URL/l/<code>, and the visit
that redirects and records a click.

Codes are 128 random bits (secrets.token_urlsafe(16), 22 characters): unguessable, and unique by constraint.
A URL-button parameter of a template is the suffix Meta appends to the button's base URL, so there
`{{track:URL}}` becomes the bare code (the template's button is then REACH_PUBLIC_URL/l/{{1}});
everywhere else it becomes the whole short URL."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.core.models import Workspace
from apps.core.services import event_append
from apps.links import events as link_events
from apps.links.models import LinkClick, TrackedLink

TRACK = re.compile(r"\{\{\s*track:\s*(.*?)\s*\}\}")
URL_MAX = 2000


def has_track(value) -> bool:
    """Does any string in this JSON value hold a `{{track:…}}`?"""
    if isinstance(value, str):
        return "{{" in value and TRACK.search(value) is not None
    if isinstance(value, dict):
        return any(has_track(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_track(v) for v in value)
    return False


def track_url_validate(url: str, *, field: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > URL_MAX or any(c.isspace() for c in url):
        raise ValidationFailed(f"{{{{track:…}}}} needs an absolute http(s) URL of at most {URL_MAX} characters.",
                               field=field)
    return url


def link_short_url(code: str) -> str:
    return f"{settings.REACH_PUBLIC_URL}/l/{code}"


@dataclass
class LinkTracker:
    """The links of one message being written: the same URL twice in one message is one link."""

    codes: dict[str, str] = field(default_factory=dict)  # url -> code

    def __bool__(self) -> bool:
        return bool(self.codes)

    def code_for(self, url: str, *, field: str = "text.body") -> str:
        url = track_url_validate(url, field=field)
        code = self.codes.get(url)
        if code is None:
            code = self.codes[url] = secrets.token_urlsafe(16)
        return code

    def expand_text(self, text: str, *, field: str = "text.body", bare: bool = False) -> str:
        if "{{" not in text:
            return text

        def sub(match: re.Match) -> str:
            code = self.code_for(match.group(1), field=field)
            return code if bare else link_short_url(code)

        return TRACK.sub(sub, text)

    def expand(self, value, *, field: str = "", bare: bool = False):
        """Every string in a JSON value expanded; inside a template's URL button, to the bare code."""
        if isinstance(value, str):
            return self.expand_text(value, field=field or "body", bare=bare)
        if isinstance(value, list):
            return [self.expand(v, field=field, bare=bare) for v in value]
        if isinstance(value, dict):
            url_button = value.get("type") == "button" and str(value.get("sub_type", "")).lower() == "url"
            return {k: self.expand(v, field=f"{field}.{k}" if field else k, bare=bare or url_button)
                    for k, v in value.items()}
        return value

    def save(self, *, workspace_id: str, message_id: str, campaign_id: str = "", contact_id: str = "") -> list[TrackedLink]:
        """The links, for the message just written (call inside its transaction)."""
        return links_create(workspace_id=workspace_id, items=[
            {"code": code, "url": url, "message_id": message_id, "campaign_id": campaign_id,
             "contact_id": contact_id} for url, code in self.codes.items()])


def links_create(*, workspace_id: str, items: list[dict]) -> list[TrackedLink]:
    rows = [TrackedLink(workspace_id=workspace_id, code=i["code"], url=i["url"], message_id=i.get("message_id", ""),
                        campaign_id=i.get("campaign_id", ""), contact_id=i.get("contact_id") or "") for i in items]
    return TrackedLink.objects.bulk_create(rows, batch_size=1000) if rows else []


_BOTS = re.compile(r"bot|crawl|spider|slurp|preview|facebookexternalhit|whatsapp|curl|wget|python-requests",
                   re.IGNORECASE)
_MOBILE = re.compile(r"mobile|android|iphone|ipad|ipod", re.IGNORECASE)


def user_agent_class(user_agent: str) -> str:
    if not user_agent:
        return LinkClick.Agent.UNKNOWN
    if _BOTS.search(user_agent):
        return LinkClick.Agent.BOT
    return LinkClick.Agent.MOBILE if _MOBILE.search(user_agent) else LinkClick.Agent.DESKTOP


def link_click_record(*, code: str, user_agent: str = "", now: datetime | None = None) -> str | None:
    """A visit to /l/<code>: the click (time, user-agent class), the link's counters and `link.clicked`,
    in one transaction. Returns where to redirect, or None for an unknown code (nothing written)."""
    if not code or len(code) > 32:
        return None
    now = now or timezone.now()
    agent = user_agent_class(user_agent)
    with transaction.atomic():
        link = TrackedLink.objects.select_for_update().filter(code=code).first()
        if link is None:
            return None
        TrackedLink.objects.filter(pk=link.pk).update(clicks=F("clicks") + 1, last_clicked_at=now,
                                                      first_clicked_at=link.first_clicked_at or now)
        link.clicks += 1
        LinkClick.objects.create(link=link, at=now, agent=agent)
        event_append(workspace=Workspace(pk=link.workspace_id), type="link.clicked",
                     data=link_events.link_clicked(link=link, agent=agent, at=now))
    return link.url


def meta_click_record(*, workspace, at, message=None, meta: dict) -> None:
    """A click Meta's click tracking reported for a marketing message (Marketing Messages API): the same
    link.clicked event as our short links, with source `meta` (no short link of ours involved)."""
    event_append(workspace=workspace, type="link.clicked", data=link_events.link_clicked(at=at, message=message, meta=meta))


def links_contact_merge(*, workspace_id: str, survivor_id: str, absorbed_id: str) -> int:
    """A contact merge (core.hooks contact merger): the absorbed contact's tracked links are the survivor's."""
    return TrackedLink.objects.filter(workspace_id=workspace_id, contact_id=absorbed_id).update(contact_id=survivor_id)
