"""Ordinary bad input is a 400 with the envelope, never a 500, and writes nothing: one table, every
endpoint that takes that kind of input."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.apps import apps as django_apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

pytestmark = pytest.mark.django_db

NUL, SURROGATE = "a\x00b", "a\ud800b"
DEEP = "[" * 200 + "]" * 200
DEEP_OBJECT = '{"a":' * 100 + "1" + "}" * 100

# (method, path, JSON body with {bad} where the bad string goes)
JSON_ENDPOINTS = [
    ("post", "/api/v1/messages", {"to": "+15551234567", "type": "text", "text": {"body": "{bad}"}}),
    ("post", "/api/v1/contacts", {"phone": "+15551234567", "name": "{bad}"}),
    ("post", "/api/v1/audiences", {"name": "{bad}", "filter": {}}),
    ("post", "/api/v1/webhook-subscriptions", {"url": "https://example.com/{bad}", "events": ["*"]}),
    ("post", "/api/v1/canned-responses", {"shortcut": "hi", "body": "{bad}"}),
    ("post", "/api/v1/auto-replies", {"kind": "keyword", "keywords": ["{bad}"], "reply_text": "x"}),
    ("post", "/api/v1/sandbox/inbound", {"from": "+15551234567", "type": "text", "text": {"body": "{bad}"}}),
    ("post", "/api/v1/campaigns", {"name": "{bad}", "template": {"name": "t", "language": "en"},
                                   "audience_id": "aud_x"}),
]
QUERY_ENDPOINTS = ["/api/v1/messages", "/api/v1/contacts", "/api/v1/templates", "/api/v1/conversations",
                   "/api/v1/campaigns", "/api/v1/webhook-subscriptions"]
PATH_ENDPOINTS = ["/api/v1/messages/{id}", "/api/v1/contacts/{id}", "/api/v1/templates/{id}",
                  "/api/v1/conversations/{id}", "/api/v1/campaigns/{id}", "/api/v1/media/{id}",
                  "/api/v1/webhook-subscriptions/{id}", "/api/v1/audiences/{id}"]


def _counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in django_apps.get_models()
            if m._meta.app_label in ("contacts", "conversations", "campaigns", "webhooks", "message_templates")}


def _assert_400(response, before):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    assert body["error"]["code"] in ("VALIDATION_FAILED", "INVALID_JSON")
    assert _counts() == before


@pytest.fixture
def api(workspace, make_key):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {make_key(workspace, sandbox=True)}")
    return client


def _raw(body: dict, bad: str) -> str:
    # The bad text as a JSON escape, exactly as a client would send it (\u0000, \ud800).
    escaped = json.dumps(bad)[1:-1]
    return json.dumps(body).replace("{bad}", escaped)


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(("method", "path", "body"), JSON_ENDPOINTS, ids=[e[1] for e in JSON_ENDPOINTS])
def test_unstorable_json_strings(api, method, path, body, bad):
    before = _counts()
    response = getattr(api, method)(path, _raw(body, bad), content_type="application/json")
    _assert_400(response, before)


@pytest.mark.parametrize("doc", [DEEP, DEEP_OBJECT], ids=["lists", "objects"])
@pytest.mark.parametrize(("method", "path", "body"), JSON_ENDPOINTS, ids=[e[1] for e in JSON_ENDPOINTS])
def test_json_nested_too_deep(api, method, path, body, doc):
    before = _counts()
    response = getattr(api, method)(path, doc, content_type="application/json")
    _assert_400(response, before)
    assert response.json()["error"]["code"] == "INVALID_JSON"


@pytest.mark.parametrize("doc", [DEEP, '{"entry": ' + DEEP + "}"])
def test_meta_webhook_nested_too_deep(db, settings, doc):
    from apps.webhooks.models import InboundWebhook

    body = doc.encode()
    signature = "sha256=" + hmac.new(settings.META_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = Client().post("/webhooks/meta", body, content_type="application/json",
                             HTTP_X_HUB_SIGNATURE_256=signature)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_JSON"
    assert InboundWebhook.objects.count() == 0


@pytest.mark.parametrize("value", ["%00", "a%00b", "%ED%A0%80"], ids=["nul", "nul-inside", "surrogate-bytes"])
@pytest.mark.parametrize("path", QUERY_ENDPOINTS)
def test_bad_query_parameters(api, path, value):
    before = _counts()
    response = api.get(f"{path}?status={value}&to={value}&search={value}&name={value}")
    if response.status_code == 200:  # undecodable bytes are replaced (U+FFFD) by Django: harmless
        assert "%00" not in value
        return
    _assert_400(response, before)


@pytest.mark.parametrize("path", PATH_ENDPOINTS)
def test_nul_in_path_ids(api, path):
    before = _counts()
    response = api.get(path.replace("{id}", "msg_%00x"))
    _assert_400(response, before)


@pytest.mark.parametrize("name", ["a\r\nSet-Cookie: x.pdf", 'quote".pdf', "semi;colon.pdf", "back\\slash.pdf",
                                  "nul\x00.pdf"])
def test_unsafe_upload_filenames(api, name):
    before = _counts()
    upload = SimpleUploadedFile("x.pdf", b"%PDF-1.4\n%%EOF\n", content_type="application/pdf")
    upload.name = name
    response = api.post("/api/v1/media", {"file": upload})
    if response.status_code == 201:  # Django's multipart parser sanitised the part's name: fine if safe
        stored = response.json()["filename"]
        assert not any(c in stored for c in '\r\n\x00"\\;/'), stored
        download = api.get(f"/api/v1/media/{response.json()['id']}/content")
        assert download.status_code == 200
        before = _counts()
    else:
        _assert_400(response, before)
    response = api.post("/api/v1/media", {"file": SimpleUploadedFile("x.pdf", b"%PDF-1.4\n%%EOF\n"),
                                          "filename": name})
    _assert_400(response, before)


@pytest.mark.parametrize("phone", ["+0123456789", "+00000000000", "+999999999999", "+1" + "9" * 14, "++1555",
                                   "+1\x00555"])
def test_phones_phonenumbers_refuses(api, phone):
    before = _counts()
    for path, body in (("/api/v1/contacts", {"phone": phone}),
                       ("/api/v1/messages", {"to": phone, "text": {"body": "hi"}}),
                       ("/api/v1/sandbox/inbound", {"from": phone, "text": {"body": "hi"}})):
        response = api.post(path, json.dumps(body), content_type="application/json")
        _assert_400(response, before)


@pytest.mark.parametrize("variables", [[{"a": 1}], [["x"]], {"name": {"a": 1}}, {"name": ["x"]}])
def test_objects_or_lists_as_template_variables(api, variables):
    before = _counts()
    body = {"to": "+15551234567", "type": "template",
            "template": {"name": "order_confirmation", "language": "en", "variables": variables}}
    response = api.post("/api/v1/messages", json.dumps(body), content_type="application/json")
    _assert_400(response, before)


@pytest.mark.parametrize("url", ["https://exa mple.com/hook", "https://example.com/\x07", "https://example.com\r\n/x",
                                 "https://" + "a" * 64 + ".com/hook", "https://xn--a.com/hook",
                                 "https://exa\x00mple.com/"])
def test_bad_webhook_urls(api, url):
    before = _counts()
    response = api.post("/api/v1/webhook-subscriptions", json.dumps({"url": url, "events": ["*"]}),
                        content_type="application/json")
    _assert_400(response, before)


@pytest.mark.parametrize("csv_body", [b"phone,name\n+15551234567,a\x00b\n",
                                      b"phone,name\n+15551234567," + b"x" * 200_000 + b"\n",
                                      b'phone,name\n+15551234567,"' + b"y" * 140_000 + b'\n'])
@pytest.mark.parametrize("path", ["/api/v1/contacts/import", "/api/v1/audiences"])
def test_bad_csv_cells(api, path, csv_body):
    before = _counts()
    response = api.post(path, {"file": SimpleUploadedFile("people.csv", csv_body, content_type="text/csv"),
                               "name": "list"})
    if response.status_code == 200 and path.endswith("import"):
        report = response.json()  # a per-row refusal is a fine answer too, as long as nothing bad is stored
        assert report["created"] == 0 and report["rejected"] >= 1
        return
    _assert_400(response, before)
