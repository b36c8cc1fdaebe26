"""Builders for campaign tests: a WABA + number, an approved template, contacts with tags and fields."""

from __future__ import annotations

import itertools

from apps.contacts.models import Contact, ContactTag
from apps.conversations.models import Message
from apps.message_templates.models import MessageTemplate
from apps.wabas.models import PhoneNumber, Waba

_seq = itertools.count(1)


def make_number(workspace, *, tier: str = "TIER_UNLIMITED", mps: int = 80) -> PhoneNumber:
    n = next(_seq)
    waba = Waba.objects.create(workspace=workspace, meta_waba_id=f"cw{n}{workspace.pk[-6:]}", name=f"W{n}",
                               is_simulated=True)
    return PhoneNumber.objects.create(workspace=workspace, waba=waba, meta_phone_number_id=f"cp{n}{workspace.pk[-6:]}",
                                      display_phone_number=f"+1555000{n:04d}", messaging_tier=tier,
                                      throughput_mps=mps)


def make_template(number: PhoneNumber, *, name: str = "promo", category: str = "MARKETING",
                  body: str = "Hi {{1}}, news from {{2}}!", status: str = "APPROVED",
                  language: str = "en") -> MessageTemplate:
    return MessageTemplate.objects.create(
        workspace=number.workspace, waba=number.waba, name=name, language=language, category=category,
        components=[{"type": "BODY", "text": body}], status=status,
    )


def make_contacts(workspace, count: int, *, start: int = 0, tags=(), opted_in: bool = True, custom_fields=None,
                  named: bool = True) -> list[Contact]:
    contacts = Contact.objects.bulk_create([
        Contact(workspace=workspace, phone=f"+4477009{start + i:05d}", wa_id=f"4477009{start + i:05d}",
                name=f"Person {start + i}" if named else "", opted_in=opted_in,
                custom_fields=dict(custom_fields or {}))
        for i in range(count)
    ])
    if tags:
        ContactTag.objects.bulk_create(
            [ContactTag(workspace=workspace, contact=c, name=t) for c in contacts for t in tags]
        )
    return contacts


def set_status(message_ids, status: str) -> int:
    """Stand-in for the dispatcher and the status webhooks."""
    from django.utils import timezone

    now = timezone.now()
    stamp = {"sent": "sent_at", "delivered": "delivered_at", "read": "read_at", "failed": "failed_at"}.get(status)
    extra = {stamp: now} if stamp else {}
    if status in ("delivered", "read"):
        extra["sent_at"] = now
    return Message.objects.filter(pk__in=list(message_ids)).update(status=status, **extra)
