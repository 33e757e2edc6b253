"""Settings common to every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_OPERATOR_PASSWORD = "Operator#2026"
LOCAL_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
LOCAL_JWKS = "http://127.0.0.1:8001/api/v1/auth/jwks"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


class AppEnv(StrEnum):
    dev = "dev"
    test = "test"
    prod = "prod"


class ServiceSettings(BaseSettings):
    """What every service needs. Subclasses set `env_prefix` (e.g. `IDENTITY_`) and `service_name`."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    service_name: str = "service"
    app_env: AppEnv = AppEnv.dev
    database_url: str = ""
    amqp_url: str = LOCAL_AMQP
    # Prefix of every exchange and queue name, so two test runs on one broker never meet.
    bus_namespace: str = "onex"
    log_level: str = "INFO"
    # Where identity publishes its public keys; services verify tokens locally with them.
    jwks_url: str = LOCAL_JWKS
    jwt_issuer: str = "onex-identity"
    jwt_audience: str = "onex"
    consumer_prefetch: int = 100
    consumer_batch_size: int = 50
    consumer_workers: int = 2
    retry_delays_ms: list[int] = Field(default_factory=lambda: [200, 2_000, 10_000])
    relay_batch_size: int = 200
    relay_poll_seconds: float = 1.0
    # Well inside the 5 s in which a publish to a dead broker must fail (confirm wait and reconnect included).
    publish_timeout_seconds: float = 3.0
    db_pool_size: int = 10

    @model_validator(mode="after")
    def _default_database(self) -> Self:
        if not self.database_url:
            self.database_url = f"{LOCAL_PG}/onex_{self.service_name}"
        return self

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_prod(self) -> Self:
        if self.app_env is AppEnv.prod:
            problems = self.production_problems()
            if problems:
                raise ValueError("production settings refused: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """Dev-only defaults a production deployment must override. Subclasses extend."""
        problems = []
        if "guest:guest@" in self.amqp_url:
            problems.append("AMQP_URL uses the default guest account")
        if self.database_url.startswith(LOCAL_PG):
            problems.append("DATABASE_URL is missing or the local passwordless default")
        if self.jwks_url == LOCAL_JWKS:
            problems.append("JWKS_URL is missing (the local default)")
        return problems

    @property
    def is_dev(self) -> bool:
        return self.app_env is AppEnv.dev


def secret_value(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret else ""
