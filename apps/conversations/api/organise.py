"""Inbox organisation API: labels, labelling threads (one or in bulk), teams, bulk actions, saved views,
presence and the typing indicator. Session (CSRF) or API key; each view parses, calls one service or
selector, renders."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.conversations.models import Label, SavedView, Team
from apps.conversations.selectors import organise as sel
from apps.conversations.services import organise as svc
from apps.conversations.services.inbox import conversation_for_tenant_or_404
from apps.conversations.services.typing import conversation_typing
from apps.core.api.base import ApiView
from apps.core.errors import PermissionDeniedError, ValidationFailed

READ, WRITE = "inbox:read", "inbox:write"
_COLOR_HELP = "A #rrggbb hex colour."


class LabelOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    color = serializers.CharField(help_text=_COLOR_HELP)
    created_at = serializers.DateTimeField()


class LabelListOut(serializers.Serializer):
    data = LabelOut(many=True)


class LabelIn(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    color = serializers.CharField(max_length=7, required=False, help_text=_COLOR_HELP)


class LabelListView(ApiView):
    scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(operation_id="labels_list", summary="List conversation labels", tags=["Inbox"],
                   description="Every label of the workspace (live or sandbox), by name.",
                   responses={200: LabelListOut})
    def get(self, request):
        return Response({"data": [sel.label_to_dict(lb) for lb in sel.labels(workspace=self.tenant.workspace)]})

    @extend_schema(operation_id="labels_create", summary="Create a label", tags=["Inbox"],
                   description="A new colour-coded label. A name the workspace has already is 409. Appends "
                               "`label.changed`.",
                   request=LabelIn, responses={201: LabelOut})
    def post(self, request):
        payload = LabelIn(data=request.data)
        payload.is_valid(raise_exception=True)
        label = svc.label_create(workspace=self.tenant.workspace, **payload.validated_data)
        self.audit_target = ("label", label.pk)
        return Response(sel.label_to_dict(label), status=status.HTTP_201_CREATED)


class LabelDetailView(ApiView):
    scopes = {"PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(operation_id="labels_update", summary="Rename or recolour a label", tags=["Inbox"],
                   description="Appends `label.changed`.", request=LabelIn(partial=True), responses={200: LabelOut})
    def patch(self, request, pk):
        label = self.get_scoped(Label, pk)
        payload = LabelIn(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        label = svc.label_update(label=label, **payload.validated_data)
        return Response(sel.label_to_dict(label))

    @extend_schema(operation_id="labels_delete", summary="Delete a label", tags=["Inbox"],
                   description="Removes it from every conversation. Appends `label.changed`.",
                   responses={204: None})
    def delete(self, request, pk):
        svc.label_delete(label=self.get_scoped(Label, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class LabelsChangeIn(serializers.Serializer):
    add = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list,
                                max_length=50)
    remove = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list,
                                   max_length=50)


class ConversationLabelsOut(serializers.Serializer):
    conversation_id = serializers.CharField()
    label_ids = serializers.ListField(child=serializers.CharField())


class ConversationLabelsView(ApiView):
    scopes = {"POST": WRITE}

    @extend_schema(operation_id="conversations_labels_change", summary="Add or remove a conversation's labels",
                   tags=["Inbox"], description="Labels of this workspace only (400 with the field otherwise). "
                   "Appends `conversation.labels_changed` when the set changes.",
                   request=LabelsChangeIn, responses={200: ConversationLabelsOut})
    def post(self, request, pk):
        conversation = conversation_for_tenant_or_404(tenant=self.tenant, conversation_id=pk)
        payload = LabelsChangeIn(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if not data["add"] and not data["remove"]:
            raise ValidationFailed("Give add or remove.", field="add")
        self.audit_target = ("conversation", conversation.pk)
        svc.conversations_labels_change(workspace=self.tenant.workspace, conversation_ids=[conversation.pk],
                                        add=data["add"], remove=data["remove"], actor=self.tenant.user)
        ids = sorted(conversation.labels.values_list("pk", flat=True))
        return Response({"conversation_id": conversation.pk, "label_ids": ids})


class BulkIn(serializers.Serializer):
    conversation_ids = serializers.ListField(child=serializers.CharField(max_length=40), max_length=svc.BULK_MAX)
    action = serializers.ChoiceField(choices=["assign", "label", "unlabel", "resolve", "reopen"])
    assigned_user_id = serializers.CharField(max_length=40, required=False, allow_blank=True,
                                             help_text="assign: the agent (blank: unassign).")
    team_id = serializers.CharField(max_length=40, required=False, allow_blank=True,
                                    help_text="assign: the team (blank: no team).")
    label_ids = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list,
                                     max_length=50)


class BulkOut(serializers.Serializer):
    updated = serializers.IntegerField()


class ConversationBulkView(ApiView):
    scopes = {"POST": WRITE}

    @extend_schema(operation_id="conversations_bulk", summary="Act on many conversations at once",
                   tags=["Inbox"], description="assign (agent and/or team), label, unlabel, resolve or reopen up "
                   f"to {svc.BULK_MAX} conversations in one transaction: all of them or none (404 names an id "
                   "the workspace does not have). Each change appends its usual event.",
                   request=BulkIn, responses={200: BulkOut})
    def post(self, request):
        payload = BulkIn(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if data["action"] == "assign" and "assigned_user_id" not in data and "team_id" not in data:
            raise ValidationFailed("assign needs assigned_user_id or team_id.", field="assigned_user_id")
        result = svc.conversations_bulk(
            workspace=self.tenant.workspace, actor=self.tenant.user, conversation_ids=data["conversation_ids"],
            action=data["action"], assigned_user_id=data.get("assigned_user_id"), team_id=data.get("team_id"),
            label_ids=data["label_ids"])
        return Response(result)


class TeamOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    member_ids = serializers.ListField(child=serializers.CharField())
    auto_assign = serializers.BooleanField()
    max_open_per_agent = serializers.IntegerField(help_text="0: no cap.")
    inbound_default = serializers.BooleanField(help_text="New customer conversations join this team.")
    created_at = serializers.DateTimeField()


class TeamListOut(serializers.Serializer):
    data = TeamOut(many=True)


class TeamIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    member_ids = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=500)
    auto_assign = serializers.BooleanField(required=False)
    max_open_per_agent = serializers.IntegerField(min_value=0, max_value=10_000, required=False)
    inbound_default = serializers.BooleanField(required=False)


class TeamListView(ApiView):
    scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(operation_id="teams_list", summary="List teams", tags=["Inbox"],
                   description="Teams with their members and assignment settings.", responses={200: TeamListOut})
    def get(self, request):
        return Response({"data": [sel.team_to_dict(t) for t in sel.teams(workspace=self.tenant.workspace)]})

    @extend_schema(operation_id="teams_create", summary="Create a team", tags=["Inbox"],
                   description="Members must belong to the workspace. auto_assign spreads the team's new customer "
                               "conversations round-robin over its online members (fewest open first, none above "
                               "max_open_per_agent). Appends `team.changed`.",
                   request=TeamIn, responses={201: TeamOut})
    def post(self, request):
        payload = TeamIn(data=request.data)
        payload.is_valid(raise_exception=True)
        team = svc.team_save(workspace=self.tenant.workspace, **payload.validated_data)
        self.audit_target = ("team", team.pk)
        return Response(sel.team_to_dict(team), status=status.HTTP_201_CREATED)


class TeamDetailView(ApiView):
    scopes = {"PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(operation_id="teams_update", summary="Change a team", tags=["Inbox"],
                   description="member_ids replaces the member list. Appends `team.changed`.",
                   request=TeamIn(partial=True), responses={200: TeamOut})
    def patch(self, request, pk):
        team = self.get_scoped(Team, pk)
        payload = TeamIn(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        team = svc.team_save(workspace=self.tenant.workspace, team=team, **payload.validated_data)
        return Response(sel.team_to_dict(team))

    @extend_schema(operation_id="teams_delete", summary="Delete a team", tags=["Inbox"],
                   description="Its conversations keep their agents and lose the team. Appends `team.changed`.",
                   responses={204: None})
    def delete(self, request, pk):
        svc.team_delete(team=self.get_scoped(Team, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SavedViewOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    filters = serializers.DictField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class SavedViewListOut(serializers.Serializer):
    data = SavedViewOut(many=True)


class SavedViewIn(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    filters = serializers.DictField(child=serializers.CharField(max_length=200, allow_blank=True),
                                    help_text=f"Any of: {', '.join(svc.VIEW_FILTERS)}.")


def _need_user(view: ApiView):
    if view.tenant.user is None:
        raise PermissionDeniedError("Saved views and presence belong to a signed-in user, not an API key.")
    return view.tenant.user


class SavedViewListView(ApiView):
    scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(operation_id="inbox_views_list", summary="List my saved views", tags=["Inbox"],
                   description="The signed-in agent's named list filters.", responses={200: SavedViewListOut})
    def get(self, request):
        user = _need_user(self)
        items = sel.saved_views(workspace=self.tenant.workspace, user=user)
        return Response({"data": [sel.saved_view_to_dict(v) for v in items]})

    @extend_schema(operation_id="inbox_views_create", summary="Save the current filters as a view",
                   tags=["Inbox"], description="A name the agent has already is 409.",
                   request=SavedViewIn, responses={201: SavedViewOut})
    def post(self, request):
        user = _need_user(self)
        payload = SavedViewIn(data=request.data)
        payload.is_valid(raise_exception=True)
        view = svc.saved_view_create(workspace=self.tenant.workspace, user=user, **payload.validated_data)
        return Response(sel.saved_view_to_dict(view), status=status.HTTP_201_CREATED)


class SavedViewDetailView(ApiView):
    scopes = {"DELETE": WRITE}

    @extend_schema(operation_id="inbox_views_delete", summary="Delete a saved view", tags=["Inbox"],
                   description="Only the agent's own views.", responses={204: None})
    def delete(self, request, pk):
        view = self.get_scoped(SavedView, pk)  # another workspace's id: 404 before anything else
        user = _need_user(self)
        if view.user_id != user.pk:
            from apps.core.errors import NotFound

            raise NotFound("No such view.")
        svc.saved_view_delete(view=view)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PresenceOut(serializers.Serializer):
    user_id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["online", "away", "offline"])
    last_seen_at = serializers.DateTimeField(allow_null=True)


class PresenceListOut(serializers.Serializer):
    data = PresenceOut(many=True)


class PresenceIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=["online", "away"])


class PresenceView(ApiView):
    scopes = {"GET": READ, "PUT": WRITE}

    @extend_schema(operation_id="inbox_presence_list", summary="Who is online", tags=["Inbox"],
                   description="Every agent: online or away while their inbox heartbeats, else offline.",
                   responses={200: PresenceListOut})
    def get(self, request):
        return Response({"data": sel.presence_list(workspace=self.tenant.workspace)})

    @extend_schema(operation_id="inbox_presence_set", summary="Set my presence", tags=["Inbox"],
                   description="online or away (away agents get no auto-assigned conversations). Appends "
                               "`agent.presence_changed` when it changes.",
                   request=PresenceIn, responses={200: PresenceListOut})
    def put(self, request):
        user = _need_user(self)
        payload = PresenceIn(data=request.data)
        payload.is_valid(raise_exception=True)
        svc.presence_set(workspace=self.tenant.workspace, user=user, status=payload.validated_data["status"])
        return Response({"data": sel.presence_list(workspace=self.tenant.workspace)})


class TypingOut(serializers.Serializer):
    sent = serializers.BooleanField(help_text="False when there is no customer message to mark (nothing sent).")


class ConversationTypingView(ApiView):
    scopes = {"POST": WRITE}

    @extend_schema(operation_id="conversations_typing", summary="Show the customer that an agent is typing",
                   tags=["Inbox"], description="Marks the customer's last message read with Meta's typing "
                   "indicator (it shows for up to 25 s or until the reply). Only inside the customer service "
                   "window and for WhatsApp; otherwise `sent` is false and nothing is sent.",
                   request=None, responses={200: TypingOut})
    def post(self, request, pk):
        conversation = conversation_for_tenant_or_404(tenant=self.tenant, conversation_id=pk)
        return Response({"sent": conversation_typing(conversation=conversation)})


