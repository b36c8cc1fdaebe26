"""The typed shapes of /api/v1/messages (API.md Messages): the send body as a oneOf on `type`, the 202
answer and the message. Validation of the send stays in conversations.services.validation (one rule, used
by the API, the inbox and campaigns); these serializers are its published form, and the contract tests
hold the two together (every response the suite produces is validated against them)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer
from rest_framework import serializers

from apps.conversations.policy import SOCIAL_CHANNELS, channel_tags
from apps.conversations.services.validation import CHANNELS, MESSAGE_TYPES

STATUSES = ["scheduled", "queued", "sent", "delivered", "read", "failed", "canceled"]
# An inbound message's status (GET answers list both directions).
MESSAGE_STATUSES = [*STATUSES, "received"]


# --- the send body -------------------------------------------------------------------------------------


class SmsFallbackSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=1600)
    sender = serializers.CharField(max_length=16, required=False)


class FallbackSerializer(serializers.Serializer):
    sms = SmsFallbackSerializer(help_text="Sent as SMS if WhatsApp fails with a non-retryable error.")


class EmailOptionsSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=998, required=False,
                                    help_text="Default: \"Re:\" the customer's last subject in the conversation.")
    html = serializers.CharField(max_length=512 * 1024, required=False,
                                 help_text="The HTML alternative of text.body.")
    marketing = serializers.BooleanField(required=False, help_text="Marketing mail: the consent rule of "
                                         "marketing applies and a List-Unsubscribe header is added.")


class _SendCommon(serializers.Serializer):
    to = serializers.CharField(max_length=170, required=False,
                               help_text="E.164, e.g. +15551234567 (spaces and dashes removed), or an email "
                               "address when channel is email. `to` or `recipient`.")
    recipient = serializers.CharField(max_length=170, required=False,
                                      help_text="A business-scoped user id (API.md Identity), for a customer "
                                      "without a phone; `to` wins when both are given. Messenger / Instagram: the "
                                      "customer's PSID / IGSID (digits), as their messages carry it.")
    channel = serializers.ChoiceField(choices=list(CHANNELS), required=False, default="whatsapp",
                                      help_text="messenger and instagram go out through Meta's Send API from a "
                                      "connected Page / Instagram account, inside that channel's reply window; "
                                      "email: a text message (with email.html) through the workspace's email "
                                      "channel, threaded under the customer's last mail.")
    account_id = serializers.CharField(max_length=64, required=False,
                                       help_text="Messenger / Instagram sender pin: a sac_ id or Meta's Page / "
                                       "Instagram account id; needed when several accounts of the channel exist.")
    tag = serializers.ChoiceField(choices=sorted({t for c in SOCIAL_CHANNELS for t in channel_tags(c)}),
                                  required=False,
                                  help_text="Messenger / Instagram message tag, for sends after the 24 h window: "
                                  "HUMAN_AGENT (both, up to 7 days after the customer's last message); "
                                  "CONFIRMED_EVENT_UPDATE, POST_PURCHASE_UPDATE, ACCOUNT_UPDATE (Messenger).")
    phone_number_id = serializers.CharField(
        max_length=64, required=False,
        help_text="Sender pin: a pn_ id or Meta's phone number id; needed when the WABA has several numbers.")
    scheduled_at = serializers.DateTimeField(required=False, help_text="A future time (≤30 days): the message "
                                             "waits in `scheduled`.")
    client_reference = serializers.CharField(max_length=255, required=False,
                                             help_text="Your id, echoed in events and filterable.")
    fallback = FallbackSerializer(required=False)
    email = EmailOptionsSerializer(required=False, help_text="Only with channel email.")


class TextContentSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=4096)
    preview_url = serializers.BooleanField(required=False)


class TemplateContentSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=512)
    language = serializers.CharField(max_length=15, help_text="e.g. en, en_US, pt_BR")
    variables = serializers.JSONField(
        required=False, help_text="A list of strings for {{1}}…{{n}}, or an object of strings for named "
        "placeholders.")
    components = serializers.ListField(child=serializers.DictField(), required=False,
                                       help_text="Meta-shaped components (header media, buttons…), passed through.")


class MediaContentSerializer(serializers.Serializer):
    media_id = serializers.CharField(max_length=40, required=False, help_text="A med_ id from POST /api/v1/media.")
    link = serializers.URLField(max_length=2048, required=False, help_text="A public https URL.")
    caption = serializers.CharField(max_length=1024, required=False, help_text="image, video and document only.")
    filename = serializers.CharField(max_length=255, required=False, help_text="document only.")


class LocationContentSerializer(serializers.Serializer):
    latitude = serializers.FloatField(min_value=-90, max_value=90)
    longitude = serializers.FloatField(min_value=-180, max_value=180)
    name = serializers.CharField(max_length=1000, required=False)
    address = serializers.CharField(max_length=1000, required=False)


class ButtonSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=256)
    title = serializers.CharField(max_length=20)


class ListRowSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=200)
    title = serializers.CharField(max_length=24)
    description = serializers.CharField(max_length=72, required=False)


class ListSectionSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=24, required=False)
    rows = ListRowSerializer(many=True)


class InteractiveContentSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["buttons", "list", "cta_url", "location_request", "flow"])
    body = serializers.CharField(max_length=4096, help_text="≤1024 characters for buttons.")
    header_text = serializers.CharField(max_length=60, required=False)
    footer = serializers.CharField(max_length=60, required=False)
    buttons = ButtonSerializer(many=True, required=False, help_text="kind=buttons: 1 to 3, unique titles.")
    button = serializers.CharField(max_length=20, required=False, help_text="kind=list: the menu button's label.")
    sections = ListSectionSerializer(many=True, required=False,
                                     help_text="kind=list: ≤10 sections, ≤10 rows in all.")
    display_text = serializers.CharField(max_length=20, required=False, help_text="kind=cta_url: the button.")
    url = serializers.URLField(required=False, help_text="kind=cta_url: an https link.")
    flow_id = serializers.CharField(max_length=64, required=False, help_text="kind=flow: flow_id or flow_name.")
    flow_name = serializers.CharField(max_length=200, required=False)
    flow_cta = serializers.CharField(max_length=30, required=False, help_text="kind=flow: the button, no emoji.")
    flow_action = serializers.ChoiceField(choices=["navigate", "data_exchange"], required=False)
    screen = serializers.CharField(max_length=200, required=False, help_text="kind=flow, navigate: first screen.")
    data = serializers.DictField(required=False, help_text="kind=flow, navigate: the first screen's data.")
    flow_token = serializers.CharField(max_length=200, required=False,
                                       help_text="kind=flow: comes back with the answers; generated when absent.")
    mode = serializers.ChoiceField(choices=["published", "draft"], required=False)


class ReactionContentSerializer(serializers.Serializer):
    message_id = serializers.CharField(max_length=255, help_text="The msg_ id (or wamid) reacted to.")
    emoji = serializers.CharField(max_length=16, allow_blank=True, help_text="Empty removes the reaction.")


class ContactCardNameSerializer(serializers.Serializer):
    formatted_name = serializers.CharField(max_length=1000)


class ContactCardSerializer(serializers.Serializer):
    name = ContactCardNameSerializer()
    phones = serializers.ListField(child=serializers.DictField(), required=False)
    emails = serializers.ListField(child=serializers.DictField(), required=False)


def _variant(message_type: str, content) -> type[serializers.Serializer]:
    name = f"{message_type.capitalize()}MessageSend"
    return type(name, (_SendCommon,), {
        "__doc__": f"Send a {message_type} message.",
        "type": serializers.ChoiceField(choices=[message_type]),
        message_type: content,
    })


SEND_VARIANTS = {
    "text": _variant("text", TextContentSerializer()),
    "template": _variant("template", TemplateContentSerializer()),
    **{kind: _variant(kind, MediaContentSerializer()) for kind in ("image", "video", "audio", "document", "sticker")},
    "location": _variant("location", LocationContentSerializer()),
    "interactive": _variant("interactive", InteractiveContentSerializer()),
    "reaction": _variant("reaction", ReactionContentSerializer()),
    "contacts": _variant("contacts", ContactCardSerializer(many=True)),
}
assert set(SEND_VARIANTS) == set(MESSAGE_TYPES)

MessageSendSerializer = PolymorphicProxySerializer(
    component_name="MessageSend", serializers=SEND_VARIANTS, resource_type_field_name="type",
)

_TO = "+15551234567"
SEND_EXAMPLES = [
    OpenApiExample("text", summary="Text (inside the 24-hour window)", request_only=True,
                   value={"to": _TO, "type": "text", "text": {"body": "Your order has shipped.", "preview_url": False}}),
    OpenApiExample("template positional", summary="Template with {{1}}…{{n}} variables", request_only=True,
                   value={"to": _TO, "type": "template", "template": {
                       "name": "order_confirmation", "language": "en", "variables": ["Ada", "#1042"]}}),
    OpenApiExample("template named", summary="Template with named placeholders", request_only=True,
                   value={"to": _TO, "type": "template", "template": {
                       "name": "order_update", "language": "en_US",
                       "variables": {"first_name": "Ada", "order_id": "#1042"}}}),
    OpenApiExample("template components", summary="Template with Meta components (header image, URL button)",
                   request_only=True, value={"to": _TO, "type": "template", "template": {
                       "name": "delivery_photo", "language": "en", "components": [
                           {"type": "header", "parameters": [
                               {"type": "image", "image": {"link": "https://example.com/parcel.jpg"}}]},
                           {"type": "button", "sub_type": "url", "index": "0",
                            "parameters": [{"type": "text", "text": "1042"}]}]}}),
    *[OpenApiExample(f"{kind} by id", summary=f"{kind.capitalize()} uploaded with POST /api/v1/media",
                     request_only=True, value={"to": _TO, "type": kind, kind: {
                         "media_id": "med_01HNQX2P8Y9R3T4V5W6Z7A8B9C",
                         **({"caption": "Here it is"} if kind in ("image", "video") else {}),
                         **({"filename": "invoice.pdf"} if kind == "document" else {})}})
      for kind in ("image", "video", "audio", "document", "sticker")],
    *[OpenApiExample(f"{kind} by link", summary=f"{kind.capitalize()} from a public https URL",
                     request_only=True, value={"to": _TO, "type": kind, kind: {
                         "link": f"https://example.com/files/sample.{ext}",
                         **({"filename": "sample.pdf"} if kind == "document" else {})}})
      for kind, ext in (("image", "jpg"), ("video", "mp4"), ("audio", "ogg"), ("document", "pdf"),
                        ("sticker", "webp"))],
    OpenApiExample("interactive buttons", summary="Reply buttons (≤3)", request_only=True,
                   value={"to": _TO, "type": "interactive", "interactive": {
                       "kind": "buttons", "body": "Is this delivery time OK?", "footer": "Reply to choose",
                       "buttons": [{"id": "yes", "title": "Yes"}, {"id": "later", "title": "Later"}]}}),
    OpenApiExample("interactive list", summary="List menu (≤10 rows)", request_only=True,
                   value={"to": _TO, "type": "interactive", "interactive": {
                       "kind": "list", "body": "Pick a slot", "button": "Slots", "sections": [
                           {"title": "Tomorrow", "rows": [{"id": "am", "title": "Morning", "description": "9-12"},
                                                          {"id": "pm", "title": "Afternoon"}]}]}}),
    OpenApiExample("location", summary="A location pin", request_only=True,
                   value={"to": _TO, "type": "location", "location": {
                       "latitude": 52.52, "longitude": 13.405, "name": "Pickup point", "address": "Alexanderplatz 1"}}),
    OpenApiExample("reaction", summary="React to a message", request_only=True,
                   value={"to": _TO, "type": "reaction", "reaction": {
                       "message_id": "msg_01HNQX2P8Y9R3T4V5W6Z7A8B9C", "emoji": "👍"}}),
    OpenApiExample("contacts", summary="A contact card", request_only=True,
                   value={"to": _TO, "type": "contacts", "contacts": [
                       {"name": {"formatted_name": "Support desk"}, "phones": [{"phone": "+15550001111"}]}]}),
    OpenApiExample("sms", summary="Plain SMS through the SMS gateway", request_only=True,
                   value={"to": _TO, "channel": "sms", "type": "text", "text": {"body": "Your code is 123456"}}),
    OpenApiExample("email", summary="An email through the email channel", request_only=True,
                   value={"to": "ada@example.com", "channel": "email", "type": "text",
                          "text": {"body": "Your order #1042 has shipped."},
                          "email": {"subject": "Order #1042", "html": "<p>Your order <b>#1042</b> has shipped.</p>"}}),
    OpenApiExample("scheduled", summary="Scheduled for later", request_only=True,
                   value={"to": _TO, "type": "template", "scheduled_at": "2030-01-01T09:00:00Z",
                          "client_reference": "reminder-42",
                          "template": {"name": "appointment_reminder", "language": "en", "variables": ["Ada"]}}),
    OpenApiExample("messenger", summary="Messenger reply from a connected Page, with a tag after 24 h",
                   request_only=True,
                   value={"channel": "messenger", "recipient": "6254481379123456", "tag": "HUMAN_AGENT", "type": "text",
                          "text": {"body": "Sorry for the wait — your refund went out today."}}),
    OpenApiExample("with fallback", summary="Template with SMS fallback", request_only=True,
                   value={"to": _TO, "type": "template",
                          "template": {"name": "order_confirmation", "language": "en", "variables": ["Ada", "#1042"]},
                          "fallback": {"sms": {"text": "Ada, order #1042 is confirmed.", "sender": "ACME"}}}),
]


# --- answers --------------------------------------------------------------------------------------------


class MessageAcceptedSerializer(serializers.Serializer):
    """The 202 answer of a send: stored and queued (or scheduled)."""

    id = serializers.CharField()
    status = serializers.ChoiceField(choices=STATUSES)
    channel = serializers.CharField()
    to = serializers.CharField(allow_null=True)
    recipient = serializers.CharField(required=False, help_text="The BSUID, when the message goes to one.")
    type = serializers.CharField()
    cost_estimate = serializers.CharField(help_text="Decimal string, 4 places.")
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()
    scheduled_at = serializers.DateTimeField(required=False)
    client_reference = serializers.CharField(required=False)


class MessageErrorSerializer(serializers.Serializer):
    code = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True)
    upstream_code = serializers.IntegerField(allow_null=True, help_text="Meta's error code.")
    reason = serializers.CharField(required=False, help_text="A stable reason from the failure table.")
    description = serializers.CharField(required=False, help_text="What happened, for a person.")
    action = serializers.CharField(required=False, help_text="What to do next.")


class MessageSerializer(serializers.Serializer):
    """A message, inbound or outbound, with its delivery state."""

    id = serializers.CharField()
    status = serializers.ChoiceField(choices=MESSAGE_STATUSES)
    direction = serializers.ChoiceField(choices=["inbound", "outbound"])
    channel = serializers.CharField()
    type = serializers.CharField()
    to = serializers.CharField(allow_null=True)
    recipient = serializers.CharField(required=False, help_text="The BSUID, when the message went to one.")
    phone_number_id = serializers.CharField(allow_null=True)
    social_account_id = serializers.CharField(allow_null=True, help_text="Messenger / Instagram: the Page or "
                                              "account (sac_…) it went from or came to.")
    contact_id = serializers.CharField(allow_null=True)
    content = serializers.JSONField(help_text="The normalised message object of its type.")
    body = serializers.CharField(allow_blank=True, help_text="The text a person sees (templates filled in).")
    media_id = serializers.CharField(allow_null=True)
    scheduled_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    canceled_at = serializers.DateTimeField(allow_null=True)
    provider_message_id = serializers.CharField(allow_null=True, allow_blank=True, help_text="Meta's wamid.")
    error = MessageErrorSerializer(allow_null=True)
    attempts = serializers.IntegerField()
    cost_estimate = serializers.CharField()
    cost = serializers.CharField(allow_null=True, help_text="What was charged.")
    currency = serializers.CharField()
    conversation_id = serializers.CharField(allow_null=True)
    campaign_id = serializers.CharField(allow_null=True)
    client_reference = serializers.CharField(allow_null=True)
    fallback_message_id = serializers.CharField(allow_null=True)
    sent_by = serializers.CharField(allow_null=True, allow_blank=True)
    created_at = serializers.DateTimeField()
