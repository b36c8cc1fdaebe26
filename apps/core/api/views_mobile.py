"""The mobile API: per-user tokens (POST/DELETE /api/v1/auth/token, GET /api/v1/auth/tokens,
DELETE /api/v1/auth/tokens/{id}), push devices (POST /api/v1/devices, DELETE /api/v1/devices/{id}) and
the push preference (GET/PATCH /api/v1/me/push-preferences). Thin: parse, call a core service."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import selectors, services
from apps.core.api.base import ANY_SCOPE, ApiView
from apps.core.errors import NotFound, RateLimited
from apps.core.errors import PermissionDeniedError as PermissionDenied
from apps.core.models import Device
from apps.core.permissions import HasTenant


def _ts(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _throttle(request, username: str) -> None:
    """AUTH_TOKEN_ATTEMPTS_PER_MINUTE per client address and per username, counted in Redis (all workers)."""
    from apps.core.redis import get_redis

    limit = settings.AUTH_TOKEN_ATTEMPTS_PER_MINUTE
    r = get_redis()
    for key in (f"reach:authtoken:ip:{_client_ip(request)}", f"reach:authtoken:user:{username.lower()[:150]}"):
        pipe = r.pipeline()
        pipe.incr(key)
        pipe.expire(key, 60, nx=True)
        count, _ = pipe.execute()
        if int(count) > limit:
            ttl = r.ttl(key)
            raise RateLimited("Too many sign-in attempts; wait a minute.",
                              details={"retry_after": ttl if ttl and ttl > 0 else 60})


class TokenIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    device_name = serializers.CharField(max_length=100)
    workspace = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                      help_text="Workspace slug; default: the user's first workspace.")


class TokenOut(serializers.Serializer):
    id = serializers.CharField(help_text="utk_ id")
    device_name = serializers.CharField()
    workspace_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class TokenListOut(serializers.Serializer):
    data = TokenOut(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Always null: a user has few tokens.")


class TokenCreatedOut(TokenOut):
    token = serializers.CharField(help_text="`ut_…`, shown once: send it as `Authorization: Bearer ut_…`.")


def token_out(token) -> dict:
    return {"id": token.pk, "device_name": token.device_name, "workspace_id": token.workspace_id,
            "created_at": _ts(token.created_at), "last_used_at": _ts(token.last_used_at)}


def _user(view: ApiView):
    if view.tenant.user is None:
        raise PermissionDenied("This needs a user's credentials (a user token or a browser session).")
    return view.tenant.user


class AuthTokenView(APIView):
    """POST: sign in with a password and get a user token. DELETE: revoke the token in use."""

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [HasTenant()]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.details.get("retry_after", 60))
        return response

    @extend_schema(operation_id="auth_token_create", summary="Create a user token",
                   description="Signs a user in with username and password and returns a per-user token "
                               "(`ut_…`, shown once) that authenticates the API with the user's role in the "
                               "workspace. Throttled per client address and per username.",
                   request=TokenIn, auth=[],
                   responses={201: TokenCreatedOut, 400: OpenApiResponse(description="VALIDATION_FAILED"),
                              401: OpenApiResponse(description="INVALID_CREDENTIALS"),
                              404: OpenApiResponse(description="NOT_FOUND: not a member of that workspace"),
                              429: OpenApiResponse(description="RATE_LIMITED")}, tags=["auth"])
    def post(self, request):
        data = TokenIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        _throttle(request, v["username"])
        token, secret = services.user_token_create(username=v["username"], password=v["password"],
                                                   device_name=v["device_name"],
                                                   workspace_slug=v.get("workspace", ""), request=request._request)
        return Response(TokenCreatedOut({**token_out(token), "token": secret}).data, status=201)

    @extend_schema(operation_id="auth_token_revoke_current", summary="Revoke the token in use",
                   description="Revokes the user token that authenticates this request; it answers 401 "
                               "from then on.",
                   request=None, responses={204: None, 401: OpenApiResponse(description="INVALID_API_KEY"),
                                            403: OpenApiResponse(description="PERMISSION_DENIED: not a user token")},
                   tags=["auth"])
    def delete(self, request):
        tenant = request.auth
        token_id = tenant.extra.get("user_token_id")
        if not token_id or tenant.user is None:
            raise PermissionDenied("Only a user token can revoke itself.")
        services.user_token_revoke(user=tenant.user, token_id=token_id)
        return Response(status=204)


class AuthTokenListView(ApiView):
    scopes = {"GET": ANY_SCOPE}

    @extend_schema(operation_id="auth_tokens_list", summary="List my tokens",
                   description="The caller's active user tokens (never their secrets).",
                   responses={200: TokenListOut, 403: OpenApiResponse(description="PERMISSION_DENIED")},
                   tags=["auth"])
    def get(self, request):
        return Response({"data": [token_out(t) for t in selectors.user_tokens_list(user=_user(self))],
                         "next_cursor": None})


class AuthTokenDetailView(ApiView):
    scopes = {"DELETE": ANY_SCOPE}

    @extend_schema(operation_id="auth_tokens_revoke", summary="Revoke one of my tokens",
                   description="Revokes one of the caller's user tokens (another device's, say).",
                   request=None, responses={204: None, 404: OpenApiResponse(description="NOT_FOUND")},
                   tags=["auth"])
    def delete(self, request, pk: str):
        if not services.user_token_revoke(user=_user(self), token_id=pk):
            raise NotFound()
        return Response(status=204)


class DeviceIn(serializers.Serializer):
    platform = serializers.ChoiceField(choices=Device.Platform.values)
    push_token = serializers.CharField(max_length=4096)


class DeviceOut(serializers.Serializer):
    id = serializers.CharField(help_text="dev_ id")
    platform = serializers.CharField()
    created_at = serializers.DateTimeField()


class DevicesView(ApiView):
    scopes = {"POST": ANY_SCOPE}

    @extend_schema(operation_id="devices_register", summary="Register a push device",
                   description="Registers an FCM registration token for the calling user in this workspace; "
                               "registering the same token again updates it.",
                   request=DeviceIn, responses={201: DeviceOut, 400: OpenApiResponse(description="VALIDATION_FAILED"),
                                                403: OpenApiResponse(description="PERMISSION_DENIED")},
                   tags=["devices"])
    def post(self, request):
        data = DeviceIn(data=request.data)
        data.is_valid(raise_exception=True)
        device = services.device_register(user=_user(self), workspace=self.tenant.workspace.live,
                                          **data.validated_data)
        return Response(DeviceOut({"id": device.pk, "platform": device.platform,
                                   "created_at": _ts(device.created_at)}).data, status=201)


class DeviceDetailView(ApiView):
    scopes = {"DELETE": ANY_SCOPE}

    @extend_schema(operation_id="devices_delete", summary="Forget a push device", request=None,
                   description="Stops pushes to one of the caller's devices.",
                   responses={204: None, 404: OpenApiResponse(description="NOT_FOUND")}, tags=["devices"])
    def delete(self, request, pk: str):
        if not services.device_delete(user=_user(self), device_id=pk):
            raise NotFound()
        return Response(status=204)


class PushPreferenceSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(required=False, help_text="Pushes for this workspace at all.")
    unassigned = serializers.BooleanField(required=False,
                                          help_text="Also push inbound messages on unassigned conversations.")


class PushPreferenceView(ApiView):
    scopes = {"GET": ANY_SCOPE, "PATCH": ANY_SCOPE}

    @extend_schema(operation_id="push_preferences_get", summary="My push preference",
                   description="Inbound messages on conversations assigned to you are pushed while `enabled`; "
                               "`unassigned` adds those nobody holds.",
                   responses={200: PushPreferenceSerializer}, tags=["devices"])
    def get(self, request):
        pref = selectors.push_preference_get(user=_user(self), workspace=self.tenant.workspace.live)
        return Response({"enabled": pref.enabled, "unassigned": pref.unassigned})

    @extend_schema(operation_id="push_preferences_update", summary="Change my push preference",
                   description="Sets `enabled` and/or `unassigned`.", request=PushPreferenceSerializer,
                   responses={200: PushPreferenceSerializer, 400: OpenApiResponse(description="VALIDATION_FAILED")},
                   tags=["devices"])
    def patch(self, request):
        data = PushPreferenceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pref = services.push_preference_set(user=_user(self), workspace=self.tenant.workspace.live,
                                            **data.validated_data)
        return Response({"enabled": pref.enabled, "unassigned": pref.unassigned})
