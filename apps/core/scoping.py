"""WABA binding: what a WABA-bound key (or a WABA-bound webhook subscription) may see. Written once and
failing closed: every tenant query goes through tenant_queryset (apps.core.selectors), which calls
waba_scoped here, and a model that has not declared how it belongs to a WABA shows NOTHING to a bound
caller (an empty queryset), never everything.

A model declares its binding in one of three ways:
- `TENANT_WABA_PATH = "phone_number__waba_id"`: the lookup path to the WABA's id;
- `TENANT_WABA_PATH = WABA_SHARED`: workspace configuration every key of the workspace sees (canned
  responses, auto-reply rules, idempotency records, media fetched by its unguessable id);
- waba_scope_register(Model, fn) from its app's ready(): fn(queryset, waba_id) -> queryset, for rows
  whose WABA is found through other apps (a contact belongs to the WABAs it has traffic on, so the
  conversations app, which knows messages, registers the contact's scope).

Events belong to a WABA through what they are about. Each app registers the data keys it owns
(event_waba_anchor_register): `waba_id` (template events carry it), `phone_number_id`, `message_id`,
`conversation_id`, `campaign_id`, the contact's id. An event belongs to the WABA of its most specific anchor
(the first present one in priority order); an event with no anchor at all (a wallet event) is
workspace-level and not shown to bound callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

WABA_SHARED = "__workspace__"

_scopes: dict[type, Callable[[QuerySet, str], QuerySet]] = {}


def waba_scope_register(model: type, fn: Callable[[QuerySet, str], QuerySet]) -> None:
    _scopes[model] = fn


def waba_scope_declared(model: type) -> bool:
    """Has the model said how it belongs to a WABA (a path, WABA_SHARED or a registered scope)?"""
    return model in _scopes or bool(getattr(model, "TENANT_WABA_PATH", None))


def waba_scoped(qs: QuerySet, *, waba_id: str) -> QuerySet:
    """`qs` limited to what WABA `waba_id` may see; unchanged when waba_id is empty (an unbound caller)."""
    if not waba_id:
        return qs
    model = qs.model
    fn = _scopes.get(model)
    if fn is not None:
        return fn(qs, waba_id)
    path = getattr(model, "TENANT_WABA_PATH", None)
    if path == WABA_SHARED:
        return qs
    if path:
        return qs.filter(**{path: waba_id})
    return qs.none()  # undeclared: fail closed


# --- events ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Anchor:
    path: tuple[str, ...]  # keys into Event.data, e.g. ("contact", "id")
    priority: int  # lower is more specific
    rows: Callable[[str], QuerySet] | None  # waba_id -> the rows (whose pk the key holds) of that WABA


_anchors: dict[tuple[str, ...], _Anchor] = {}


def event_waba_anchor_register(path: tuple[str, ...], *, priority: int,
                               rows: Callable[[str], QuerySet] | None = None) -> None:
    """Events whose data carries `path` belong to the WABA owning the row with that primary key:
    rows(waba_id) is the queryset of that WABA's rows. rows=None: the value is the WABA's id itself."""
    _anchors[path] = _Anchor(path=path, priority=priority, rows=rows)


def _key_text(path: tuple[str, ...]):
    """The value at `path` as plain text (Cast: compared as text, not as JSON, on every backend)."""
    expr = "data"
    for key in path:
        expr = KeyTextTransform(key, expr)
    return Cast(expr, TextField())


def events_waba_scoped(qs: QuerySet, waba_id: str) -> QuerySet:
    anchors = sorted(_anchors.values(), key=lambda a: a.priority)
    if not anchors:
        return qs.none()
    annotations = {f"_waba_anchor_{i}": _key_text(a.path) for i, a in enumerate(anchors)}
    qs = qs.annotate(**annotations)
    visible = Q(pk__in=[])
    earlier_absent = Q()
    for i, anchor in enumerate(anchors):
        name = f"_waba_anchor_{i}"
        owned = Q(**{name: waba_id}) if anchor.rows is None else Q(
            Exists(anchor.rows(waba_id).filter(pk=OuterRef(name))))
        # Absent: no key, an empty id, or JSON null (SQL NULL on PostgreSQL, the text 'null' on SQLite).
        absent = Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__in": ("", "null")})
        visible |= earlier_absent & ~absent & owned
        earlier_absent &= absent
    return qs.filter(visible)

