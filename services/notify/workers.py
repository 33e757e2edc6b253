"""Background loops of a notify instance: the SMS sender, the deadline reminder and the review digest.

Every instance runs all three; they coordinate only through the database (SKIP LOCKED claims,
leases and unique keys), so any number of instances may run and any may die at any time.

Delivery guarantee of the sender (the "crash between sending and recording" case):
1. The intent is committed by the consumer, under a unique key (source event, purpose, phone).
2. The sender claims it in its own transaction: state `sending`, attempts + 1, a lease.
3. It calls the provider with the message id as idempotency key, then records the outcome in a
   new transaction, guarded by (state = sending, attempts = the claimed number).
If the instance dies after (2), the lease expires and any instance sends the message again with
the *same* id. A provider that honours the idempotency key (the dev provider, the test gateway,
and the production gateway by configuration) delivers it once: exactly one SMS. With a provider
that ignores the key, a crash after the provider accepted and before (3) committed yields a second
SMS: the sender is at-least-once, never at-most-once, because losing a verification code or a
review result is worse than a rare duplicate. A message whose lease is still running is never
touched by another instance, so a slow provider call does not cause a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import service
from services.notify.config import NotifySettings
from services.notify.providers import SmsDeliveryError, SmsProvider
from shared.logging import get_logger
from shared.observability import record_sms_failed, record_sms_sent

log = get_logger("notify.workers")
Clock = Callable[[], datetime]


@dataclass
class WorkerStats:
    sender_cycles: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    reminder_scans: int = 0
    reminders: int = 0
    digests: int = 0


class NotifyWorkers:
    def __init__(
        self,
        *,
        settings: NotifySettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        provider: SmsProvider,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.provider = provider
        self.clock = clock
        self.stats = WorkerStats()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._every(self.settings.sms_poll_seconds, self.send_due, greedy=True)),
            asyncio.create_task(self._every(self.settings.reminder_poll_seconds, self.remind)),
            asyncio.create_task(self._every(self.settings.digest_interval_seconds, self.digest)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.provider.close()

    async def _every(self, seconds: float, job: Callable[[], Awaitable[int]], *, greedy: bool = False) -> None:
        """Run a job at once (recovering what a previous instance left), then every `seconds`;
        a greedy job whose batch was full runs again without waiting."""
        while True:
            try:
                done = await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notify_job_failed", job=job.__name__, error=f"{type(exc).__name__}: {exc}"[:300])
                done = 0
            if greedy and done and done >= self.settings.sms_batch_size:
                continue
            await asyncio.sleep(seconds)

    async def send_due(self) -> int:
        """Claim due messages, send them concurrently, record each outcome. Returns how many."""
        now = self.clock()
        lease = timedelta(seconds=self.settings.sms_lease_seconds)
        async with self.sessionmaker() as session, session.begin():
            claimed = await service.claim_due_sms(session, now=now, lease=lease, limit=self.settings.sms_batch_size)
        self.stats.sender_cycles += 1
        await asyncio.gather(*(self._deliver(message) for message in claimed))
        return len(claimed)

    async def _deliver(self, message: service.ClaimedSms) -> None:
        error, retryable = None, False
        try:
            await self.provider.send(message_id=message.id, phone=message.phone, body=message.body)
        except SmsDeliveryError as exc:
            error, retryable = exc.reason, exc.retryable
        except Exception as exc:  # a provider bug or its database: retry; the class only (no body)
            error, retryable = f"provider error: {type(exc).__name__}", True
        async with self.sessionmaker() as session, session.begin():
            state = await service.record_sms_outcome(
                session,
                message=message,
                error=error,
                retryable=retryable,
                retry_delays=self.settings.sms_retry_delays_seconds,
                now=self.clock(),
            )
        if state is None:
            log.info("sms_outcome_superseded", message_id=str(message.id))
        elif error is None:
            self.stats.sent += 1
            record_sms_sent(message.purpose)
            log.info("sms_sent", message_id=str(message.id), purpose=message.purpose, attempts=message.attempts)
        elif state.value == "failed":
            self.stats.failed += 1
            record_sms_failed(message.purpose)
            log.warning("sms_failed", message_id=str(message.id), purpose=message.purpose, error=error)
        else:
            self.stats.retried += 1
            log.info("sms_retry_scheduled", message_id=str(message.id), attempts=message.attempts, error=error)

    async def remind(self) -> int:
        async with self.sessionmaker() as session, session.begin():
            count = await service.send_deadline_reminders(
                session, now=self.clock(), hours_before=self.settings.reminder_hours_before_close
            )
        self.stats.reminder_scans += 1
        self.stats.reminders += count
        return count

    async def digest(self) -> int:
        async with self.sessionmaker() as session, session.begin():
            count = await service.send_review_digests(session, now=self.clock())
        self.stats.digests += count
        return count
