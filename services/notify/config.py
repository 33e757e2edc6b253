"""Settings of the notify service (environment prefix `NOTIFY_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    service_name: str = "notify"
    # `dev` keeps messages in the dev inbox (GET /api/v1/dev/sms); `http` posts to an SMS gateway.
    sms_provider: Literal["dev", "http"] = "dev"
    sms_gateway_url: str = ""
    sms_gateway_timeout_seconds: float = 5.0
    # Delays before each retry of a retryable failure; one attempt more than there are delays.
    sms_retry_delays_seconds: list[float] = Field(default_factory=lambda: [2.0, 10.0, 60.0, 300.0])
    # A message left `sending` longer than this (its sender died) is sent again with the same key.
    sms_lease_seconds: float = 120.0
    sms_batch_size: int = 100
    # The due-message query is an index scan: polling often keeps an SMS within a second of its event.
    sms_poll_seconds: float = 0.25
    reminder_poll_seconds: float = 60.0
    reminder_hours_before_close: int = 24
    digest_interval_seconds: float = 300.0

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if self.sms_provider == "dev":
            problems.append("NOTIFY_SMS_PROVIDER=dev would keep SMS in the dev inbox instead of sending them")
        if self.sms_provider == "http" and not self.sms_gateway_url:
            problems.append("NOTIFY_SMS_GATEWAY_URL is missing")
        return problems
