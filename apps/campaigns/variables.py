"""Per-recipient template variables.

A campaign maps each template placeholder to a small expression over the contact:

    {"1": "{{contact.name|there}}", "2": "{{contact.custom_fields.city}}", "3": "Code {{contact.external_id}}"}

- `{{contact.FIELD}}` with FIELD one of `name`, `first_name` (the name's first word), `phone`, `email`,
  `external_id`, or `custom_fields.KEY` (any key; matched exactly, case-sensitive).
- `{{contact.FIELD|default}}` uses `default` (literal text, may contain spaces) when the value is missing or
  blank. `{{contact.FIELD|}}` allows an empty value explicitly.
- Text outside `{{…}}` is kept as is, so one variable may mix text and fields.
- `{{track:https://…}}` becomes each recipient's own short link (apps.links), made by the writer; a
  campaign with tracked links is handed out recipient by recipient (the set-based SQL form does not
  make links).
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


def _parse_expr(expr: str, *, key: str, where: str) -> _Part:
    if expr.startswith("track:"):
        # A tracked link: kept as written; the writer turns it into each recipient's own short link.
        from apps.links.services import track_url_validate

        track_url_validate(expr[len("track:"):].strip(), field=where)
        return _Part(text="{{" + expr + "}}")
    path, sep, default = expr.partition("|")
    path = path.strip()
    if not path.startswith("contact."):
        raise ValidationFailed(f"Variable {key}: {{{{{expr}}}}} must start with 'contact.'.", field=where)
    field = path[len("contact."):]
    if field.startswith("custom_fields."):
        if not field[len("custom_fields."):]:
            raise ValidationFailed(f"Variable {key}: custom field name missing.", field=where)
    elif field not in _FIELDS:
        raise ValidationFailed(
            f"Variable {key}: unknown contact field {field!r}; use one of {', '.join(sorted(_FIELDS))} "
            "or custom_fields.KEY.", field=where,
        )
    return _Part(field=field, default=default if sep else None)


def compile_spec(spec: dict | list | None, *, prefix: str = "variables.") -> dict[str, list[_Part]]:
    """Validate a campaign's `variables` and return {key: parts}. A list is taken as positional 1..n.
    `prefix`: what error fields start with (a key of `components` is its own full path)."""
    if spec is None:
        return {}
    if isinstance(spec, list):
        spec = {str(i + 1): v for i, v in enumerate(spec)}
    if not isinstance(spec, dict):
        raise ValidationFailed("variables must be an object or a list.", field="variables")
    compiled: dict[str, list[_Part]] = {}
    for key, raw in spec.items():
        if not isinstance(raw, str):
            raise ValidationFailed(f"Variable {key} must be a string.", field=f"{prefix}{key}")
        if len(raw) > 1024:
            raise ValidationFailed(f"Variable {key} is over 1024 characters.", field=f"{prefix}{key}")
        parts: list[_Part] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(raw):
            if match.start() > pos:
                parts.append(_Part(text=raw[pos:match.start()]))
            parts.append(_parse_expr(match.group(1), key=str(key), where=f"{prefix}{key}"))
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


def contact_values(contact) -> dict:
    return {f: getattr(contact, f) for f in CONTACT_VALUE_FIELDS}


# --- the same rendering as SQL (PostgreSQL), for the set-based hand-out ---------------------------------

# Every character str.strip() removes: btrim() with this set trims exactly as Python does.
PY_WHITESPACE = "".join(chr(i) for i in range(0x3001) if chr(i).isspace())  # none above U+3000
_COLUMNS = {"name": "name", "phone": "phone", "email": "email", "external_id": "external_id"}


def _sql_value(field: str, *, alias: str) -> tuple[str, list]:
    """SQL for `_lookup(contact, field).strip()` over the contact row `alias`. Custom fields read as text: only
    right for string (or null/missing) values, which `sql_unsupported` tells apart."""
    if field.startswith("custom_fields."):
        return (f"btrim(coalesce({alias}.custom_fields ->> %s, ''), %s)",
                [field[len("custom_fields."):], PY_WHITESPACE])
    if field == "first_name":
        return (f"btrim(split_part(btrim(coalesce({alias}.name, ''), %s), ' ', 1), %s)",
                [PY_WHITESPACE, PY_WHITESPACE])
    return f"btrim(coalesce({alias}.{_COLUMNS[field]}::text, ''), %s)", [PY_WHITESPACE]


@dataclass(frozen=True)
class SqlRender:
    keys: list[str]  # output order: positional keys by number, named keys as given
    positional: bool
    values: list[tuple[str, list]]  # one text expression per key
    missing: tuple[str, list]  # true when a required value is blank (the recipient is skipped)
    unsupported: tuple[str, list]  # true when the contact holds a value SQL would render differently


def sql_render(compiled: dict[str, list[_Part]], *, alias: str = "c") -> SqlRender:
    """The SQL twin of `render` over a contact row: the same values, defaults and skips. A custom field holding
    a non-string JSON value (Python renders str(value): "True", "1.5", "['a']") is not rendered in SQL:
    `unsupported` flags such rows so the caller renders them in Python."""
    positional = is_positional(compiled)
    keys = sorted(compiled, key=int) if positional else list(compiled)
    values: list[tuple[str, list]] = []
    missing_sql: list[str] = []
    missing_params: list = []
    custom_keys: list[str] = []
    for key in keys:
        chunks: list[str] = []
        params: list = []
        for part in compiled[key]:
            if part.field is None:
                chunks.append("%s::text")
                params.append(part.text)
                continue
            sql, p = _sql_value(part.field, alias=alias)
            if part.field.startswith("custom_fields."):
                custom_keys.append(part.field[len("custom_fields."):])
            if part.default is None:
                missing_sql.append(f"{sql} = ''")
                missing_params += p
                chunks.append(sql)
                params += p
            else:
                chunks.append(f"(CASE WHEN {sql} = '' THEN %s::text ELSE {sql} END)")
                params += [*p, part.default, *p]
        values.append((" || ".join(chunks) if chunks else "''::text", params))
    missing = (" OR ".join(missing_sql) if missing_sql else "false", missing_params)
    if custom_keys:
        unsupported = (
            f"(coalesce(jsonb_typeof({alias}.custom_fields) NOT IN ('object', 'null'), false) OR "
            + " OR ".join(f"coalesce(jsonb_typeof({alias}.custom_fields -> %s) NOT IN ('string', 'null'), false)"
                          for _ in custom_keys) + ")",
            list(custom_keys),
        )
    else:
        unsupported = ("false", [])
    return SqlRender(keys=keys, positional=positional, values=values, missing=missing, unsupported=unsupported)


# --- components: Meta's send shape with per-recipient values ------------------------------------------------

MAX_COMPONENTS_BYTES = 20_000


@dataclass(frozen=True)
class CompiledComponents:
    """A campaign's `components` (Meta's send shape: header media, button parameters, copy codes, an offer's
    expiry, carousel cards) with every string holding `{{contact.…}}` compiled into a slot filled per recipient."""

    shape: list
    slots: dict[tuple, list[_Part]]  # path into `shape` -> parts

    def __bool__(self) -> bool:
        return bool(self.shape)


def _walk(value, path: tuple, slots: dict, *, field: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, (*path, k), slots, field=f"{field}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(v, (*path, i), slots, field=f"{field}[{i}]")
    elif isinstance(value, str) and "{{" in value:
        compiled = compile_spec({field: value}, prefix="")
        if any(part.field for part in compiled[field]):
            slots[path] = compiled[field]


def compile_components(components, *, field: str = "template.components") -> CompiledComponents:
    """Validate the shape (a list of objects) and find the per-recipient slots (same expressions as
    `variables`: `{{contact.FIELD|default}}`, `{{track:…}}` kept for the writer)."""
    import json

    if components in (None, []):
        return CompiledComponents(shape=[], slots={})
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise ValidationFailed("components must be a list of Meta-shaped component objects.", field=field)
    if len(json.dumps(components)) > MAX_COMPONENTS_BYTES:
        raise ValidationFailed(f"components are over {MAX_COMPONENTS_BYTES} bytes.", field=field)
    slots: dict[tuple, list[_Part]] = {}
    for i, comp in enumerate(components):
        _walk(comp, (i,), slots, field=f"{field}[{i}]")
    return CompiledComponents(shape=components, slots=slots)


def _set(shape, path: tuple, value) -> None:
    target = shape
    for key in path[:-1]:
        target = target[key]
    last = path[-1]
    # An offer's expiry is a number at Meta: a per-recipient value (e.g. a custom field) is read as one.
    if last == "expiration_time_ms":
        value = int(value)
    target[last] = value


def render_components(compiled: CompiledComponents, contact: dict) -> list | None:
    """The components for one contact; None = a required value is missing (or an expiry is not a whole
    number), so the recipient is skipped like a missing variable."""
    import copy

    if not compiled.slots:
        return compiled.shape or None
    shape = copy.deepcopy(compiled.shape)
    for path, parts in compiled.slots.items():
        rendered = render({"v": parts}, contact)
        if rendered is None:
            return None
        try:
            _set(shape, path, rendered["v"])
        except ValueError:
            return None
    return shape


def sample_components(compiled: CompiledComponents) -> list | None:
    """The components with placeholder values in the slots, to check them against the template at creation
    (the send rules take a string still holding `{{…}}` as filled)."""
    import copy

    if not compiled:
        return None
    shape = copy.deepcopy(compiled.shape)
    for path in compiled.slots:
        target = shape
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = 1 if path[-1] == "expiration_time_ms" else "{{sample}}"
    return shape
