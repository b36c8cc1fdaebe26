"""pytest plugin: every /api/v1 response the suite produces is checked against the OpenAPI schema.

For each response to a request made through Django's test client (and so DRF's APIClient): the path and
method must be an operation of the schema, the status one it documents, and a JSON body must validate
against that status's schema (JSON Schema 2020-12, as OpenAPI 3.1 says). A test whose responses break the
contract fails at teardown with the list of mismatches. Loaded from tests/conftest.py."""

from __future__ import annotations

import json
import re
from functools import cache

import pytest

_ERRORS: list[str] | None = None


@cache
def _schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    schema = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))
    # The suite's own probe routes (tests/core/urls.py) are not part of the product.
    schema["paths"] = {p: item for p, item in schema["paths"].items() if "/_test/" not in p}
    return schema


@cache
def _routes() -> list[tuple[re.Pattern, str]]:
    routes = []
    for path in _schema()["paths"]:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "/?$"
        # literal segments win over parameters (contacts/import before contacts/{id})
        routes.append((re.compile(pattern), path, path.count("{")))
    routes.sort(key=lambda r: r[2])
    return [(p, path) for p, path, _ in routes]


@cache
def _validator_for(ref: str):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = _schema()
    registry = Registry().with_resource("urn:reach", Resource(contents=document, specification=DRAFT202012))
    return Draft202012Validator({"$ref": "urn:reach" + ref}, registry=registry)


def _resolve(obj: dict) -> dict:
    while "$ref" in obj:
        node = _schema()
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def response_problems(method: str, path: str, response) -> list[str]:
    """What is wrong with this response according to the schema ([] when it conforms)."""
    if not path.startswith("/api/v1/") or path.startswith("/api/v1/schema") or "/_test/" in path:
        return []
    match = next((schema_path for pattern, schema_path in _routes() if pattern.match(path)), None)
    if match is None:
        return [] if response.status_code == 404 else [f"{method} {path}: no such path in the schema"]
    operation = _schema()["paths"][match].get(method.lower())
    if operation is None:
        return [] if response.status_code == 405 else [f"{method} {path}: no such operation ({match})"]
    status = str(response.status_code)
    documented = operation["responses"]
    if status not in documented:
        return [f"{method} {match}: status {status} is not documented (has {sorted(documented)})"]
    spec = _resolve(documented[status])
    content = spec.get("content") or {}
    body = getattr(response, "content", b"") if not getattr(response, "streaming", False) else None
    if not content:
        return [f"{method} {match} {status}: documented without a body, answered one"] if body else []
    media = (response.get("Content-Type") or "").split(";")[0].strip() if hasattr(response, "get") else ""
    if media and media != "application/json" and media in content:
        return []  # a documented non-JSON representation (e.g. a report as text/csv)
    if "application/json" not in content or body is None:
        return []
    media_type = (response.get("Content-Type") or "").split(";")[0].strip()
    if media_type in content and media_type != "application/json":
        return []  # a documented non-JSON answer of the operation (e.g. text/csv by content negotiation)
    try:
        instance = json.loads(body)
    except ValueError:
        return [f"{method} {match} {status}: body is not JSON"]
    schema = content["application/json"].get("schema", {})
    pointer = "#/paths/" + match.replace("~", "~0").replace("/", "~1") + f"/{method.lower()}/responses/{status}"
    if "$ref" in documented[status]:
        pointer = documented[status]["$ref"]
    validator = _validator_for(pointer + "/content/application~1json/schema") if schema else None
    if validator is None:
        return []
    return [f"{method} {match} {status}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
            for e in list(validator.iter_errors(instance))[:5]]


def _record(method, path, response):
    if _ERRORS is None:
        return
    _ERRORS.extend(response_problems(method, path, response))


@pytest.fixture(autouse=True)
def _api_responses_match_the_schema(monkeypatch):
    """Every response a test gets from /api/v1 conforms to the OpenAPI schema (status and body)."""
    global _ERRORS
    from django.test import Client
    from django.test.client import AsyncClient

    original = Client.request
    original_async = AsyncClient.request

    def request(self, **environ):
        response = original(self, **environ)
        _record(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""), response)
        return response

    async def arequest(self, **scope):
        response = await original_async(self, **scope)
        _record(scope.get("method", "GET"), scope.get("path", ""), response)
        return response

    monkeypatch.setattr(Client, "request", request)
    monkeypatch.setattr(AsyncClient, "request", arequest)
    _ERRORS = []
    yield
    errors, _ERRORS = _ERRORS, None
    if errors:
        pytest.fail(f"{len(errors)} API response(s) do not match the OpenAPI schema:\n" + "\n".join(errors[:15]),
                    pytrace=False)
