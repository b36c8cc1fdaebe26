"""OpenAPI: the schema validates, is public, covers every /api/v1 route and documents the error envelope."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from tests.test_cross_workspace import _PARAM

pytestmark = pytest.mark.django_db


def _all_api_routes() -> set[str]:
    from django.urls import URLPattern, URLResolver, get_resolver
    from django.urls.resolvers import RoutePattern

    out = set()

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and isinstance(p.pattern, RoutePattern):
                route = prefix + str(p.pattern)
                if route.startswith("api/v1/") and route != "api/v1/schema":
                    out.add("/" + _PARAM.sub(lambda m: "{" + m.group("name") + "}", route).rstrip("/"))

    walk(get_resolver().url_patterns, "")
    return out


def test_spectacular_validate_passes():
    out, err = io.StringIO(), io.StringIO()
    call_command("spectacular", "--validate", stdout=out, stderr=err)
    assert "openapi: 3" in out.getvalue()


def test_schema_is_public_and_covers_every_route_and_error():
    response = Client().get("/api/v1/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["schemas"]["Error"]["properties"]["error"]["required"] == [
        "code", "message", "details", "request_id"]
    def shape(path):  # drf-spectacular renames {pk} to {id}
        return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))

    paths = {shape(p) for p in schema["paths"]}
    assert {shape(r) for r in _all_api_routes()} <= paths
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status in ("401", "404", "429", "500"):
                assert status in operation["responses"], (path, method, status)
            if method in ("post", "patch", "delete"):
                assert any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])), (path, method)
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


@pytest.mark.parametrize("path", ["/api/docs", "/api/docs/", "/api/docs/try"])
def test_docs_pages_are_served_offline(path):
    response = Client().get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/schema" in html
    # Nothing fetched from elsewhere: no fonts, scripts, styles or CDNs outside this server.
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html), re.findall(r'(?:src|href)="[^"]+"', html)
    assert "googleapis" not in html and "cdn." not in html
    assert "sandbox key" in html
    assert "default-src 'self'" in response["Content-Security-Policy"]  # nothing else is fetched, even by JS
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert Client().get(asset).status_code == 200, asset
