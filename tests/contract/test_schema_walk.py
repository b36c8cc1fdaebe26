"""The schema walker: every operation is typed and described, so docs, fuzzers and generated clients
have something real to work with. Fails on any operation (including ones other branches add) without a
description, without a typed request body when it takes one, or without a typed 2xx response."""

from __future__ import annotations

from tests.contract_plugin import _resolve, _schema, _validator_for

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _typed(schema: dict) -> bool:
    schema = _resolve(schema) if "$ref" in schema else schema
    if schema.get("format") == "binary" or schema.get("contentMediaType"):
        return True
    if "oneOf" in schema or "anyOf" in schema or "allOf" in schema:
        return True
    return schema.get("type") == "object" and bool(schema.get("properties"))


def _operations():
    for path, item in _schema()["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_every_operation_is_typed_and_described():
    problems = []
    for path, method, op in _operations():
        where = f"{method.upper()} {path} ({op.get('operationId')})"
        if not (op.get("description") or "").strip() or not (op.get("summary") or "").strip():
            problems.append(f"{where}: no summary/description")
        body = op.get("requestBody")
        if body:
            for media_type, content in body["content"].items():
                if not _typed(content.get("schema", {})):
                    problems.append(f"{where}: untyped request body ({media_type})")
        elif method in ("post", "put", "patch") and op["operationId"].endswith(("_create", "_update")):
            problems.append(f"{where}: a write without a request body")
        success = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        if not success:
            problems.append(f"{where}: no 2xx response")
        for status, response in success.items():
            response = _resolve(response)
            for media_type, content in (response.get("content") or {}).items():
                if not _typed(content.get("schema", {})):
                    problems.append(f"{where}: untyped {status} response ({media_type})")
        for status in ("400", "401", "403", "404", "429", "500"):
            if op["responses"].get(status, {}).get("$ref") is None:
                problems.append(f"{where}: {status} is not the error envelope component")
    assert not problems, "\n".join(problems)


def test_operation_ids_are_readable_and_unique():
    ids = [op["operationId"] for _, _, op in _operations()]
    assert len(ids) == len(set(ids))
    generic = [op["operationId"] for _, _, op in _operations()
               if op["operationId"].endswith(("_retrieve", "_partial_update", "_destroy"))
               or (op["operationId"].endswith("_create") and "201" not in op["responses"])]
    assert not generic, f"name the operation for what it does (messages_send, not messages_create): {generic}"


def test_sends_answer_202_and_the_send_body_is_a_oneof_on_type():
    op = _schema()["paths"]["/api/v1/messages"]["post"]
    assert set(s for s in op["responses"] if s.startswith("2")) == {"202"}
    assert op["operationId"] == "messages_send"
    body = _resolve(op["requestBody"]["content"]["application/json"]["schema"])
    assert body["discriminator"]["propertyName"] == "type"
    assert {"text", "template", "image", "video", "audio", "document", "sticker", "location", "interactive",
            "reaction", "contacts"} <= set(body["discriminator"]["mapping"])
    examples = op["requestBody"]["content"]["application/json"]["examples"]
    for name in ("text", "template positional", "template named", "template components", "image by id",
                 "document by link", "interactive buttons", "interactive list", "location", "reaction", "contacts",
                 "sms", "scheduled", "with fallback"):
        assert any(name.replace(" ", "") in key.replace(" ", "").lower() for key in examples), name


def test_every_example_validates_against_its_schema():
    problems = []
    for path, method, op in _operations():
        content = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
        pointer = "#/paths/" + path.replace("~", "~0").replace("/", "~1") + f"/{method}/requestBody/content/" \
            "application~1json/schema"
        for name, example in (content.get("examples") or {}).items():
            for error in _validator_for(pointer).iter_errors(example["value"]):
                problems.append(f"{method.upper()} {path} example {name}: {error.message[:200]}")
    assert not problems, "\n".join(problems)


def test_error_statuses_are_components_and_security_is_stated_once():
    schema = _schema()
    responses = schema["components"]["responses"]
    for name in ("BadRequest", "Unauthorized", "PaymentRequired", "Forbidden", "NotFound", "Conflict",
                 "PayloadTooLarge", "UnsupportedMediaType", "Unprocessable", "TooManyRequests", "InternalError",
                 "UpstreamError"):
        content = responses[name]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Error"}
        assert set(content["example"]["error"]) == {"code", "message", "details", "request_id"}
    assert schema["security"] == [{"ApiKey": []}]
    assert not [op["operationId"] for _, _, op in _operations() if "security" in op]


def test_webhooks_come_from_the_event_registry_with_signature_headers():
    from apps.core.events import public_event_types

    webhooks = _schema()["webhooks"]
    assert set(public_event_types()) <= set(webhooks)
    for name, item in webhooks.items():
        headers = {p["name"] for p in item["post"]["parameters"] if p["in"] == "header"}
        assert {"X-Reach-Signature", "webhook-id", "webhook-timestamp", "webhook-signature"} <= headers, name
