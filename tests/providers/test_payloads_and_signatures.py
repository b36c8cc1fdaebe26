import copy
import json
from pathlib import Path

import jsonschema
import pytest

from apps.providers.base import error_from_meta
from apps.providers.meta_cloud.payloads import build_send_payload
from apps.providers.meta_cloud.signatures import sign_body, verify_signature

SEND = Path(__file__).resolve().parents[1] / "fixtures" / "meta" / "send"


def _oas_validator_for(message_type: str):
    """The OAS send schema for one type, with its known flaws worked around (META.md §1.2): `language.policy`
    is not really required, the button `index` regex is malformed, and each type's allOf puts
    additionalProperties:false next to the base properties, which would reject every real request, and
    location coordinates are typed as strings although Meta's own example sends numbers."""
    schemas = copy.deepcopy(json.loads((SEND / "oas_message_schemas.json").read_text())["schemas"])
    schemas["LanguageObject"]["required"] = ["code"]
    schemas["TemplateComponent"]["properties"]["index"].pop("pattern", None)
    # OAS types latitude/longitude as strings while its own "Send Location Message" example sends numbers.
    for axis in ("latitude", "longitude"):
        schemas["LocationMessage"]["allOf"][1]["properties"]["location"]["properties"][axis]["type"] = [
            "number", "string"]
    ref = schemas["Message"]["discriminator"]["mapping"][message_type].rsplit("/", 1)[-1]
    parts = schemas[ref]["allOf"]
    base = schemas[parts[0]["$ref"].rsplit("/", 1)[-1]]
    own = parts[1]
    flat = {"type": "object", "additionalProperties": False,
            "required": sorted(set(base["required"]) | set(own.get("required", []))),
            "properties": {**base["properties"], **own["properties"]}}
    flat["properties"]["biz_opaque_callback_data"] = {"type": "string"}
    flat["components"] = {"schemas": schemas}
    return jsonschema.Draft202012Validator(flat)


CASES = [
    ("text", {"body": "Hello", "preview_url": True}),
    ("template", {"name": "order_confirmation", "language": "en_US", "variables": ["Jessica", "#123"]}),
    ("template", {"name": "welcome", "language": "en", "variables": {"first_name": "Ana"}}),
    ("template", {"name": "promo", "language": "en", "variables": ["x"], "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://e.com/a.jpg"}}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "P"}]}]}),
    ("image", {"id": "1037543291543636", "caption": "look"}),
    ("video", {"link": "https://e.com/v.mp4", "caption": "c"}),
    ("audio", {"id": "1"}),
    ("document", {"link": "https://e.com/i.pdf", "caption": "c", "filename": "invoice.pdf"}),
    ("sticker", {"id": "9"}),
    ("location", {"latitude": 37.758056, "longitude": -122.425332, "name": "META HQ", "address": "1 Hacker Way"}),
    ("interactive", {"kind": "buttons", "body": "Pick", "header_text": "Hi", "footer": "f",
                     "buttons": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]}),
    ("interactive", {"kind": "list", "body": "Pick", "button": "Open", "sections": [
        {"title": "S1", "rows": [{"id": "r1", "title": "R1", "description": "d"}, {"id": "r2", "title": "R2"}]}]}),
    ("reaction", {"message_id": "wamid.X", "emoji": "👍"}),
    ("reaction", {"message_id": "wamid.X", "emoji": ""}),
    ("contacts", [{"name": {"formatted_name": "Ana B", "first_name": "Ana"},
                   "phones": [{"phone": "+15551234567", "type": "HOME"}]}]),
]


@pytest.mark.parametrize(("mtype", "content"), CASES, ids=[f"{c[0]}{i}" for i, c in enumerate(CASES)])
def test_payload_validates_against_oas_send_schema(mtype, content):
    body = build_send_payload(to="+15551234567", message_type=mtype, content=content)
    assert body["messaging_product"] == "whatsapp" and body["type"] == mtype and body["to"] == "+15551234567"
    _oas_validator_for(mtype).validate(body)


def test_oas_validator_is_not_vacuous():
    bad = build_send_payload(to="+1555", message_type="text", content={"body": "x"})
    bad["text"]["bogus"] = 1
    with pytest.raises(jsonschema.ValidationError):
        _oas_validator_for("text").validate(bad)


def test_template_shapes():
    pos = build_send_payload(to="+1", message_type="template",
                             content={"name": "t", "language": "en", "variables": ["a", 2]})
    assert pos["template"] == {"name": "t", "language": {"code": "en"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "a"}, {"type": "text", "text": "2"}]}]}
    named = build_send_payload(to="+1", message_type="template",
                               content={"name": "t", "language": "en", "variables": {"first_name": "Jo"}})
    assert named["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Jo", "parameter_name": "first_name"}]
    bare = build_send_payload(to="+1", message_type="template", content={"name": "hello_world", "language": "en_US"})
    assert bare["template"] == {"name": "hello_world", "language": {"code": "en_US"}}
    passthrough = build_send_payload(to="+1", message_type="template", content={
        "name": "t", "language": "en", "components": [{"type": "body", "parameters": [{"type": "text", "text": "z"}]}]})
    assert passthrough["template"]["components"] == [{"type": "body", "parameters": [{"type": "text", "text": "z"}]}]


def test_interactive_buttons_exact():
    body = build_send_payload(to="+1", message_type="interactive", content={
        "kind": "buttons", "body": "Pick one", "buttons": [{"id": "yes", "title": "Yes"}]})
    assert body["interactive"] == {"type": "button", "body": {"text": "Pick one"}, "action": {
        "buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]}}


def test_bsuid_recipient_context_and_callback():
    body = build_send_payload(to="US.13491208655302741918", message_type="text", content={"body": "x"},
                              context_wamid="wamid.Q", biz_opaque_callback_data="cb")
    assert "to" not in body and body["recipient"] == "US.13491208655302741918"
    assert body["context"] == {"message_id": "wamid.Q"} and body["biz_opaque_callback_data"] == "cb"


def test_media_requires_id_or_link_and_unknown_type_rejected():
    with pytest.raises(ValueError):
        build_send_payload(to="+1", message_type="image", content={"caption": "x"})
    with pytest.raises(ValueError):
        build_send_payload(to="+1", message_type="carrier_pigeon", content={})
    audio = build_send_payload(to="+1", message_type="audio", content={"id": "5", "caption": "dropped"})
    assert audio["audio"] == {"id": "5"}


def test_signatures():
    body = b'{"object":"whatsapp_business_account"}'
    sig = sign_body(body, "s3cret")
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify_signature(body=body, header=sig, app_secret="s3cret")
    assert verify_signature(body=body, header=sig.upper().replace("SHA256=", "sha256="), app_secret="s3cret")
    assert not verify_signature(body=body + b" ", header=sig, app_secret="s3cret")
    assert not verify_signature(body=body, header=sig, app_secret="other")
    assert not verify_signature(body=body, header=None, app_secret="s3cret")
    assert not verify_signature(body=body, header="", app_secret="s3cret")
    assert not verify_signature(body=body, header=sig[7:], app_secret="s3cret")
    assert not verify_signature(body=body, header=sig, app_secret="")


@pytest.mark.parametrize(("code", "ours", "retryable", "http", "not_on_wa"), [
    (130429, "UPSTREAM_RATE_LIMITED", True, 429, False),
    (131056, "PAIR_RATE_LIMITED", True, 400, False),
    (131000, "UPSTREAM_ERROR", True, 500, False),
    (2, "UPSTREAM_UNAVAILABLE", True, 503, False),
    (131016, "UPSTREAM_UNAVAILABLE", True, 503, False),
    (100, "INVALID_REQUEST", False, 400, False),
    (131008, "INVALID_REQUEST", False, 400, False),
    (190, "AUTH_FAILED", False, 401, False),
    (250, "PERMISSION_DENIED", False, 403, False),
    (131026, "RECIPIENT_NOT_ON_WHATSAPP", False, 400, True),
    (131047, "OUTSIDE_24H_WINDOW", False, 400, False),
    (131049, "MARKETING_LIMITED", False, 400, False),
    (132000, "TEMPLATE_REJECTED_UPSTREAM", False, 400, False),
    (132001, "TEMPLATE_REJECTED_UPSTREAM", False, 404, False),
    (132015, "TEMPLATE_PAUSED", False, 400, False),
    (4, "APP_RATE_LIMITED", True, 400, False),
])
def test_error_from_meta(code, ours, retryable, http, not_on_wa):
    err = error_from_meta(code, "msg")
    assert (err.code, err.retryable, err.http_status, err.not_on_whatsapp, err.upstream_code) == (
        ours, retryable, http, not_on_wa, code)
    assert (err.retry_after is not None) == retryable


def test_error_from_meta_unknown_codes_and_overrides():
    assert error_from_meta(999999, "x", http_status=502).retryable is True
    unknown = error_from_meta(999999, "x", http_status=400)
    assert (unknown.code, unknown.retryable) == ("UPSTREAM_ERROR", False)
    assert error_from_meta(130429, "x", http_status=400, retry_after=7).retry_after == 7
    assert error_from_meta(130429, "x", http_status=400).http_status == 400
