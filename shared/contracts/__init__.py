"""The public API of the bus: one pydantic class per event, in a module per producer.
Importing this package registers every event class, so consumers can decode any routing key."""

from shared.contracts import applications, identity, notify, plans, registry
from shared.contracts.envelope import Event, EventData, event_class_for, registered_events

__all__ = [
    "Event",
    "EventData",
    "applications",
    "event_class_for",
    "identity",
    "notify",
    "plans",
    "registered_events",
    "registry",
]
