"""Settings of the plans service (environment prefix `PLANS_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class PlansSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PLANS_", extra="ignore")

    service_name: str = "plans"
    # The window scheduler sleeps until the next transition, but never longer than this, so a plan
    # published through another instance is announced within a few seconds of its opening.
    scheduler_enabled: bool = True
    scheduler_max_sleep_seconds: float = 5.0
