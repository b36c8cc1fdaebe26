"""The event types: each declared once (name, public or internal, description, JSON Schema of its `data`).

Each app declares its own types with one builder per type in its `events` module (imported from its
AppConfig.ready); core only holds the registry, since core imports no app.
"""

from apps.core.events.registry import (
    DuplicateEventType,
    EventType,
    UnknownEventType,
    event_data_errors,
    event_type_get,
    event_type_is_public,
    event_type_register,
    event_types,
    event_types_known,
    public_event_types,
)

__all__ = [
    "DuplicateEventType",
    "EventType",
    "UnknownEventType",
    "event_data_errors",
    "event_type_get",
    "event_type_is_public",
    "event_type_register",
    "event_types",
    "event_types_known",
    "public_event_types",
]
