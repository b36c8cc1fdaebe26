from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api.base import ANY_SCOPE, ApiView
from apps.core.api.docs import api_doc


class WorkspaceCurrentView(ApiView):
    """GET /api/v1/workspace: which workspace (live or sandbox) and scopes the caller's credentials act on."""

    scopes = {"GET": ANY_SCOPE}

    class WorkspaceOut(serializers.Serializer):
        """The caller's workspace and credentials."""

        id = serializers.CharField(help_text="The live workspace id (sandbox keys report their live twin's id)")
        name = serializers.CharField()
        slug = serializers.CharField()
        sandbox = serializers.BooleanField()
        plan = serializers.CharField()
        scopes = serializers.ListField(child=serializers.CharField())
        waba_id = serializers.CharField(allow_null=True)
        api_key_id = serializers.CharField(allow_null=True)
        user_id = serializers.CharField(allow_null=True)

    @api_doc(operation_id="workspace_get", summary="Who am I",
             description="The workspace (live or sandbox), plan and scopes the caller's credentials act on. "
             "A good first call with a new key.", responses={200: WorkspaceOut})
    def get(self, request):
        tenant = self.tenant
        live = tenant.live_workspace
        return Response(self.WorkspaceOut({
            "id": live.pk, "name": live.name, "slug": live.slug, "sandbox": tenant.is_sandbox, "plan": live.plan,
            "scopes": sorted(tenant.scopes), "waba_id": tenant.waba_id or None,
            "api_key_id": tenant.api_key.pk if tenant.api_key else None,
            "user_id": tenant.user.pk if tenant.user else None,
        }).data)
