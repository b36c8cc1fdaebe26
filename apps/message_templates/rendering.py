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
