"""Event handlers of the identity service and their subscriptions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import service
from shared.contracts.registry import InstitutionUpserted
from shared.messaging.consumer import Subscription


async def on_institution_upserted(session: AsyncSession, event: InstitutionUpserted) -> None:
    """Keep the register copy that registration checks; an older version than ours is dropped."""
    data = event.data
    await service.apply_institution(
        session,
        code=data.code,
        name=data.name,
        province_code=data.province_code,
        city_code=data.city_code,
        version=event.subject_version,
    )


def subscriptions() -> list[Subscription]:
    # Registry announces the whole register at once on first load; a small prefetch keeps this
    # consumer from holding most of the connection pool while logins need it.
    institutions = Subscription("institutions", prefetch=10)
    institutions.on(InstitutionUpserted)(on_institution_upserted)
    return [institutions]
