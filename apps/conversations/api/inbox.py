"""Inbox API views: parse, call one selector or service, render. Session (CSRF) or API key."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response

from apps.conversations.api import schemas_inbox as out
from apps.conversations.models import AutoReplyRule, CannedResponse
from apps.conversations.selectors import conversations as sel
from apps.conversations.services import autoreplies as ar
from apps.conversations.services import inbox as svc
from apps.core.api.base import ApiView
from apps.core.api.docs import CURSOR, api_doc, paginated, query
from apps.core.errors import ValidationFailed
from apps.core.pagination import parse_limit

READ, WRITE = "inbox:read", "inbox:write"


def _conversation(view: ApiView, pk: str):
    return svc.conversation_for_tenant_or_404(tenant=view.tenant, conversation_id=pk)


class ConversationListView(ApiView):
    scopes = {"GET": READ}

    @api_doc(operation_id="conversations_list", summary="List conversations",
             description="The inbox: conversations with their contact, state, assignee, 24-hour window and "
             "unread count, most recent activity first.",
             parameters=[query("state", enum=out.STATES), query("channel_kind"),
                         query("assigned_user_id", description="A user id, or `none` for unassigned."),
                         query("limit", int), CURSOR],
             responses={200: paginated(out.ConversationOut)})
    def get(self, request):
        items, next_cursor = sel.conversations_list(tenant=self.tenant, params=request.query_params)
        return Response({"data": [sel.conversation_to_dict(c) for c in items], "next_cursor": next_cursor})


class ConversationDetailView(ApiView):
    scopes = {"GET": READ, "PATCH": WRITE}

    class PatchInput(serializers.Serializer):
        state = serializers.ChoiceField(choices=["open", "pending", "resolved", "snoozed"], required=False)
        assigned_user_id = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)
        snooze_until = serializers.DateTimeField(required=False, allow_null=True)

    @api_doc(operation_id="conversations_get", summary="Get a conversation",
             description="One conversation; `?expand=contact` adds the contact sidebar.",
             parameters=[query("expand", enum=["contact"])], responses={200: out.ConversationDetailOut})
    def get(self, request, pk):
        conversation = _conversation(self, pk)
        data = sel.conversation_to_dict(conversation)
        if request.query_params.get("expand") == "contact":
            data["contact_details"] = sel.contact_sidebar(conversation=conversation)
        return Response(data)

    @api_doc(operation_id="conversations_update", summary="Change state, assignee or snooze",
             description="Sets `state`, `assigned_user_id` (null or empty unassigns) and/or `snooze_until`; emits "
             "`conversation.status_changed` / `conversation.assigned`.", request=PatchInput,
             responses={200: out.ConversationOut})
    def patch(self, request, pk):
        conversation = _conversation(self, pk)
        self.audit_target = ("conversation", conversation.pk)
        payload = self.PatchInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if not data:
            raise ValidationFailed("Give state, assigned_user_id or snooze_until.", field="state")
        kwargs = {}
        if "state" in data:
            kwargs["state"] = data["state"]
        if "assigned_user_id" in data:
            kwargs["assigned_user_id"] = data["assigned_user_id"] or None
        if "snooze_until" in data:
            kwargs["snooze_until"] = data["snooze_until"]
        updated = svc.conversation_update(conversation=conversation, actor=self.tenant.user, **kwargs)
        return Response(sel.conversation_to_dict(updated))


class ConversationMessagesView(ApiView):
    """GET: history, newest first. POST: an agent's reply through the send road (Idempotency-Key)."""

    scopes = {"GET": READ, "POST": WRITE}

    class ReplyInput(serializers.Serializer):
        type = serializers.ChoiceField(choices=["text", "template", "image", "video", "audio", "document",
                                                "sticker", "location", "interactive", "reaction", "contacts"])

    @api_doc(operation_id="conversations_messages_list", summary="A conversation's messages",
             description="History, newest first: `?before_id=` pages back, `?after_id=` catches up.",
             parameters=[query("before_id"), query("after_id"), query("limit", int, "Default 50, at most 200.")],
             responses={200: out.ThreadPageOut})
    def get(self, request, pk):
        conversation = _conversation(self, pk)
        limit = parse_limit(request.query_params.get("limit"), default=50, maximum=200)
        items = sel.conversation_messages(conversation=conversation, before_id=request.query_params.get("before_id"),
                                          after_id=request.query_params.get("after_id"), limit=limit + 1)
        has_more = len(items) > limit
        return Response({"data": [sel.message_to_dict(m) for m in items[:limit]], "has_more": has_more})

    @api_doc(operation_id="conversations_reply", summary="Reply in a conversation",
             description="An agent's reply through the send road (the same policy as POST /api/v1/messages); "
             "202 when queued.", request=out.ConversationReplyIn, responses={202: out.ThreadMessageOut},
             errors=(402,))
    def post(self, request, pk):
        conversation = _conversation(self, pk)
        payload = self.ReplyInput(data=request.data)
        payload.is_valid(raise_exception=True)
        message_type = payload.validated_data["type"]
        content = request.data.get(message_type)
        if not isinstance(content, dict):
            raise ValidationFailed(f"{message_type} must be an object.", field=message_type)
        if message_type == "text":
            body = content.get("body")
            if not isinstance(body, str) or not body.strip():
                raise ValidationFailed("text.body is required.", field="text.body")
            if len(body) > 4096:
                raise ValidationFailed("text.body is at most 4096 characters.", field="text.body")
        message = svc.conversation_reply(conversation=conversation, user=self.tenant.user,
                                         message_type=message_type, content=content)
        self.audit_target = ("message", message.pk)
        return Response(sel.message_to_dict(message), status=status.HTTP_202_ACCEPTED)


class ConversationNotesView(ApiView):
    scopes = {"GET": READ, "POST": WRITE}

    class NoteInput(serializers.Serializer):
        body = serializers.CharField(max_length=10_000)

    @api_doc(operation_id="conversations_notes_list", summary="A conversation's internal notes",
             description="Notes agents left on the conversation (never sent to the customer), newest first.",
             responses={200: out.NoteListOut})
    def get(self, request, pk):
        conversation = _conversation(self, pk)
        return Response({"data": [sel.note_to_dict(n) for n in sel.conversation_notes(conversation=conversation)]})

    @api_doc(operation_id="conversations_notes_create", summary="Add an internal note",
             description="A note only agents see.", request=NoteInput, responses={201: out.NoteOut})
    def post(self, request, pk):
        conversation = _conversation(self, pk)
        payload = self.NoteInput(data=request.data)
        payload.is_valid(raise_exception=True)
        note = svc.note_create(conversation=conversation, author=self.tenant.user, body=payload.validated_data["body"])
        self.audit_target = ("note", note.pk)
        return Response(sel.note_to_dict(note), status=status.HTTP_201_CREATED)


class ConversationReadView(ApiView):
    scopes = {"POST": WRITE}

    @api_doc(operation_id="conversations_mark_read", summary="Mark a conversation read",
             description="Sets its unread count to zero.", request=None, responses={200: out.ConversationOut})
    def post(self, request, pk):
        conversation = _conversation(self, pk)
        self.audit_target = ("conversation", conversation.pk)
        svc.conversation_mark_read(conversation=conversation)
        return Response(sel.conversation_to_dict(conversation))


class ConversationTemplatesView(ApiView):
    """Approved templates the conversation's sender number can send (the composer's picker)."""

    scopes = {"GET": READ}

    @api_doc(operation_id="conversations_templates", summary="Templates for a conversation",
             description="Approved templates the conversation's sender number can send (the composer's picker).",
             responses={200: out.PickerTemplateListOut})
    def get(self, request, pk):
        conversation = _conversation(self, pk)
        waba_id = conversation.phone_number.waba_id if conversation.phone_number_id else None
        items = sel.approved_templates(tenant=self.tenant, waba_id=waba_id)
        return Response({"data": [sel.template_to_picker(t) for t in items]})


class InboxEventsView(ApiView):
    """Everything after a sequence, for a client resuming over HTTP; `reset` means reload state."""

    scopes = {"GET": READ}

    @api_doc(operation_id="inbox_events", summary="Events after a sequence",
             description="Everything after `?after=` for a client resuming over HTTP; `reset` means reload state.",
             parameters=[query("after", int, "The last sequence the client saw.")],
             responses={200: out.InboxEventsOut})
    def get(self, request):
        raw = request.query_params.get("after", "0")
        try:
            after = int(raw)
        except (TypeError, ValueError):
            raise ValidationFailed("after must be a sequence number.", field="after")
        events, reset, current = sel.inbox_events_after(tenant=self.tenant, after_sequence=after)
        return Response({"data": events, "reset": reset, "sequence": current})


# --- canned responses ---------------------------------------------------------------------------------


class CannedInput(serializers.Serializer):
    shortcut = serializers.CharField(max_length=64)
    body = serializers.CharField(max_length=4096)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class CannedPatchInput(CannedInput):
    shortcut = serializers.CharField(max_length=64, required=False)
    body = serializers.CharField(max_length=4096, required=False)


class CannedResponseListView(ApiView):
    scopes = {"GET": READ, "POST": WRITE}

    @api_doc(operation_id="canned_responses_list", summary="List canned responses",
             description="Saved replies agents insert with their shortcut, by shortcut.",
             responses={200: out.CannedResponseListOut})
    def get(self, request):
        items = sel.canned_responses(workspace=self.tenant.workspace)
        return Response({"data": [sel.canned_response_to_dict(c) for c in items[:500]], "next_cursor": None})

    @api_doc(operation_id="canned_responses_create", summary="Create a canned response",
             description="A saved reply; `shortcut` is unique in the workspace.", request=CannedInput,
             responses={201: out.CannedResponseOut})
    def post(self, request):
        payload = CannedInput(data=request.data)
        payload.is_valid(raise_exception=True)
        item = svc.canned_response_create(workspace=self.tenant.workspace, created_by=self.tenant.user,
                                          **payload.validated_data)
        self.audit_target = ("canned_response", item.pk)
        return Response(sel.canned_response_to_dict(item), status=status.HTTP_201_CREATED)


class CannedResponseDetailView(ApiView):
    scopes = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @api_doc(operation_id="canned_responses_get", summary="Get a canned response", description="One saved reply.",
             responses={200: out.CannedResponseOut})
    def get(self, request, pk):
        return Response(sel.canned_response_to_dict(self.get_scoped(CannedResponse, pk)))

    @api_doc(operation_id="canned_responses_update", summary="Update a canned response",
             description="Only the fields given change.", request=CannedPatchInput,
             responses={200: out.CannedResponseOut})
    def patch(self, request, pk):
        item = self.get_scoped(CannedResponse, pk)
        payload = CannedInput(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        item = svc.canned_response_update(item=item, shortcut=data.get("shortcut"), body=data.get("body"),
                                          title=data.get("title"))
        return Response(sel.canned_response_to_dict(item))

    @api_doc(operation_id="canned_responses_delete", summary="Delete a canned response",
             description="Removes the saved reply.", responses={204: None})
    def delete(self, request, pk):
        item = self.get_scoped(CannedResponse, pk)
        svc.canned_response_delete(item=item)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- auto-replies ----------------------------------------------------------------------------------------


class AutoReplyInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AutoReplyRule.Kind.values)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    enabled = serializers.BooleanField(required=False, default=True)
    keywords = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list,
                                     max_length=50)
    match = serializers.ChoiceField(choices=AutoReplyRule.Match.values, required=False, default="contains")
    language = serializers.CharField(max_length=15, required=False, allow_blank=True, default="")
    reply_text = serializers.CharField(max_length=4096)
    priority = serializers.IntegerField(min_value=0, max_value=1000, required=False, default=100)


class AutoReplyPatchInput(AutoReplyInput):
    kind = serializers.ChoiceField(choices=AutoReplyRule.Kind.values, required=False)
    reply_text = serializers.CharField(max_length=4096, required=False)


class AutoReplySettingsInput(serializers.Serializer):
    cooldown_seconds = serializers.IntegerField(min_value=0, max_value=30 * 86400, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    business_hours = serializers.DictField(required=False)
    holidays = serializers.ListField(child=serializers.DateField(), required=False, max_length=366)


class AutoReplyListView(ApiView):
    """GET: the rules and the workspace settings. POST: a new rule."""

    scopes = {"GET": READ, "POST": WRITE}

    @api_doc(operation_id="auto_replies_list", summary="List auto-reply rules",
             description="The rules (keyword, welcome, away…) by priority, and the workspace's settings.",
             responses={200: out.AutoReplyListOut})
    def get(self, request):
        workspace = self.tenant.workspace
        rules = [sel.auto_reply_rule_to_dict(r) for r in sel.auto_reply_rules(workspace=workspace)]
        settings_row = sel.auto_reply_settings_get(workspace=workspace)
        return Response({"data": rules, "settings": sel.auto_reply_settings_to_dict(settings_row),
                         "next_cursor": None})

    @api_doc(operation_id="auto_replies_create", summary="Create an auto-reply rule",
             description="A rule answering inbound messages automatically.", request=AutoReplyInput,
             responses={201: out.AutoReplyRuleOut})
    def post(self, request):
        payload = AutoReplyInput(data=request.data)
        payload.is_valid(raise_exception=True)
        rule = ar.auto_reply_rule_create(workspace=self.tenant.workspace, **payload.validated_data)
        self.audit_target = ("auto_reply_rule", rule.pk)
        return Response(sel.auto_reply_rule_to_dict(rule), status=status.HTTP_201_CREATED)


class AutoReplyDetailView(ApiView):
    scopes = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @api_doc(operation_id="auto_replies_get", summary="Get an auto-reply rule", description="One rule.",
             responses={200: out.AutoReplyRuleOut})
    def get(self, request, pk):
        return Response(sel.auto_reply_rule_to_dict(self.get_scoped(AutoReplyRule, pk)))

    @api_doc(operation_id="auto_replies_update", summary="Update an auto-reply rule",
             description="Only the fields given change.", request=AutoReplyPatchInput,
             responses={200: out.AutoReplyRuleOut})
    def patch(self, request, pk):
        rule = self.get_scoped(AutoReplyRule, pk)
        payload = AutoReplyInput(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        fields = {k: v for k, v in payload.validated_data.items() if k in request.data}
        rule = ar.auto_reply_rule_update(rule=rule, **fields)
        return Response(sel.auto_reply_rule_to_dict(rule))

    @api_doc(operation_id="auto_replies_delete", summary="Delete an auto-reply rule", description="Removes the rule.",
             responses={204: None})
    def delete(self, request, pk):
        ar.auto_reply_rule_delete(rule=self.get_scoped(AutoReplyRule, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AutoReplySettingsView(ApiView):
    scopes = {"GET": READ, "PATCH": WRITE, "PUT": WRITE}

    @api_doc(operation_id="auto_replies_settings_get", summary="Get auto-reply settings",
             description="Cooldown, time zone, business hours and holidays.", responses={200: out.AutoReplySettingsOut})
    def get(self, request):
        return Response(sel.auto_reply_settings_to_dict(sel.auto_reply_settings_get(workspace=self.tenant.workspace)))

    @api_doc(operation_id="auto_replies_settings_update", summary="Change auto-reply settings",
             description="Only the fields given change.", request=AutoReplySettingsInput,
             responses={200: out.AutoReplySettingsOut})
    def patch(self, request):
        payload = AutoReplySettingsInput(data=request.data)
        payload.is_valid(raise_exception=True)
        row = ar.auto_reply_settings_set(workspace=self.tenant.workspace, **payload.validated_data)
        return Response(sel.auto_reply_settings_to_dict(row))

    @api_doc(operation_id="auto_replies_settings_replace", summary="Set auto-reply settings",
             description="The same as PATCH: only the fields given change.", request=AutoReplySettingsInput,
             responses={200: out.AutoReplySettingsOut})
    def put(self, request):
        return self.patch(request)
