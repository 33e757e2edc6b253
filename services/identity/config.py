"""Settings of the identity service (environment prefix `IDENTITY_`)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import DEV_OPERATOR_PASSWORD, ServiceSettings, secret_value


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    service_name: str = "identity"

    # Ed25519 private key, as PEM text or a path to a PEM file. In dev, when absent, a key is generated
    # once into `dev_key_file` so that every local instance signs with the same key.
    signing_key: SecretStr | None = None
    # Keys signed with before a rotation, still published in the JWKS until their tokens expired:
    # one or more PEM blocks, or comma-separated paths of PEM files.
    previous_signing_keys: SecretStr | None = None
    dev_key_file: str = "var/keys/identity-ed25519.pem"
    # Key of the HMACs over SMS codes and captcha answers; derived from the signing key when unset.
    hmac_key: SecretStr | None = None

    operator_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("operator_password", "IDENTITY_OPERATOR_PASSWORD", "OPERATOR_PASSWORD"),
    )

    access_ttl_seconds: int = Field(default=900, ge=60, le=900)
    refresh_ttl_seconds: int = 14 * 24 * 3600

    captcha_ttl_seconds: int = 120
    sms_code_ttl_seconds: int = 300
    sms_code_max_attempts: int = 5
    sms_resend_seconds: int = 60
    sms_per_phone_hour: int = 5
    sms_per_phone_day: int = 10
    sms_per_ip_hour: int = 20

    login_lock_threshold: int = 5
    login_lock_base_seconds: int = 60
    login_lock_max_seconds: int = 3600
    # Hard caps on failed logins within any hour, whatever the lock-out policy says.
    login_failures_per_ip_hour: int = 100
    login_failures_per_account_hour: int = 100

    # Where registry lists its institutions page by page, to fill an empty register copy at start-up.
    registry_url: str = "http://127.0.0.1:8002"
    rebuild_copy_on_start: bool = True

    # Behind the gateway the client address is in X-Real-IP / X-Forwarded-For.
    trust_forwarded_for: bool = True

    @property
    def operator_password_value(self) -> str:
        """The operator's password: the configured one, else the dev default (never in prod)."""
        return secret_value(self.operator_password) or DEV_OPERATOR_PASSWORD

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if not secret_value(self.signing_key):
            problems.append("IDENTITY_SIGNING_KEY is missing")
        password = secret_value(self.operator_password)
        if not password or password == DEV_OPERATOR_PASSWORD:
            problems.append("OPERATOR_PASSWORD is missing or the dev default")
        return problems
