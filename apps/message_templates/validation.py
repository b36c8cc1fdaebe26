"""Meta's template rules (META.md §4), checked locally so a bad template fails here with every violation
listed at once, instead of at Meta one rejection at a time."""

from __future__ import annotations

import re
from typing import Any

NAME_RE = re.compile(r"^[a-z0-9_]+$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2,4})?$")
STRICT_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
POSITIONAL_NAME = re.compile(r"^[1-9][0-9]*$")
NAMED_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
ADJACENT = re.compile(r"\}\}\s*\{\{")

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS", "LIMITED_TIME_OFFER", "CAROUSEL")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION")
BUTTON_TYPES = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP", "FLOW", "MPM", "SPM", "CATALOG",
                "VOICE_CALL", "REQUEST_CONTACT_INFO")
BUTTON_LIMITS = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1, "OTP": 1, "FLOW": 1,
                 "MPM": 1, "SPM": 1, "CATALOG": 1, "VOICE_CALL": 1, "REQUEST_CONTACT_INFO": 1}
OTP_TYPES = ("COPY_CODE", "ONE_TAP", "ZERO_TAP")

MAX_NAME = 512
MAX_BODY = 1024
MAX_HEADER_TEXT = 60
MAX_FOOTER = 60
MAX_BUTTONS = 10
MAX_BUTTON_TEXT = 25
MAX_URL = 2000
MAX_PHONE = 20
MAX_COPY_CODE_EXAMPLE = 15
MAX_LTO_TEXT = 16
CAROUSEL_CARDS = (2, 10)
MAX_CARD_BODY = 160
CARD_BUTTON_TYPES = ("QUICK_REPLY", "URL", "PHONE_NUMBER")
LIBRARY_CATEGORIES = ("UTILITY", "AUTHENTICATION")


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.items.append({"field": field, "message": message})


def _text_params(text: str, *, field: str, named: bool, errors: _Errors) -> list[str]:
    """Placeholders in order of first appearance; reports malformed braces and wrong-format names."""
    names: list[str] = []
    for raw in STRICT_PLACEHOLDER.findall(text):
        if named:
            if not NAMED_NAME.fullmatch(raw):
                errors.add(field, f"{{{{{raw}}}}} is not a valid named parameter: use lowercase letters, digits "
                                  "and _ (e.g. {{first_name}}).")
                continue
        elif not POSITIONAL_NAME.fullmatch(raw):
            errors.add(field, f"{{{{{raw}}}}} is not a positional parameter: use {{{{1}}}}, {{{{2}}}}, … or "
                              "set parameter_format to named.")
            continue
        names.append(raw)
    leftover = STRICT_PLACEHOLDER.sub("", text)
    if "{{" in leftover or "}}" in leftover:
        errors.add(field, "Mismatched braces: every parameter is written {{…}}.")
    return names


def _check_param_layout(text: str, names: list[str], *, field: str, named: bool, errors: _Errors,
                        allow_edges: bool = False) -> None:
    if not names:
        return
    if not named:
        numbers = [int(n) for n in dict.fromkeys(names)]
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            errors.add(field, "Positional parameters must be numbered 1..n without gaps.")
        elif numbers != sorted(numbers):
            errors.add(field, "Positional parameters must appear in order: {{1}} before {{2}}.")
    elif len(set(names)) != len(names):
        errors.add(field, "Named parameters must be unique.")
    stripped = text.strip()
    if not allow_edges:
        if stripped.startswith("{{"):
            errors.add(field, "The text cannot start with a parameter.")
        if stripped.endswith("}}"):
            errors.add(field, "The text cannot end with a parameter.")
    if ADJACENT.search(text):
        errors.add(field, "Two parameters cannot be adjacent; put words between them.")
    words = [w for w in STRICT_PLACEHOLDER.sub(" ", text).split() if any(ch.isalnum() for ch in w)]
    if len(words) < len(set(names)):
        errors.add(field, "Too many parameters for the length of the text.")


def _check_examples(component: dict, names: list[str], *, field: str, named: bool, kind: str,
                    errors: _Errors) -> None:
    """kind: "body" or "header"."""
    if not names:
        return
    example = component.get("example")
    example = example if isinstance(example, dict) else {}
    unique = list(dict.fromkeys(names))
    if named:
        key = f"{kind}_text_named_params"
        given = example.get(key)
        if not isinstance(given, list) or not given:
            errors.add(f"{field}.example.{key}", f"Examples are required for every parameter ({', '.join(unique)}).")
            return
        got = {}
        for item in given:
            if isinstance(item, dict) and isinstance(item.get("param_name"), str):
                got[item["param_name"]] = item.get("example")
        missing = [n for n in unique if not isinstance(got.get(n), str) or not got.get(n).strip()]
        if missing:
            errors.add(f"{field}.example.{key}", f"Missing examples for: {', '.join(missing)}.")
        extra = [n for n in got if n not in unique]
        if extra:
            errors.add(f"{field}.example.{key}", f"Examples for unknown parameters: {', '.join(extra)}.")
        return
    key = f"{kind}_text"
    given = example.get(key)
    if kind == "body":
        row = given[0] if isinstance(given, list) and given and isinstance(given[0], list) else None
    else:
        row = given if isinstance(given, list) else None
    if row is None:
        shape = '[["value 1", "value 2"]]' if kind == "body" else '["value"]'
        errors.add(f"{field}.example.{key}", f"Examples are required for every parameter, shaped {shape}.")
        return
    if len(row) != len(unique) or not all(isinstance(v, str) and v.strip() for v in row):
        errors.add(f"{field}.example.{key}",
                   f"Give exactly {len(unique)} non-empty example value(s), one per parameter.")


def _check_header(comp: dict, *, field: str, category: str, named: bool, errors: _Errors) -> None:
    fmt = str(comp.get("format") or "").upper()
    if fmt not in HEADER_FORMATS:
        errors.add(f"{field}.format", f"Header format must be one of {', '.join(HEADER_FORMATS)}.")
        return
    if fmt == "TEXT":
        text = comp.get("text")
        if not isinstance(text, str) or not text.strip():
            errors.add(f"{field}.text", "A TEXT header needs text.")
            return
        if len(text) > MAX_HEADER_TEXT:
            errors.add(f"{field}.text", f"Header text is at most {MAX_HEADER_TEXT} characters ({len(text)} given).")
        names = _text_params(text, field=f"{field}.text", named=named, errors=errors)
        if len(set(names)) > 1:
            errors.add(f"{field}.text", "Header text takes at most 1 parameter.")
        elif names and not named and names[0] != "1":
            errors.add(f"{field}.text", "The header's positional parameter is {{1}}.")
        if "\n" in text:
            errors.add(f"{field}.text", "Header text cannot contain new lines.")
        _check_examples(comp, names, field=field, named=named, kind="header", errors=errors)
    elif fmt == "LOCATION":
        if category not in ("UTILITY", "MARKETING"):
            errors.add(f"{field}.format", "LOCATION headers are for UTILITY and MARKETING templates.")
    else:
        example = comp.get("example") if isinstance(comp.get("example"), dict) else {}
        handle = example.get("header_handle")
        if not isinstance(handle, list) or not handle or not all(isinstance(h, str) and h for h in handle):
            errors.add(f"{field}.example.header_handle",
                       f"A {fmt} header needs an example media handle (example.header_handle).")


def _check_buttons(comp: dict, *, field: str, category: str, errors: _Errors) -> list[str]:
    buttons = comp.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        errors.add(f"{field}.buttons", "BUTTONS needs a non-empty buttons list.")
        return []
    if len(buttons) > MAX_BUTTONS:
        errors.add(f"{field}.buttons", f"At most {MAX_BUTTONS} buttons ({len(buttons)} given).")
    kinds: list[str] = []
    for index, button in enumerate(buttons):
        bfield = f"{field}.buttons[{index}]"
        if not isinstance(button, dict):
            errors.add(bfield, "Each button is an object.")
            continue
        kind = str(button.get("type") or "").upper()
        if kind not in BUTTON_TYPES:
            errors.add(f"{bfield}.type", f"Button type must be one of {', '.join(BUTTON_TYPES)}.")
            continue
        kinds.append(kind)
        text = button.get("text")
        if kind not in ("OTP", "COPY_CODE", "MPM", "SPM", "CATALOG"):
            if not isinstance(text, str) or not text.strip():
                errors.add(f"{bfield}.text", "A button needs a label.")
            elif len(text) > MAX_BUTTON_TEXT:
                errors.add(f"{bfield}.text", f"Button labels are at most {MAX_BUTTON_TEXT} characters.")
        if kind == "URL":
            url = button.get("url")
            if not isinstance(url, str) or not url.strip():
                errors.add(f"{bfield}.url", "A URL button needs a url.")
            else:
                if len(url) > MAX_URL:
                    errors.add(f"{bfield}.url", f"URLs are at most {MAX_URL} characters.")
                if not url.startswith(("https://", "http://")):
                    errors.add(f"{bfield}.url", "The url must start with https:// or http://.")
                params = STRICT_PLACEHOLDER.findall(url)
                if len(params) > 1:
                    errors.add(f"{bfield}.url", "A URL takes at most 1 parameter.")
                elif params:
                    if not url.endswith("}}"):
                        errors.add(f"{bfield}.url", "The URL's parameter must be at the end.")
                    example = button.get("example")
                    if not isinstance(example, list) or not example or not all(
                            isinstance(v, str) and v for v in example):
                        errors.add(f"{bfield}.example", "A URL with a parameter needs an example URL.")
        elif kind == "PHONE_NUMBER":
            phone = button.get("phone_number")
            if not isinstance(phone, str) or not phone.strip():
                errors.add(f"{bfield}.phone_number", "A PHONE_NUMBER button needs a phone_number.")
            elif len(phone) > MAX_PHONE:
                errors.add(f"{bfield}.phone_number", f"Phone numbers are at most {MAX_PHONE} characters.")
        elif kind == "COPY_CODE":
            example = button.get("example")
            if isinstance(example, list):
                example = example[0] if example else None
            if not isinstance(example, str) or not example:
                errors.add(f"{bfield}.example", "A COPY_CODE button needs an example code.")
            elif len(example) > MAX_COPY_CODE_EXAMPLE:
                errors.add(f"{bfield}.example", f"Copy-code examples are at most {MAX_COPY_CODE_EXAMPLE} characters.")
        elif kind == "OTP":
            if category != "AUTHENTICATION":
                errors.add(f"{bfield}.type", "OTP buttons are for AUTHENTICATION templates only.")
            if str(button.get("otp_type") or "").upper() not in OTP_TYPES:
                errors.add(f"{bfield}.otp_type", f"otp_type must be one of {', '.join(OTP_TYPES)}.")
    for kind, limit in BUTTON_LIMITS.items():
        count = kinds.count(kind)
        if count > limit:
            errors.add(f"{field}.buttons", f"At most {limit} {kind} button(s) ({count} given).")
    # Quick replies sit together, before or after the others: "QR, URL, QR" is rejected.
    runs = [k == "QUICK_REPLY" for k in kinds]
    switches = sum(1 for a, b in zip(runs, runs[1:], strict=False) if a != b)
    if switches > 1:
        errors.add(f"{field}.buttons", "Quick replies must be grouped together, before or after the other buttons.")
    return kinds


def _check_lto(comp: dict, *, field: str, category: str, errors: _Errors) -> None:
    """A limited-time offer (Meta: MARKETING only, text ≤16, optional expiration shown as a countdown)."""
    if category != "MARKETING":
        errors.add(f"{field}.type", "Limited-time offers are for MARKETING templates only.")
    lto = comp.get("limited_time_offer")
    if not isinstance(lto, dict):
        errors.add(f"{field}.limited_time_offer", "limited_time_offer must be an object with text.")
        return
    text = lto.get("text")
    if not isinstance(text, str) or not text.strip():
        errors.add(f"{field}.limited_time_offer.text", "The offer needs text.")
    elif len(text) > MAX_LTO_TEXT:
        errors.add(f"{field}.limited_time_offer.text", f"Offer text is at most {MAX_LTO_TEXT} characters.")
    if "has_expiration" in lto and not isinstance(lto["has_expiration"], bool):
        errors.add(f"{field}.limited_time_offer.has_expiration", "has_expiration must be true or false.")


def _check_carousel(comp: dict, *, field: str, category: str, named: bool, errors: _Errors) -> None:
    """A media-card carousel (Meta: 2–10 cards, each an IMAGE or VIDEO header of one format for all cards, a
    body ≤160 and 1–2 buttons of the same kinds on every card)."""
    cards = comp.get("cards")
    if not isinstance(cards, list) or not CAROUSEL_CARDS[0] <= len(cards) <= CAROUSEL_CARDS[1]:
        errors.add(f"{field}.cards", f"A carousel has {CAROUSEL_CARDS[0]} to {CAROUSEL_CARDS[1]} cards.")
        return
    formats, button_sets = set(), set()
    for i, card in enumerate(cards):
        cfield = f"{field}.cards[{i}]"
        parts = {str(c.get("type") or "").upper(): c for c in (card.get("components") or []) if isinstance(c, dict)} \
            if isinstance(card, dict) else {}
        header = parts.get("HEADER") or {}
        fmt = str(header.get("format") or "").upper()
        if fmt not in ("IMAGE", "VIDEO"):
            errors.add(f"{cfield}.header", "Each card needs an IMAGE or VIDEO header.")
        elif not (header.get("example") or {}).get("header_handle"):
            errors.add(f"{cfield}.header.example", "A card's media header needs example.header_handle.")
        formats.add(fmt)
        body = parts.get("BODY") or {}
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            errors.add(f"{cfield}.body", "Each card needs body text.")
        elif len(text) > MAX_CARD_BODY:
            errors.add(f"{cfield}.body", f"Card body text is at most {MAX_CARD_BODY} characters.")
        else:
            names = _text_params(text, field=f"{cfield}.body", named=named, errors=errors)
            _check_examples(body, names, field=f"{cfield}.body", named=named, kind="body", errors=errors)
        buttons = (parts.get("BUTTONS") or {}).get("buttons") or []
        kinds = tuple(str(b.get("type") or "").upper() for b in buttons if isinstance(b, dict))
        if not 1 <= len(kinds) <= 2 or any(k not in CARD_BUTTON_TYPES for k in kinds):
            errors.add(f"{cfield}.buttons", "Each card has 1 or 2 QUICK_REPLY, URL or PHONE_NUMBER buttons.")
        button_sets.add(kinds)
    if len(formats) > 1:
        errors.add(f"{field}.cards", "Every card's header must have the same format.")
    if len(button_sets) > 1:
        errors.add(f"{field}.cards", "Every card must have the same buttons, in the same order.")


def _check_library(data: dict, *, category: str, errors: _Errors) -> dict:
    """A template created from Meta's template library: Meta supplies its text; we send the library name and
    the button inputs Meta needs (URLs, phone numbers)."""
    out = {"library_template_name": data["library_template_name"]}
    if not isinstance(out["library_template_name"], str) or not NAME_RE.fullmatch(out["library_template_name"]):
        errors.add("library_template_name", "library_template_name is a library template's name (a-z, 0-9, _).")
    if category not in LIBRARY_CATEGORIES:
        errors.add("category", "Template library templates are UTILITY or AUTHENTICATION.")
    inputs = data.get("library_template_button_inputs")
    if inputs is not None:
        if not isinstance(inputs, list) or not all(isinstance(x, dict) and x.get("type") for x in inputs):
            errors.add("library_template_button_inputs", "Give a list of {type, url | phone_number | otp_type}.")
        else:
            out["library_template_button_inputs"] = inputs
    return out


def template_validate(data: Any) -> tuple[dict, list[dict[str, str]]]:
    """Returns (cleaned, errors). `cleaned` has name, language, category, parameter_format (POSITIONAL or
    NAMED) and components; `errors` lists every violation as {"field", "message"}."""
    errors = _Errors()
    if not isinstance(data, dict):
        errors.add("", "The body must be a JSON object.")
        return {}, errors.items
    name = data.get("name")
    if not isinstance(name, str) or not name:
        errors.add("name", "name is required.")
    else:
        if len(name) > MAX_NAME:
            errors.add("name", f"name is at most {MAX_NAME} characters.")
        if not NAME_RE.fullmatch(name):
            errors.add("name", "name may only contain lowercase letters, digits and underscores.")
    language = data.get("language")
    if not isinstance(language, str) or not language.strip():
        errors.add("language", "language is required (e.g. en_US).")
        language = ""
    else:
        from apps.message_templates.selectors import normalize_language

        language = normalize_language(language)
        if not LANGUAGE_RE.fullmatch(language):
            errors.add("language", "language must be a locale code like en, en_US or pt_BR.")
    category = str(data.get("category") or "").upper()
    if category not in CATEGORIES:
        errors.add("category", f"category must be one of {', '.join(CATEGORIES)}.")
    raw_format = data.get("parameter_format")
    parameter_format = str(raw_format or "positional").upper()
    if parameter_format not in ("POSITIONAL", "NAMED"):
        errors.add("parameter_format", "parameter_format must be positional or named.")
        parameter_format = "POSITIONAL"
    named = parameter_format == "NAMED"
    if data.get("library_template_name") is not None:
        library = _check_library(data, category=category, errors=errors)
        cleaned = {"name": name, "language": language, "category": category, "parameter_format": parameter_format,
                   "components": data.get("components") if isinstance(data.get("components"), list) else [],
                   **library}
        return cleaned, errors.items
    components = data.get("components")
    if not isinstance(components, list) or not components:
        errors.add("components", "components must be a non-empty list.")
        components = []
    seen: dict[str, int] = {}
    for index, comp in enumerate(components):
        field = f"components[{index}]"
        if not isinstance(comp, dict):
            errors.add(field, "Each component is an object.")
            continue
        kind = str(comp.get("type") or "").upper()
        if kind not in COMPONENT_TYPES:
            errors.add(f"{field}.type", f"Component type must be one of {', '.join(COMPONENT_TYPES)}.")
            continue
        if kind in seen:
            errors.add(f"{field}.type", f"At most one {kind} component.")
            continue
        seen[kind] = index
        if kind == "HEADER":
            _check_header(comp, field=field, category=category, named=named, errors=errors)
        elif kind == "BODY":
            text = comp.get("text")
            if category == "AUTHENTICATION" and not text:
                continue  # Meta supplies the authentication body text
            if not isinstance(text, str) or not text.strip():
                errors.add(f"{field}.text", "The body needs text.")
                continue
            if len(text) > MAX_BODY:
                errors.add(f"{field}.text", f"Body text is at most {MAX_BODY} characters ({len(text)} given).")
            names = _text_params(text, field=f"{field}.text", named=named, errors=errors)
            _check_param_layout(text, names, field=f"{field}.text", named=named, errors=errors)
            _check_examples(comp, names, field=field, named=named, kind="body", errors=errors)
        elif kind == "FOOTER":
            text = comp.get("text")
            if not isinstance(text, str) or not text.strip():
                errors.add(f"{field}.text", "The footer needs text.")
                continue
            if len(text) > MAX_FOOTER:
                errors.add(f"{field}.text", f"Footer text is at most {MAX_FOOTER} characters ({len(text)} given).")
            if "{{" in text or "}}" in text:
                errors.add(f"{field}.text", "The footer cannot contain parameters.")
        elif kind == "LIMITED_TIME_OFFER":
            _check_lto(comp, field=field, category=category, errors=errors)
            if "FOOTER" in {str(c.get("type") or "").upper() for c in components if isinstance(c, dict)}:
                errors.add(f"{field}.type", "A limited-time offer template cannot have a footer.")
        elif kind == "CAROUSEL":
            if category != "MARKETING":
                errors.add(f"{field}.type", "Carousels are for MARKETING templates only.")
            _check_carousel(comp, field=field, category=category, named=named, errors=errors)
        elif kind == "BUTTONS":
            kinds = _check_buttons(comp, field=field, category=category, errors=errors)
            if category == "AUTHENTICATION" and "OTP" not in kinds:
                errors.add(f"{field}.buttons", "AUTHENTICATION templates need one OTP button.")
    if components and "BODY" not in seen:
        errors.add("components", "A BODY component is required.")
    if category == "AUTHENTICATION" and "BUTTONS" not in seen and components:
        errors.add("components", "AUTHENTICATION templates need a BUTTONS component with an OTP button.")
    cleaned = {"name": name, "language": language, "category": category, "parameter_format": parameter_format,
               "components": components}
    return cleaned, errors.items


# --- sending: Meta's send-shape components against the approved template -----------------------------------

MEDIA_HEADER_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT", "GIF")
SEND_SUB_TYPES = {"QUICK_REPLY": "quick_reply", "URL": "url", "OTP": "url", "COPY_CODE": "copy_code",
                  "FLOW": "flow", "CATALOG": "catalog", "MPM": "mpm", "SPM": "spm", "VOICE_CALL": "voice_call"}
MAX_COUPON_CODE = 15
MAX_OTP_CODE = 15


def _parts(components) -> dict:
    """The approved template's parts by type, buttons as a list."""
    out: dict = {}
    for c in components or []:
        if isinstance(c, dict):
            out.setdefault(str(c.get("type") or "").upper(), c)
    return out


def _media_param(params, fmt: str, *, field: str, errors: _Errors) -> None:
    kinds = ("gif", "video") if fmt == "GIF" else (fmt.lower(),)  # a GIF header's media is an mp4
    first = params[0] if isinstance(params, list) and params and isinstance(params[0], dict) else None
    kind = str((first or {}).get("type", "")).lower()
    if first is None or kind not in kinds or not isinstance(first.get(kind), dict):
        errors.add(field, f"The template's header is {fmt}: send parameters [{{\"type\": \"{kinds[0]}\", "
                          f"\"{kinds[0]}\": {{\"link\": \"https://…\"}}}}].")
        return
    media = first[kind]
    link, media_id = media.get("link"), media.get("id")
    if bool(link) == bool(media_id):
        errors.add(f"{field}[0].{kind}", "Give exactly one of link (public https URL) and id (uploaded media).")
    elif link and not (isinstance(link, str) and link.startswith("https://")) and "{{" not in str(link):
        errors.add(f"{field}[0].{kind}.link", "The media link must be a public https URL.")


def _text_param(params, *, field: str, max_len: int | None, errors: _Errors, kind: str = "text") -> None:
    first = params[0] if isinstance(params, list) and len(params) == 1 and isinstance(params[0], dict) else None
    value = first.get(kind) if first is not None and str(first.get("type", "")).lower() == kind else None
    if not isinstance(value, str) or not value.strip():
        errors.add(field, f"Send one parameter {{\"type\": \"{kind}\", \"{kind}\": \"…\"}}.")
    elif max_len is not None and "{{" not in value and len(value) > max_len:
        errors.add(f"{field}[0].{kind}", f"At most {max_len} characters.")


def _buttons_check(tpl_buttons: list, sent: list[tuple[int, dict]], *, field: str, errors: _Errors) -> None:
    """Meta's button components: sub_type and index name a button of the template; dynamic URL, copy-code and
    OTP buttons need their parameter."""
    by_index: dict[int, dict] = {}
    for position, comp in sent:
        where = f"{field}[{position}]"
        try:
            index = int(comp.get("index"))
        except (TypeError, ValueError):
            errors.add(f"{where}.index", "A button component needs its index (0 for the first button).")
            continue
        if not 0 <= index < len(tpl_buttons):
            errors.add(f"{where}.index", f"The template has {len(tpl_buttons)} button(s); index {index} is not one.")
            continue
        button = tpl_buttons[index] if isinstance(tpl_buttons[index], dict) else {}
        expected = SEND_SUB_TYPES.get(str(button.get("type") or "").upper())
        if str(comp.get("sub_type") or "").lower() != expected:
            errors.add(f"{where}.sub_type", f"Button {index} of the template is {button.get('type')}: "
                                            f"sub_type must be {expected}.")
            continue
        by_index[index] = comp
        params = comp.get("parameters")
        btype = str(button.get("type") or "").upper()
        if btype == "COPY_CODE":
            _text_param(params, field=f"{where}.parameters", max_len=MAX_COUPON_CODE, errors=errors, kind="coupon_code")
        elif btype == "OTP":
            _text_param(params, field=f"{where}.parameters", max_len=MAX_OTP_CODE, errors=errors)
        elif btype == "URL" and "{{" in str(button.get("url") or ""):
            _text_param(params, field=f"{where}.parameters", max_len=MAX_URL, errors=errors)
    for index, button in enumerate(tpl_buttons):
        btype = str((button or {}).get("type") or "").upper() if isinstance(button, dict) else ""
        needs = btype in ("COPY_CODE", "OTP") or (btype == "URL" and "{{" in str(button.get("url") or ""))
        if needs and index not in by_index:
            what = {"COPY_CODE": "the code to copy", "OTP": "the one-time code"}.get(btype, "the URL's variable part")
            errors.add(field, f"Button {index} ({btype}) needs a button component with {what} "
                              f"(sub_type {SEND_SUB_TYPES[btype]}, index {index}).")


def send_components_check(*, template_components: list, components: list | None, field: str = "components",
                          allow_body: bool = True) -> list[dict[str, str]]:
    """Meta's send rules for a template's non-body parts (META.md §4), checked before the send so a bad one is
    a 400 naming the field instead of a failed message: a media header needs its media; a dynamic URL button,
    a copy-code button and an authentication (OTP) button need their parameter; a limited-time offer with an
    expiry needs expiration_time_ms; a carousel needs one card per template card, each with its header media
    and button parameters. Strings holding a campaign's `{{contact.…}}` are taken as filled. Returns errors."""
    errors = _Errors()
    tpl = _parts(template_components)
    components = components or []
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        return [{"field": field, "message": "components must be a list of Meta-shaped component objects."}]
    sent: dict[str, tuple[int, dict]] = {}
    buttons: list[tuple[int, dict]] = []
    for position, comp in enumerate(components):
        kind = str(comp.get("type") or "").lower()
        where = f"{field}[{position}]"
        if kind == "button":
            buttons.append((position, comp))
        elif kind in ("header", "body", "limited_time_offer", "carousel"):
            if kind in sent:
                errors.add(f"{where}.type", f"Only one {kind} component.")
            sent[kind] = (position, comp)
            if kind == "body" and not allow_body:
                errors.add(f"{where}.type", "The body's parameters are the campaign's variables.")
        else:
            errors.add(f"{where}.type", "type must be header, body, button, limited_time_offer or carousel.")
    header = tpl.get("HEADER")
    fmt = str((header or {}).get("format") or "TEXT").upper() if header else ""
    if fmt in MEDIA_HEADER_FORMATS:
        if "header" not in sent:
            errors.add(field, f"The template's header is {fmt}: send a header component with the media.")
        else:
            position, comp = sent["header"]
            _media_param(comp.get("parameters"), fmt, field=f"{field}[{position}].parameters", errors=errors)
    elif fmt == "LOCATION" and "header" not in sent:
        errors.add(field, "The template's header is a location: send a header component with it.")
    elif "header" in sent and not (fmt == "TEXT" and "{{" in str((header or {}).get("text") or "")) \
            and fmt != "LOCATION":
        errors.add(f"{field}[{sent['header'][0]}].type", "The template's header takes no parameters.")
    tpl_buttons = (tpl.get("BUTTONS") or {}).get("buttons") or []
    _buttons_check(tpl_buttons, buttons, field=field, errors=errors)
    lto = (tpl.get("LIMITED_TIME_OFFER") or {}).get("limited_time_offer") or {}
    if "limited_time_offer" in sent:
        position, comp = sent["limited_time_offer"]
        params = comp.get("parameters")
        first = params[0] if isinstance(params, list) and params and isinstance(params[0], dict) else {}
        expiry = (first.get("limited_time_offer") or {}).get("expiration_time_ms") \
            if isinstance(first.get("limited_time_offer"), dict) else None
        if "LIMITED_TIME_OFFER" not in tpl:
            errors.add(f"{field}[{position}].type", "The template has no limited-time offer.")
        elif not (isinstance(expiry, int) and not isinstance(expiry, bool) and expiry > 0) and "{{" not in str(expiry):
            errors.add(f"{field}[{position}].parameters", "Send [{\"type\": \"limited_time_offer\", "
                       "\"limited_time_offer\": {\"expiration_time_ms\": <Unix time in ms>}}].")
    elif lto.get("has_expiration"):
        errors.add(field, "The template's offer expires: send a limited_time_offer component with "
                          "expiration_time_ms.")
    cards = (tpl.get("CAROUSEL") or {}).get("cards") or []
    if cards:
        if "carousel" not in sent:
            errors.add(field, f"The template is a carousel of {len(cards)} cards: send a carousel component.")
        else:
            position, comp = sent["carousel"]
            given = comp.get("cards")
            where = f"{field}[{position}].cards"
            if not isinstance(given, list) or len(given) != len(cards):
                errors.add(where, f"Send exactly {len(cards)} cards, one per card of the template.")
            else:
                for i, (card, tpl_card) in enumerate(zip(given, cards, strict=True)):
                    if not isinstance(card, dict) or card.get("card_index") != i:
                        errors.add(f"{where}[{i}].card_index", f"Cards go in order: card_index {i}.")
                        continue
                    errors.items += send_components_check(
                        template_components=(tpl_card or {}).get("components") or [],
                        components=card.get("components") or [], field=f"{where}[{i}].components")
    elif "carousel" in sent:
        errors.add(f"{field}[{sent['carousel'][0]}].type", "The template is not a carousel.")
    return errors.items
