"""Per-recipient template variables.

A campaign maps each template placeholder to a small expression over the contact:

    {"1": "{{contact.name|there}}", "2": "{{contact.custom_fields.city}}", "3": "Code {{contact.external_id}}"}

- `{{contact.FIELD}}` with FIELD one of `name`, `first_name` (the name's first word), `phone`, `email`,
  `external_id`, or `custom_fields.KEY` (any key; matched exactly, case-sensitive).
- `{{contact.FIELD|default}}` uses `default` (literal text, may contain spaces) when the value is missing or
  blank. `{{contact.FIELD|}}` allows an empty value explicitly.
- Text outside `{{…}}` is kept as is, so one variable may mix text and fields.
- A placeholder that renders empty with no default skips the recipient (`skipped_missing_variable`) rather than
  sending Meta an empty parameter, which it rejects.

Keys are "1".."n" for positional templates (rendered into a list in order) or the parameter names for
templates with named parameters (rendered into a dict).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apps.core.errors import ValidationFailed

_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_FIELDS = {"name", "first_name", "phone", "email", "external_id"}
# Contact columns a renderer needs; selectors fetch exactly these.
CONTACT_VALUE_FIELDS = ("id", "name", "phone", "email", "external_id", "custom_fields")


@dataclass(frozen=True)
class _Part:
    text: str = ""
    field: str | None = None  # "name" or "custom_fields.city"
    default: str | None = None


def _parse_expr(expr: str, *, key: str) -> _Part:
    path, sep, default = expr.partition("|")
    path = path.strip()
    if not path.startswith("contact."):
        raise ValidationFailed(f"Variable {key}: {{{{{expr}}}}} must start with 'contact.'.", field=f"variables.{key}")
    field = path[len("contact."):]
    if field.startswith("custom_fields."):
        if not field[len("custom_fields."):]:
            raise ValidationFailed(f"Variable {key}: custom field name missing.", field=f"variables.{key}")
    elif field not in _FIELDS:
        raise ValidationFailed(
            f"Variable {key}: unknown contact field {field!r}; use one of {', '.join(sorted(_FIELDS))} "
            "or custom_fields.KEY.", field=f"variables.{key}",
        )
    return _Part(field=field, default=default if sep else None)


def compile_spec(spec: dict | list | None) -> dict[str, list[_Part]]:
    """Validate a campaign's `variables` and return {key: parts}. A list is taken as positional 1..n."""
    if spec is None:
        return {}
    if isinstance(spec, list):
        spec = {str(i + 1): v for i, v in enumerate(spec)}
    if not isinstance(spec, dict):
        raise ValidationFailed("variables must be an object or a list.", field="variables")
    compiled: dict[str, list[_Part]] = {}
    for key, raw in spec.items():
        if not isinstance(raw, str):
            raise ValidationFailed(f"Variable {key} must be a string.", field=f"variables.{key}")
        if len(raw) > 1024:
            raise ValidationFailed(f"Variable {key} is over 1024 characters.", field=f"variables.{key}")
        parts: list[_Part] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(raw):
            if match.start() > pos:
                parts.append(_Part(text=raw[pos:match.start()]))
            parts.append(_parse_expr(match.group(1), key=str(key)))
            pos = match.end()
        if pos < len(raw):
            parts.append(_Part(text=raw[pos:]))
        compiled[str(key)] = parts
    return compiled


def is_positional(compiled: dict[str, list[_Part]]) -> bool:
    return all(k.isdigit() for k in compiled)


def _lookup(contact: dict, field: str) -> str:
    if field.startswith("custom_fields."):
        value = (contact.get("custom_fields") or {}).get(field[len("custom_fields."):])
    elif field == "first_name":
        value = (contact.get("name") or "").strip().split(" ")[0]
    else:
        value = contact.get(field)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def render(compiled: dict[str, list[_Part]], contact: dict) -> list[str] | dict[str, str] | None:
    """Render the variables for one contact (a dict of CONTACT_VALUE_FIELDS). None = a required value is
    missing, so the recipient must be skipped."""
    out: dict[str, str] = {}
    for key, parts in compiled.items():
        chunks = []
        for part in parts:
            if part.field is None:
                chunks.append(part.text)
                continue
            value = _lookup(contact, part.field).strip()
            if not value:
                if part.default is None:
                    return None
                value = part.default
            chunks.append(value)
        out[key] = "".join(chunks)
    if is_positional(compiled):
        return [out[k] for k in sorted(out, key=int)]
    return out


def sample_values(compiled: dict[str, list[_Part]]) -> list[str] | dict[str, str]:
    """Placeholder values used to check the spec against the template's placeholders at creation."""
    if is_positional(compiled):
        return [f"<{k}>" for k in sorted(compiled, key=int)]
    return {k: f"<{k}>" for k in compiled}


def required_fields(compiled: dict[str, list[_Part]]) -> set[str]:
    return {p.field for parts in compiled.values() for p in parts if p.field and p.default is None}


def contact_values(contact) -> dict:
    return {f: getattr(contact, f) for f in CONTACT_VALUE_FIELDS}
