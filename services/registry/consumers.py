"""Event handlers of the registry service and their subscriptions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import service
from shared.contracts.applications import PilotGranted
from shared.logging import get_logger
from shared.messaging.consumer import Subscription

log = get_logger("registry.consumers")
pilots = Subscription(name="pilots")


@pilots.on(PilotGranted)
async def on_pilot_granted(session: AsyncSession, event: PilotGranted) -> None:
    """Record the institution as a pilot of the year (a second grant of the same year changes nothing)."""
    recorded = await service.record_pilot(session, data=event.data)
    log.info("pilot_recorded" if recorded else "pilot_already_known", institution=event.data.institution_code)


def subscriptions() -> list[Subscription]:
    return [pilots]
