"""Test-only endpoints that exercise ApiView (used with @pytest.mark.urls("tests.core.urls")). The real
routes are included after them, so unknown routes, the schema and health behave exactly as in production."""

from __future__ import annotations

import threading
import time

from django.http import JsonResponse
from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.wabas.models import PhoneNumber, Waba
from reach import urls as reach_urls

EXECUTIONS: list[str] = []
_lock = threading.Lock()


class WabaList(ApiView):
    scopes = {"GET": "templates:read"}

    def get(self, request):
        return self.paginated(self.scoped(Waba), lambda w: {"id": w.id})


class WabaDetail(ApiView):
    scopes = {"GET": "templates:read", "DELETE": "templates:write"}

    def get(self, request, pk):
        waba = self.get_scoped(Waba, pk)
        return Response({"id": waba.id})

    def delete(self, request, pk):
        waba = self.get_scoped(Waba, pk)
        self.audit_target = ("waba", waba.id)
        return Response(status=204)


class PhoneList(ApiView):
    scopes = {"GET": "templates:read"}

    def get(self, request):
        return self.paginated(self.scoped(PhoneNumber), lambda p: {"id": p.id})


class EchoInput(serializers.Serializer):
    name = serializers.CharField(max_length=20)
    count = serializers.IntegerField(min_value=0, required=False)


class Echo(ApiView):
    """POST: validates, optionally sleeps (?sleep=seconds), records that it ran, answers 201."""

    scopes = {"POST": "contacts:write", "GET": "contacts:read"}

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        data = EchoInput(data=request.data)
        data.is_valid(raise_exception=True)
        delay = float(request.query_params.get("sleep", "0"))
        if delay:
            time.sleep(delay)
        with _lock:
            EXECUTIONS.append(data.validated_data["name"])
            run = len(EXECUTIONS)
        self.audit_target = ("echo", data.validated_data["name"])
        return Response({"name": data.validated_data["name"], "run": run}, status=201)


class Boom(ApiView):
    scopes = {"GET": "contacts:read", "POST": "contacts:write"}

    def get(self, request):
        raise RuntimeError("secret internals that must not leak")

    def post(self, request):
        raise RuntimeError("secret internals that must not leak")


def plain_boom(request):
    raise ValueError("plain django view failure with secret internals")


def plain_ok(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("api/v1/_test/wabas", WabaList.as_view()),
    path("api/v1/_test/wabas/<str:pk>", WabaDetail.as_view()),
    path("api/v1/_test/phones", PhoneList.as_view()),
    path("api/v1/_test/echo", Echo.as_view()),
    path("api/v1/_test/boom", Boom.as_view()),
    path("api/v1/_test/plain-boom", plain_boom),
    path("api/v1/_test/plain-ok", plain_ok),
    *reach_urls.urlpatterns,
]
handler404 = reach_urls.handler404
handler500 = reach_urls.handler500
