"""The registry of event types. Appending checks only that the type is registered (a dict lookup);
the schemas are for the docs and for the test suite, which validates every event it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator


class UnknownEventType(LookupError):  # noqa: N818 - named for what the caller did wrong
    """An event type nobody registered: a typo, or an app whose events module was not imported."""


class DuplicateEventType(RuntimeError):  # noqa: N818
    """A second declaration of one type: each type has one schema and one builder."""


@dataclass(frozen=True)
class EventType:
    name: str
    public: bool  # webhook-subscribable and documented in API.md
    description: str
    schema: dict[str, Any]  # JSON Schema (draft 2020-12) of the event's `data`
    example: dict[str, Any]
    validator: Draft202012Validator = field(repr=False, compare=False)


_types: dict[str, EventType] = {}


def event_type_register(name: str, *, public: bool, description: str, schema: dict[str, Any],
                        example: dict[str, Any]) -> EventType:
    """Declare a type (at import of the declaring app's events module). The schema must be a valid
    draft 2020-12 schema and the example must satisfy it."""
    if name in _types:
        raise DuplicateEventType(f"Event type {name!r} is already registered.")
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(example), key=lambda e: list(e.absolute_path))
    if errors:
        raise ValueError(f"The example of {name!r} does not match its schema: {errors[0].message}")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": name, "description": description,
              **schema}
    entry = EventType(name=name, public=public, description=description, schema=schema, example=example,
                      validator=validator)
    _types[name] = entry
    return entry


def event_types_known(names) -> None:
    """Refuse a type nobody registered (the check event_append makes on every append)."""
    for name in names:
        if name not in _types:
            raise UnknownEventType(f"Unknown event type {name!r}: declare it in its app's events module.")


def event_type_get(name: str) -> EventType:
    event_types_known([name])
    return _types[name]


def event_types(*, public: bool | None = None) -> list[EventType]:
    """Registered types in name order; public=True: the webhook-subscribable ones."""
    return [t for _, t in sorted(_types.items()) if public is None or t.public == public]


def public_event_types() -> tuple[str, ...]:
    """The webhook-subscribable types, in name order ("*" in a subscription means all of these)."""
    return tuple(t.name for t in event_types(public=True))


def event_type_is_public(name: str) -> bool:
    entry = _types.get(name)
    return entry is not None and entry.public


def event_data_errors(name: str, data: Any) -> list[str]:
    """What is wrong with `data` for type `name` (empty when it validates)."""
    entry = _types.get(name)
    if entry is None:
        return [f"unregistered event type {name!r}"]
    return [f"{'/'.join(map(str, e.absolute_path)) or '(data)'}: {e.message}"
            for e in sorted(entry.validator.iter_errors(data), key=lambda e: list(e.absolute_path))]
