"""GET/POST /api/v1/social-accounts, GET/DELETE /api/v1/social-accounts/{id}: the Facebook Pages
(Messenger) and Instagram professional accounts connected beside the WABAs (API.md "Other channels")."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.core.api.docs import PAGE_PARAMETERS, api_doc, paginated
from apps.core.errors import ValidationFailed
from apps.wabas import services
from apps.wabas.models import SocialAccount, Waba


def _ts(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def social_account_out(account: SocialAccount) -> dict:
    return {"id": account.pk, "channel": account.channel, "page_id": account.page_id,
            "ig_user_id": account.ig_user_id or None, "name": account.name, "waba_id": account.waba_id,
            "simulated": account.is_simulated, "created_at": _ts(account.created_at)}


class SocialAccountOut(serializers.Serializer):
    id = serializers.CharField(help_text="sac_…")
    channel = serializers.ChoiceField(choices=SocialAccount.Channel.values)
    page_id = serializers.CharField(help_text="The Facebook Page id (an Instagram account's linked Page).")
    ig_user_id = serializers.CharField(allow_null=True, help_text="Instagram only: the professional account's id.")
    name = serializers.CharField(allow_blank=True)
    waba_id = serializers.CharField(allow_null=True, help_text="The WABA it is connected beside (bound keys "
                                    "see only their WABA's accounts), or null.")
    simulated = serializers.BooleanField(help_text="Served by the built-in simulator (sandbox).")
    created_at = serializers.DateTimeField()


class SocialAccountIn(serializers.Serializer):
    channel = serializers.ChoiceField(choices=SocialAccount.Channel.values)
    page_id = serializers.CharField(required=False, allow_blank=True, max_length=64,
                                    help_text="Meta's Page id (digits); required live.")
    ig_user_id = serializers.CharField(required=False, allow_blank=True, max_length=64,
                                       help_text="Instagram: the professional account's id (digits); required live.")
    access_token = serializers.CharField(required=False, allow_blank=True, max_length=1024, write_only=True,
                                         help_text="The Page access token (stored encrypted); required live.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    waba_id = serializers.CharField(required=False, allow_null=True, max_length=64,
                                    help_text="Optional: the WABA to connect it beside (waba_…).")


READ, WRITE = "messages:read", "templates:write"


class SocialAccountListView(ApiView):
    scopes = {"GET": READ, "POST": WRITE}

    @api_doc(operation_id="social_accounts_list", summary="List connected Messenger / Instagram accounts",
             description="The Facebook Pages and Instagram accounts the key may send from.",
             parameters=PAGE_PARAMETERS, responses={200: paginated(SocialAccountOut)})
    def get(self, request):
        return self.paginated(self.scoped(SocialAccount), social_account_out, newest_first=False)

    @api_doc(operation_id="social_accounts_connect", summary="Connect a Page or Instagram account",
             description="Connects a Facebook Page (`messenger`) or an Instagram professional account "
             "(`instagram`): its messages then arrive through /webhooks/meta and go out through Meta's Send API. "
             "Connecting the same account again updates its token (200). With a test key the account is "
             "simulated (ids are made up when not given). An account of another workspace: 409. Needs the "
             "templates:write scope.", request=SocialAccountIn,
             responses={201: (SocialAccountOut, "Connected."), 200: (SocialAccountOut, "Already connected; updated.")},
             errors=(409,))
    def post(self, request):
        data = SocialAccountIn(data=request.data if isinstance(request.data, dict) else {})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        waba = None
        waba_id = values.get("waba_id") or self.tenant.waba_id or None
        if waba_id:
            waba = self.scoped(Waba).filter(pk=waba_id).first()
            if waba is None:
                raise ValidationFailed("No such WABA.", field="waba_id")
        account, created = services.social_account_connect(
            workspace=self.tenant.workspace, channel=values["channel"], page_id=values.get("page_id", ""),
            ig_user_id=values.get("ig_user_id", ""), access_token=values.get("access_token", ""),
            name=values.get("name", ""), waba=waba)
        self.audit_target = ("social_account", account.pk)
        return Response(social_account_out(account), status=201 if created else 200)


class SocialAccountDetailView(ApiView):
    scopes = {"GET": READ, "DELETE": WRITE}

    @api_doc(operation_id="social_accounts_get", summary="Get a connected Messenger / Instagram account",
             description="One connected Page or Instagram account.", responses={200: SocialAccountOut})
    def get(self, request, pk: str):
        return Response(social_account_out(self.get_scoped(SocialAccount, pk)))

    @api_doc(operation_id="social_accounts_remove", summary="Disconnect a Page or Instagram account",
             description="Nothing more is sent or received through it; its conversations and messages stay. "
             "Needs the templates:write scope.", responses={204: None})
    def delete(self, request, pk: str):
        account = self.get_scoped(SocialAccount, pk)
        self.audit_target = ("social_account", account.pk)
        services.social_account_remove(account=account)
        return Response(status=status.HTTP_204_NO_CONTENT)
