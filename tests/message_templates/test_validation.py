import copy

import pytest

from apps.message_templates.validation import template_validate

BODY = {"type": "BODY", "text": "Hello {{1}}, your order {{2}} is ready.", "example": {"body_text": [["Ann", "A1"]]}}
GOOD = {"name": "order_ready", "language": "en_US", "category": "UTILITY", "components": [BODY]}


def with_changes(**changes):
    data = copy.deepcopy(GOOD)
    data.update(changes)
    return data


def components(*extra, body=BODY):
    return [copy.deepcopy(body), *extra]


GOOD_CASES = {
    "plain": GOOD,
    "no params": with_changes(components=[{"type": "BODY", "text": "Your order is ready."}]),
    "language without region": with_changes(language="pt"),
    "language with dash": with_changes(language="pt-br"),
    "named params": with_changes(parameter_format="named", components=[{
        "type": "BODY", "text": "Hi {{first_name}}, order {{order_id}} is ready.",
        "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ann"},
                                               {"param_name": "order_id", "example": "A1"}]}}]),
    "text header with param": with_changes(components=[
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A1"]}}, BODY]),
    "image header": with_changes(components=[
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}}, BODY]),
    "location header utility": with_changes(components=[{"type": "HEADER", "format": "LOCATION"}, BODY]),
    "footer": with_changes(components=components({"type": "FOOTER", "text": "Reply STOP to opt out"})),
    "buttons grouped": with_changes(category="MARKETING", components=components({"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "Yes"}, {"type": "QUICK_REPLY", "text": "No"},
        {"type": "URL", "text": "Track", "url": "https://x.example/t/{{1}}", "example": ["https://x.example/t/1"]},
        {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550100"}]})),
    "ten quick replies": with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": f"Option {i}"} for i in range(10)]})),
    "authentication": {"name": "login_code", "language": "en", "category": "AUTHENTICATION", "components": [
        {"type": "BODY", "add_security_recommendation": True},
        {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}]},
    "copy code": with_changes(category="MARKETING", components=components({"type": "BUTTONS", "buttons": [
        {"type": "COPY_CODE", "example": "SAVE20"}]})),
    "repeated positional param": with_changes(components=[{
        "type": "BODY", "text": "Hi {{1}}, {{1}} is your name and {{2}} your code, ok?",
        "example": {"body_text": [["Ann", "A1"]]}}]),
    "name at 512 chars": with_changes(name="a" * 512),
    "body at 1024 chars": with_changes(components=[{"type": "BODY", "text": "x" * 1024}]),
}


@pytest.mark.parametrize("case", sorted(GOOD_CASES))
def test_good_templates_pass(case):
    cleaned, errors = template_validate(GOOD_CASES[case])
    assert errors == []
    assert cleaned["parameter_format"] in ("POSITIONAL", "NAMED")


BAD_CASES = {
    "name missing": (with_changes(name=""), "name", "required"),
    "name uppercase": (with_changes(name="Order_Ready"), "name", "lowercase"),
    "name with dash": (with_changes(name="order-ready"), "name", "lowercase"),
    "name too long": (with_changes(name="a" * 513), "name", "512"),
    "language missing": (with_changes(language=""), "language", "required"),
    "language junk": (with_changes(language="english!"), "language", "locale"),
    "category unknown": (with_changes(category="PROMO"), "category", "MARKETING"),
    "parameter_format unknown": (with_changes(parameter_format="sparse"), "parameter_format", "positional"),
    "no components": (with_changes(components=[]), "components", "non-empty"),
    "no body": (with_changes(components=[{"type": "FOOTER", "text": "x"}]), "components", "BODY"),
    "two bodies": (with_changes(components=components(BODY)), "components[1].type", "one BODY"),
    "unknown component": (with_changes(components=components({"type": "SIDEBAR"})), "components[1].type", "one of"),
    "body too long": (with_changes(components=[{"type": "BODY", "text": "x" * 1025}]), "components[0].text", "1024"),
    "body empty": (with_changes(components=[{"type": "BODY", "text": "  "}]), "components[0].text", "needs text"),
    "gap in params": (with_changes(components=[{"type": "BODY", "text": "Hi {{1}} and {{3}} ok",
                                                "example": {"body_text": [["a", "b"]]}}]),
                      "components[0].text", "without gaps"),
    "params out of order": (with_changes(components=[{"type": "BODY", "text": "Hi {{2}} and {{1}} ok",
                                                      "example": {"body_text": [["a", "b"]]}}]),
                            "components[0].text", "in order"),
    "starts with param": (with_changes(components=[{"type": "BODY", "text": "{{1}} is ready now",
                                                    "example": {"body_text": [["a"]]}}]),
                          "components[0].text", "start"),
    "ends with param": (with_changes(components=[{"type": "BODY", "text": "Your code is {{1}}",
                                                  "example": {"body_text": [["a"]]}}]),
                        "components[0].text", "end"),
    "adjacent params": (with_changes(components=[{"type": "BODY", "text": "Hi {{1}} {{2}} there",
                                                  "example": {"body_text": [["a", "b"]]}}]),
                        "components[0].text", "adjacent"),
    "mismatched braces": (with_changes(components=[{"type": "BODY", "text": "Hi {{1} there"}]),
                          "components[0].text", "braces"),
    "special chars in param": (with_changes(components=[{"type": "BODY", "text": "Hi {{first-name}} there"}]),
                               "components[0].text", "positional"),
    "named param not lowercase": (with_changes(parameter_format="named", components=[{
        "type": "BODY", "text": "Hi {{FirstName}} there", "example": {}}]), "components[0].text", "lowercase"),
    "named param repeated": (with_changes(parameter_format="named", components=[{
        "type": "BODY", "text": "Hi {{name}} and {{name}} there",
        "example": {"body_text_named_params": [{"param_name": "name", "example": "a"}]}}]),
        "components[0].text", "unique"),
    "too many params": (with_changes(components=[{"type": "BODY", "text": "A {{1}}, {{2}}, {{3}} b",
                                                  "example": {"body_text": [["a", "b", "c"]]}}]),
                        "components[0].text", "Too many"),
    "body examples missing": (with_changes(components=[{"type": "BODY", "text": "Hi {{1}} there"}]),
                              "components[0].example.body_text", "required"),
    "body examples wrong count": (with_changes(components=[{"type": "BODY", "text": "Hi {{1}} there",
                                                            "example": {"body_text": [["a", "b"]]}}]),
                                  "components[0].example.body_text", "exactly 1"),
    "named examples missing one": (with_changes(parameter_format="named", components=[{
        "type": "BODY", "text": "Hi {{a_b}} and {{c_d}} there",
        "example": {"body_text_named_params": [{"param_name": "a_b", "example": "x"}]}}]),
        "components[0].example.body_text_named_params", "c_d"),
    "header text too long": (with_changes(components=[{"type": "HEADER", "format": "TEXT", "text": "h" * 61}, BODY]),
                             "components[0].text", "60"),
    "header two params": (with_changes(components=[{"type": "HEADER", "format": "TEXT", "text": "A {{1}} b {{2}} c",
                                                    "example": {"header_text": ["a", "b"]}}, BODY]),
                          "components[0].text", "at most 1"),
    "header example missing": (with_changes(components=[{"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}"},
                                                        BODY]), "components[0].example.header_text", "required"),
    "header bad format": (with_changes(components=[{"type": "HEADER", "format": "HOLOGRAM"}, BODY]),
                          "components[0].format", "one of"),
    "media header without handle": (with_changes(components=[{"type": "HEADER", "format": "VIDEO"}, BODY]),
                                    "components[0].example.header_handle", "handle"),
    "location header on auth": ({"name": "x", "language": "en", "category": "AUTHENTICATION", "components": [
        {"type": "HEADER", "format": "LOCATION"}, {"type": "BODY"},
        {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]}]},
        "components[0].format", "UTILITY and MARKETING"),
    "two headers": (with_changes(components=[{"type": "HEADER", "format": "LOCATION"},
                                             {"type": "HEADER", "format": "LOCATION"}, BODY]),
                    "components[1].type", "one HEADER"),
    "footer too long": (with_changes(components=components({"type": "FOOTER", "text": "f" * 61})),
                        "components[1].text", "60"),
    "footer with param": (with_changes(components=components({"type": "FOOTER", "text": "Bye {{1}} now"})),
                          "components[1].text", "parameters"),
    "eleven buttons": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": f"Option {i}"} for i in range(11)]})), "components[1].buttons", "10"),
    "three url buttons": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "URL", "text": f"Link {i}", "url": f"https://x.example/{i}"} for i in range(3)]})),
        "components[1].buttons", "URL"),
    "two phone buttons": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "PHONE_NUMBER", "text": f"Call {i}", "phone_number": "+15550100"} for i in range(2)]})),
        "components[1].buttons", "PHONE_NUMBER"),
    "quick replies split": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "A"}, {"type": "URL", "text": "U", "url": "https://x.example"},
        {"type": "QUICK_REPLY", "text": "B"}]})), "components[1].buttons", "grouped"),
    "button label too long": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "x" * 26}]})), "components[1].buttons[0].text", "25"),
    "url param not at end": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "URL", "text": "Go", "url": "https://x.example/{{1}}/track", "example": ["https://x.example/1/t"]}]})),
        "components[1].buttons[0].url", "end"),
    "url param without example": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "URL", "text": "Go", "url": "https://x.example/{{1}}"}]})),
        "components[1].buttons[0].example", "example"),
    "url too long": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "URL", "text": "Go", "url": "https://x.example/" + "a" * 2000}]})),
        "components[1].buttons[0].url", "2000"),
    "phone too long": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+1" + "5" * 20}]})),
        "components[1].buttons[0].phone_number", "20"),
    "copy code example too long": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "COPY_CODE", "example": "C" * 16}]})), "components[1].buttons[0].example", "15"),
    "unknown button": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "TELEPORT", "text": "Go"}]})), "components[1].buttons[0].type", "one of"),
    "otp outside authentication": (with_changes(components=components({"type": "BUTTONS", "buttons": [
        {"type": "OTP", "otp_type": "COPY_CODE"}]})), "components[1].buttons[0].type", "AUTHENTICATION"),
    "authentication without otp": ({"name": "x", "language": "en", "category": "AUTHENTICATION",
                                    "components": [{"type": "BODY"}]}, "components", "OTP"),
    "empty buttons": (with_changes(components=components({"type": "BUTTONS", "buttons": []})),
                      "components[1].buttons", "non-empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_templates_name_the_field_and_rule(case):
    data, field, fragment = BAD_CASES[case]
    _, errors = template_validate(data)
    matching = [e for e in errors if e["field"] == field]
    assert matching, errors
    assert any(fragment in e["message"] for e in matching), matching


def test_every_violation_is_reported_at_once():
    data = {"name": "Bad Name", "language": "", "category": "NOPE", "components": [
        {"type": "HEADER", "format": "TEXT", "text": "h" * 61},
        {"type": "BODY", "text": "{{1}} x" + "y" * 1100},
        {"type": "FOOTER", "text": "f" * 61},
    ]}
    _, errors = template_validate(data)
    fields = [e["field"] for e in errors]
    assert fields[:3] == ["name", "language", "category"]
    for expected in ("components[0].text", "components[1].text", "components[1].example.body_text",
                     "components[2].text"):
        assert expected in fields
    assert len(errors) >= 8


def test_non_object_body():
    _, errors = template_validate(["not", "an", "object"])
    assert errors == [{"field": "", "message": "The body must be a JSON object."}]
