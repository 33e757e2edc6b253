"""Events published by notify."""

from __future__ import annotations

from shared.contracts.envelope import Event, EventData


class SmsData(EventData):
    message_id: str
    purpose: str
    phone_masked: str
    source_event_id: str
    attempts: int
    error: str | None = None


class SmsSent(Event[SmsData]):
    TYPE = "notify.sms.sent"
    VERSION = 1


class SmsFailed(Event[SmsData]):
    """Every retry failed: operators must act (the message is kept, state `failed`)."""

    TYPE = "notify.sms.failed"
    VERSION = 1
