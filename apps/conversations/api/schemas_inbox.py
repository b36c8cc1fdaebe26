"""The typed answers of the inbox API, the media API and the sandbox operations."""

from __future__ import annotations

from rest_framework import serializers

from apps.conversations.api.schemas_messages import STATUSES, MessageErrorSerializer

STATES = ["open", "pending", "resolved", "snoozed"]


class UserBriefOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)


class ContactBriefOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    phone = serializers.CharField(allow_null=True)
    wa_id = serializers.CharField(allow_null=True, allow_blank=True)
    bsuid = serializers.CharField(allow_null=True, allow_blank=True, required=False,
                                  help_text="Meta's business-scoped user id (API.md Identity).")
    username = serializers.CharField(allow_null=True, required=False)
    email = serializers.CharField(allow_null=True, required=False, help_text="Email conversations' address.")
    opted_in = serializers.BooleanField()


class ConversationOut(serializers.Serializer):
    id = serializers.CharField()
    contact = ContactBriefOut(allow_null=True)
    channel_kind = serializers.CharField()
    phone_number_id = serializers.CharField(allow_null=True)
    state = serializers.ChoiceField(choices=STATES)
    assigned_user_id = serializers.CharField(allow_null=True)
    assigned_user = UserBriefOut(allow_null=True)
    snooze_until = serializers.DateTimeField(allow_null=True)
    last_message_at = serializers.DateTimeField(allow_null=True)
    last_inbound_at = serializers.DateTimeField(allow_null=True)
    last_message_preview = serializers.CharField(allow_blank=True)
    window_expires_at = serializers.DateTimeField(allow_null=True, help_text="End of the 24-hour window.")
    agent_reply_expires_at = serializers.DateTimeField(
        allow_null=True, required=False, help_text="Until when a person may reply from the inbox: the window, "
        "or on Messenger / Instagram the HUMAN_AGENT tag's 7 days; null when closed or the channel has no window.")
    unread_count = serializers.IntegerField()
    referral = serializers.DictField(allow_null=True, required=False,
                                     help_text="The click-to-WhatsApp ad that opened the conversation (Meta's referral).")
    free_entry_point_expires_at = serializers.DateTimeField(
        allow_null=True, required=False, help_text="End of the free entry point window (ad replies), if open.")
    created_at = serializers.DateTimeField()


class ConversationDetailOut(ConversationOut):
    contact_details = serializers.DictField(required=False, help_text="With `?expand=contact`: tags, custom "
                                            "fields, consent history and previous conversations.")


class MessageMediaOut(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    filename = serializers.CharField(allow_blank=True, allow_null=True)
    url = serializers.CharField()


class ThreadMessageOut(serializers.Serializer):
    id = serializers.CharField()
    conversation_id = serializers.CharField(allow_null=True)
    direction = serializers.ChoiceField(choices=["inbound", "outbound"])
    channel = serializers.CharField()
    type = serializers.CharField()
    body = serializers.CharField(allow_blank=True)
    content = serializers.JSONField()
    media = MessageMediaOut(allow_null=True)
    status = serializers.CharField(help_text=f"One of {', '.join(STATUSES)} (inbound: received).")
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    sent_by = serializers.CharField(allow_null=True, allow_blank=True,
                                    help_text="A user id, api, campaign, auto_reply or customer.")
    sent_by_user = UserBriefOut(allow_null=True)
    reply_to_id = serializers.CharField(allow_null=True)
    error = MessageErrorSerializer(allow_null=True)


class ThreadPageOut(serializers.Serializer):
    data = ThreadMessageOut(many=True)
    has_more = serializers.BooleanField()


class NoteOut(serializers.Serializer):
    id = serializers.CharField()
    conversation_id = serializers.CharField()
    body = serializers.CharField()
    author = UserBriefOut(allow_null=True)
    created_at = serializers.DateTimeField()


class NoteListOut(serializers.Serializer):
    data = NoteOut(many=True)


class PickerTemplateOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    language = serializers.CharField()
    category = serializers.CharField()
    parameter_format = serializers.CharField()
    variables = serializers.ListField(child=serializers.CharField())
    header = serializers.CharField(allow_blank=True)
    body = serializers.CharField(allow_blank=True)
    footer = serializers.CharField(allow_blank=True)
    buttons = serializers.ListField(child=serializers.CharField(allow_blank=True))
    waba_id = serializers.CharField()


class PickerTemplateListOut(serializers.Serializer):
    data = PickerTemplateOut(many=True)


class EventEnvelopeOut(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    created_at = serializers.DateTimeField()
    workspace_id = serializers.CharField()
    sandbox = serializers.BooleanField()
    sequence = serializers.IntegerField()
    data = serializers.DictField()


class InboxEventsOut(serializers.Serializer):
    data = EventEnvelopeOut(many=True)
    reset = serializers.BooleanField(help_text="The gap cannot be replayed: reload state.")
    sequence = serializers.IntegerField(help_text="The workspace's current sequence.")


class CannedResponseOut(serializers.Serializer):
    id = serializers.CharField()
    shortcut = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CannedResponseListOut(serializers.Serializer):
    data = CannedResponseOut(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class AutoReplyRuleOut(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField()
    keywords = serializers.ListField(child=serializers.CharField())
    match = serializers.CharField()
    language = serializers.CharField(allow_blank=True)
    reply_text = serializers.CharField()
    priority = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AutoReplySettingsOut(serializers.Serializer):
    cooldown_seconds = serializers.IntegerField()
    timezone = serializers.CharField()
    business_hours = serializers.DictField()
    holidays = serializers.ListField(child=serializers.CharField())


class AutoReplyListOut(serializers.Serializer):
    data = AutoReplyRuleOut(many=True)
    settings = AutoReplySettingsOut()
    next_cursor = serializers.CharField(allow_null=True)


class MediaOut(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.ChoiceField(choices=["image", "video", "audio", "document", "sticker"])
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    filename = serializers.CharField(allow_null=True)
    url = serializers.CharField(help_text="The authenticated download.")
    created_at = serializers.DateTimeField()


class MediaUploadIn(serializers.Serializer):
    file = serializers.FileField(help_text="MIME sniffed from content: images JPEG/PNG ≤5 MB, video MP4/3GP ≤16 MB, "
                                 "audio AAC/MP3/OGG/AMR/MP4 ≤16 MB, documents ≤100 MB, stickers WebP ≤500 KB.")
    filename = serializers.CharField(max_length=255, required=False)


class SandboxInboundOut(serializers.Serializer):
    wamid = serializers.CharField(help_text="Meta-style message id of the simulated inbound.")
    from_ = serializers.CharField(allow_null=True, help_text="E.164; null for a customer known only by a BSUID.")
    type = serializers.CharField()
    phone_number_id = serializers.CharField(allow_null=True, help_text="null on Messenger / Instagram.")
    channel = serializers.CharField(required=False, help_text="messenger / instagram (absent for WhatsApp).")
    social_account_id = serializers.CharField(required=False, help_text="The sandbox Page / account (sac_…).")
    status = serializers.ChoiceField(choices=["accepted"])

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class SandboxWindowOut(serializers.Serializer):
    contact_id = serializers.CharField()
    last_inbound_at = serializers.DateTimeField(allow_null=True)
    window_expires_at = serializers.DateTimeField(allow_null=True)


def _reply_in() -> type[serializers.Serializer]:
    from apps.conversations.api import schemas_messages as m

    media = {kind: m.MediaContentSerializer(required=False) for kind in ("image", "video", "audio", "document",
                                                                          "sticker")}
    return type("ConversationReplyIn", (serializers.Serializer,), {
        "__doc__": "An agent's reply: `type` and the message object of that type (as in POST /api/v1/messages).",
        "type": serializers.ChoiceField(choices=list(m.SEND_VARIANTS)),
        "text": m.TextContentSerializer(required=False),
        "template": m.TemplateContentSerializer(required=False),
        **media,
        "location": m.LocationContentSerializer(required=False),
        "interactive": m.InteractiveContentSerializer(required=False),
        "reaction": m.ReactionContentSerializer(required=False),
    })


ConversationReplyIn = _reply_in()
