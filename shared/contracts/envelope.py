"""Event envelope. A concrete event subclasses `Event`, sets `type`/`version`, and names its data model.

    class PlanPublished(Event[PlanData]):
        TYPE = "plans.plan.published"
        VERSION = 1

The routing key is `<type>.v<version>`. Additive changes to a data model keep the version; any
other change is a new class with VERSION + 1, published beside the old one until consumers move.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from shared.logging import current_context


class EventData(BaseModel):
    model_config = ConfigDict(extra="allow")

    #: field names whose values are secrets: consumers must never log them.
    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset()


DataT = TypeVar("DataT", bound=EventData)
_REGISTRY: dict[str, type[Event[Any]]] = {}


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel, Generic[DataT]):
    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str = ""
    version: int = 1
    occurred_at: datetime = Field(default_factory=_now)
    producer: str = ""
    correlation_id: str | None = None
    causation_id: str | None = None
    subject: str
    subject_version: int = 0
    data: DataT

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.TYPE:
            _REGISTRY[routing_key(cls.TYPE, cls.VERSION)] = cls

    def model_post_init(self, _context: Any) -> None:
        if self.TYPE:
            self.type = self.TYPE
            self.version = self.VERSION
        if self.correlation_id is None:
            context = current_context()
            self.correlation_id = context.get("correlation_id")
            self.causation_id = self.causation_id or context.get("causation_id")

    @classmethod
    def routing_key_for(cls) -> str:
        return routing_key(cls.TYPE, cls.VERSION)

    @property
    def routing_key(self) -> str:
        return routing_key(self.type, self.version)


def routing_key(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def event_class_for(key: str) -> type[Event[Any]] | None:
    return _REGISTRY.get(key)


def registered_events() -> dict[str, type[Event[Any]]]:
    return dict(_REGISTRY)


class GenericEvent(Event[EventData]):
    """An event read off the bus whose class is unknown to this consumer."""
