"""Settings of the applications service (environment prefix `APPLICATIONS_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class ApplicationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="APPLICATIONS_", extra="ignore")

    service_name: str = "applications"
    # Owners of the copies, paged through by `cli rebuild-copies` (internal endpoints, not the gateway).
    registry_url: str = "http://127.0.0.1:8002"
    plans_url: str = "http://127.0.0.1:8003"
    rebuild_page_size: int = 500
    # A fresh database that missed the owners' events fills its empty copies from them at start-up.
    rebuild_empty_copies_on_start: bool = True
    # Evidence files live outside the database, under generated names.
    storage_dir: str = "var/applications/files"
    max_file_bytes: int = 20 * 1024 * 1024
    max_files_per_application: int = 5
