"""Template + variables → the text a person sees. Used by the send path (to validate the variables and to
store the rendered body) and by the inbox to show sent templates."""

from __future__ import annotations

import re
from typing import Any

from apps.core.errors import TemplateVariableCountMismatch

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def placeholders(text: str | None) -> list[str]:
    """Placeholder names in order of appearance, repeats removed."""
    seen: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def component(components: list | None, kind: str) -> dict | None:
    for item in components or []:
        if isinstance(item, dict) and str(item.get("type", "")).upper() == kind:
            return item
    return None


def _params_from_send_components(send_components: list | None, kind: str) -> list | dict | None:
    """Meta's send shape: [{"type": "body", "parameters": [{"type": "text", "text": "x",
    "parameter_name": "first_name"?}]}]."""
    for item in send_components or []:
        if not isinstance(item, dict) or str(item.get("type", "")).lower() != kind:
            continue
        params = item.get("parameters") or []
        if any(isinstance(p, dict) and p.get("parameter_name") for p in params):
            return {p["parameter_name"]: _param_text(p) for p in params if isinstance(p, dict)}
        return [_param_text(p) for p in params]
    return None


def _param_text(param: Any) -> str:
    if not isinstance(param, dict):
        return str(param)
    kind = param.get("type", "text")
    if kind == "text":
        return str(param.get("text", ""))
    if kind == "currency":
        return str((param.get("currency") or {}).get("fallback_value", ""))
    if kind == "date_time":
        return str((param.get("date_time") or {}).get("fallback_value", ""))
    return str(param.get(kind, ""))


def _fill(text: str, values: list | dict | None, *, where: str, named: bool) -> str:
    names = placeholders(text)
    if not names:
        if values:
            raise TemplateVariableCountMismatch(
                f"The template's {where} takes no variables but {len(values)} were given.",
                details={"field": "variables", "component": where, "expected": 0, "given": len(values)},
            )
        return text
    values = values if values is not None else ([] if not named else {})
    if named:
        if not isinstance(values, dict):
            raise TemplateVariableCountMismatch(
                f"The template's {where} uses named variables ({', '.join(names)}); send an object.",
                details={"field": "variables", "component": where, "expected": names},
            )
        missing = [n for n in names if n not in values]
        extra = [k for k in values if k not in names]
        if missing or extra:
            raise TemplateVariableCountMismatch(
                f"The template's {where} expects variables {', '.join(names)}.",
                details={"field": "variables", "component": where, "expected": names, "missing": missing,
                         "unexpected": extra},
            )
        mapping = {k: str(v) for k, v in values.items()}
    else:
        if isinstance(values, dict):
            raise TemplateVariableCountMismatch(
                f"The template's {where} uses positional variables; send a list of {len(names)}.",
                details={"field": "variables", "component": where, "expected": len(names)},
            )
        if len(values) != len(names):
            raise TemplateVariableCountMismatch(
                f"The template's {where} has {len(names)} variable(s) but {len(values)} were given.",
                details={"field": "variables", "component": where, "expected": len(names), "given": len(values)},
            )
        mapping = {str(i + 1): str(v) for i, v in enumerate(values)}
    return PLACEHOLDER.sub(lambda m: mapping.get(m.group(1), m.group(0)), text)


def template_render(*, template, variables: list | dict | None, components: list | None = None) -> str:
    """Header / body / footer text with the variables filled in, joined by newlines. `variables` fills the
    body (a list for positional templates, an object for named ones); `components` is Meta's send shape
    and may carry header and body parameters instead. Raises TemplateVariableCountMismatch."""
    named = str(getattr(template, "parameter_format", "POSITIONAL")).upper() == "NAMED"
    parts: list[str] = []
    header = component(template.components, "HEADER")
    if header and str(header.get("format", "TEXT")).upper() == "TEXT" and header.get("text"):
        parts.append(_fill(header["text"], _params_from_send_components(components, "header"),
                           where="header", named=named))
    body = component(template.components, "BODY")
    body_values = variables
    if body_values is None or (isinstance(body_values, (list, dict)) and not body_values):
        from_components = _params_from_send_components(components, "body")
        if from_components is not None:
            body_values = from_components
    if body is not None:
        parts.append(_fill(body.get("text", ""), body_values, where="body", named=named))
    elif body_values:
        raise TemplateVariableCountMismatch("The template has no body to take variables.",
                                            details={"field": "variables", "expected": 0})
    footer = component(template.components, "FOOTER")
    if footer and footer.get("text"):
        parts.append(footer["text"])
    return "\n".join(parts)


# --- the card a customer sees (the inbox draws it) ----------------------------------------------------------


def _send_parts(send_components: list | None) -> tuple[dict, dict[int, dict], list]:
    """Meta's send components by kind: ({"header"|"limited_time_offer"|...: comp}, {button index: comp}, cards)."""
    kinds: dict = {}
    buttons: dict[int, dict] = {}
    for comp in send_components or []:
        if not isinstance(comp, dict):
            continue
        kind = str(comp.get("type", "")).lower()
        if kind == "button":
            try:
                buttons[int(comp.get("index", 0))] = comp
            except (TypeError, ValueError):
                continue
        else:
            kinds.setdefault(kind, comp)
    cards = (kinds.get("carousel") or {}).get("cards") or []
    return kinds, buttons, cards if isinstance(cards, list) else []


def _first_param(comp: dict | None) -> dict:
    params = (comp or {}).get("parameters") or []
    return params[0] if params and isinstance(params[0], dict) else {}


def _safe_fill(text: str, values, *, where: str, named: bool) -> str:
    try:
        return _fill(text, values, where=where, named=named)
    except TemplateVariableCountMismatch:
        return text


def _card_view(tpl_components: list | None, send_components: list | None, *, variables=None,
               named: bool = False) -> dict:
    kinds, buttons_sent, _ = _send_parts(send_components)
    view: dict = {}
    header = component(tpl_components, "HEADER")
    if header:
        fmt = str(header.get("format") or "TEXT").upper()
        out = {"format": fmt}
        if fmt == "TEXT":
            out["text"] = _safe_fill(str(header.get("text") or ""), _params_from_send_components(send_components,
                                                                                                  "header"),
                                     where="header", named=named)
        else:
            param = _first_param(kinds.get("header"))
            media = param.get(str(param.get("type") or "").lower()) if param else None
            if isinstance(media, dict):
                out["link"] = media.get("link") or None
                out["filename"] = media.get("filename") or None
        view["header"] = out
    body = component(tpl_components, "BODY")
    if body is not None:
        values = variables if variables not in (None, [], {}) else _params_from_send_components(send_components, "body")
        view["body"] = _safe_fill(str(body.get("text") or ""), values, where="body", named=named)
    footer = component(tpl_components, "FOOTER")
    if footer and footer.get("text"):
        view["footer"] = footer["text"]
    buttons = []
    for index, button in enumerate((component(tpl_components, "BUTTONS") or {}).get("buttons") or []):
        if not isinstance(button, dict):
            continue
        btype = str(button.get("type") or "").upper()
        param = _first_param(buttons_sent.get(index))
        item = {"type": btype, "text": button.get("text") or ""}
        if btype == "COPY_CODE":
            item["text"] = item["text"] or "Copy offer code"
            item["code"] = param.get("coupon_code") or button.get("example") or ""
        elif btype == "OTP":
            item["otp_type"] = str(button.get("otp_type") or "COPY_CODE").upper()
            item["text"] = item["text"] or ("Autofill" if item["otp_type"] != "COPY_CODE" else "Copy code")
            item["code"] = param.get("text") or ""
        elif btype == "URL":
            url = str(button.get("url") or "")
            item["url"] = PLACEHOLDER.sub(str(param.get("text") or "").replace("\\", "\\\\"), url)
        elif btype == "PHONE_NUMBER":
            item["phone_number"] = button.get("phone_number") or ""
        buttons.append(item)
    if buttons:
        view["buttons"] = buttons
    return view


def template_view(*, template, content: dict | None) -> dict:
    """What the customer sees for a sent template: header (text, or the media's kind and link), the
    limited-time offer strip with its expiry, body, footer, buttons with their filled values (the code a
    copy-code or authentication button copies, the URL a dynamic button opens) and carousel cards. Built from
    the approved template and the message's content (variables and Meta-shaped components)."""
    content = content if isinstance(content, dict) else {}
    named = str(getattr(template, "parameter_format", "POSITIONAL")).upper() == "NAMED"
    send = content.get("components")
    view = _card_view(template.components, send, variables=content.get("variables"), named=named)
    view["category"] = template.category
    kinds, _, cards_sent = _send_parts(send)
    lto = component(template.components, "LIMITED_TIME_OFFER")
    if lto:
        offer = lto.get("limited_time_offer") or {}
        expiry = (_first_param(kinds.get("limited_time_offer")).get("limited_time_offer") or {}).get(
            "expiration_time_ms")
        view["offer"] = {"text": offer.get("text") or "", "expires_at_ms": expiry if isinstance(expiry, int) else None}
    carousel = component(template.components, "CAROUSEL")
    if carousel:
        by_index = {c.get("card_index"): c for c in cards_sent if isinstance(c, dict)}
        view["cards"] = [_card_view((card or {}).get("components"), (by_index.get(i) or {}).get("components"),
                                    named=named)
                         for i, card in enumerate(carousel.get("cards") or [])]
    return view
