"""Pydantic models of the notify API (requests and responses)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.notify.domain import mask_phone


class NotificationOut(BaseModel):
    id: uuid.UUID
    title: str = Field(description="标题")
    body: str = Field(description="正文")
    created_at: datetime
    read_at: datetime | None = Field(default=None, description="阅读时间；未读为 null")


class DevSmsOut(BaseModel):
    """A message as the phone received it (dev inbox only)."""

    phone: str
    body: str
    status: str | None = Field(default=None, description="pending | sending | sent | failed")
    created_at: datetime


class SmsMessageOut(BaseModel):
    """An SMS as operators see it: phone and secrets masked."""

    id: uuid.UUID
    purpose: str
    phone_masked: str
    body_masked: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> SmsMessageOut:
        return cls(
            id=row.id,
            purpose=row.purpose,
            phone_masked=mask_phone(row.phone),
            body_masked=row.body_masked,
            state=row.state,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            sent_at=row.sent_at,
        )
