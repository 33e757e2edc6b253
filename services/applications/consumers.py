"""Event handlers of the applications service and their subscriptions: the copies of plans,
certificates, institutions and majors, each applied only when its `subject_version` is newer."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.applications import service
from shared.contracts import plans, registry
from shared.contracts.envelope import Event
from shared.messaging.consumer import Subscription


def subscriptions() -> list[Subscription]:
    copies = Subscription("copies")

    @copies.on(plans.PlanPublished, plans.PlanChanged, plans.PlanOpened, plans.PlanClosed)
    async def on_plan(session: AsyncSession, event: Event[Any]) -> None:
        await service.copy_plan(session, data=event.data, subject_version=event.subject_version)

    @copies.on(registry.CertificateUpserted)
    async def on_certificate(session: AsyncSession, event: Event[Any]) -> None:
        await service.copy_certificate(session, data=event.data, subject_version=event.subject_version)

    @copies.on(registry.InstitutionUpserted)
    async def on_institution(session: AsyncSession, event: Event[Any]) -> None:
        await service.copy_institution(session, data=event.data, subject_version=event.subject_version)

    @copies.on(registry.MajorUpserted)
    async def on_major(session: AsyncSession, event: Event[Any]) -> None:
        await service.copy_major(session, data=event.data, subject_version=event.subject_version)

    return [copies]
