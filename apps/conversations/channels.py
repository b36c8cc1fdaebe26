"""The inbox's channels, in the filter's order: ONE entry per channel. Its icon is the SVG symbol
`ch-<kind>` in templates/inbox/channel_icons.html; whether it has a reply window
comes from the policy (policy.CHANNEL_WINDOWS). Adding a channel to the inbox is one entry here."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.conversations import policy

INBOX_CHANNELS = (
    {"kind": "whatsapp", "label": _("WhatsApp")},
    {"kind": "sms", "label": _("SMS")},
    {"kind": "messenger", "label": _("Messenger")},
    {"kind": "instagram", "label": _("Instagram")},
    {"kind": "email", "label": _("Email")},
)


def inbox_channels() -> list[dict]:
    """For the page and its script: kind, label, and whether replies wait for the customer's window."""
    return [{"kind": c["kind"], "label": str(c["label"]), "has_window": policy.channel_window(c["kind"]) is not None}
            for c in INBOX_CHANNELS]
