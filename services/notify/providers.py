"""SMS providers: where a message goes once its intent is claimed.

Every send carries the message id as an idempotency key. A provider must treat a second send with
the same key as the same message (the dev provider and the test gateway do; a real gateway is
configured to). That is what keeps a resend after a crash from reaching the phone twice.
"""

from __future__ import annotations

import uuid
from typing import Protocol

import httpx
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.models import dev_sms


class SmsDeliveryError(Exception):
    """A failed attempt. `retryable` failures are tried again after a back-off; others are final.
    The message text never contains the SMS body (it may hold a secret)."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class SmsProvider(Protocol):
    async def send(self, *, message_id: uuid.UUID, phone: str, body: str) -> None:
        """Deliver one message or raise `SmsDeliveryError`."""

    async def close(self) -> None: ...


class DevSmsProvider:
    """Keeps messages in the notify database for the dev inbox (GET /api/v1/dev/sms)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def send(self, *, message_id: uuid.UUID, phone: str, body: str) -> None:
        statement = insert(dev_sms).values(message_id=message_id, phone=phone, body=body)
        async with self.engine.begin() as conn:
            await conn.execute(statement.on_conflict_do_nothing(index_elements=[dev_sms.c.message_id]))

    async def close(self) -> None:
        return None


class HttpSmsProvider:
    """Posts `{message_id, phone, body}` to an SMS gateway with an `Idempotency-Key` header.

    2xx: delivered. 5xx, 429, timeouts and connection errors: retryable. Other 4xx: final (the
    gateway refused this message, e.g. an invalid number; sending it again would not help)."""

    def __init__(self, *, url: str, timeout: float) -> None:
        self.url = url
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout))

    async def send(self, *, message_id: uuid.UUID, phone: str, body: str) -> None:
        try:
            response = await self.client.post(
                self.url,
                json={"message_id": str(message_id), "phone": phone, "body": body},
                headers={"Idempotency-Key": str(message_id)},
            )
        except httpx.TimeoutException as exc:
            raise SmsDeliveryError(f"timeout: {type(exc).__name__}", retryable=True) from None
        except httpx.TransportError as exc:
            raise SmsDeliveryError(f"transport: {type(exc).__name__}", retryable=True) from None
        status = response.status_code
        if status < 300:
            return
        retryable = status >= 500 or status == 429
        raise SmsDeliveryError(f"gateway answered HTTP {status}", retryable=retryable)

    async def close(self) -> None:
        await self.client.aclose()
