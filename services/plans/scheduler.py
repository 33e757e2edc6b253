"""The window scheduler: announces plans.plan.opened / .closed when a plan's window opens or closes.

Every instance runs one. It wakes at the next due transition (or every `max_sleep` seconds, so a plan
published through another instance is noticed), and at start, so a transition missed while no instance
ran is announced when one comes back. Exactly-once comes from `service.announce_due`, not from here.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.plans import service
from services.plans.domain import Clock
from shared.logging import get_logger

log = get_logger("plans.scheduler")


class WindowScheduler:
    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, max_sleep: float = 5.0) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.max_sleep = max_sleep
        self.announced = 0
        self.ticks = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="plans-window-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Look again now (a plan was published or its deadline moved)."""
        self._wake.set()

    async def run_once(self) -> float:
        """Announce what is due; return how long to sleep before the next transition."""
        while True:
            async with self.sessionmaker() as session:
                count = await service.announce_due(session, now=self.clock())
            self.announced += count
            if count == 0:
                break
            log.info("plan_transitions_announced", count=count)
        async with self.sessionmaker() as session:
            due = await service.next_transition_at(session)
        if due is None:
            return self.max_sleep
        return min(self.max_sleep, max((due - self.clock()).total_seconds(), 0.0))

    async def _run(self) -> None:
        while True:
            try:
                delay = await self.run_once()
                self.ticks += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("scheduler_tick_failed", error=str(exc))
                delay = self.max_sleep
            # Floor the sleep: a transition due "now" is announced by the next tick, not by a busy loop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(delay, 0.05))
            self._wake.clear()
