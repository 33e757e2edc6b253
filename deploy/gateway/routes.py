"""Which service owns which public path: the one table the gateway's nginx config is rendered from.

Clients see resources, not services (API.md), so a path is routed by its first segment(s) after
`/api/v1/`. Internal endpoints (`/internal/...`) are deliberately absent: the gateway never routes them.
"""

from __future__ import annotations

import re

API_PREFIX = "/api/v1/"

# The five services, in port order (identity 8001 ... notify 8005, see docs/conventions.md).
SERVICES: tuple[str, ...] = ("identity", "registry", "plans", "applications", "notify")

# Resources (first path segments after /api/v1/) owned by each service. `auth/` belongs to identity
# as well but gets its own rate-limited locations (see AUTH_PREFIX).
RESOURCES: dict[str, tuple[str, ...]] = {
    "identity": ("accounts", "dev/captcha"),
    "registry": ("regions", "institutions", "organizations", "majors", "certificates", "pilot-institutions"),
    "plans": ("plans",),
    "applications": ("applications",),
    "notify": ("notifications", "sms-messages", "dev/sms"),
}
AUTH_PREFIX = "auth"
AUTH_OWNER = "identity"


def public_prefixes(service: str) -> tuple[str, ...]:
    """Every `/api/v1/<prefix>` the gateway sends to `service`, its OpenAPI document and docs page included."""
    own = RESOURCES[service] + (f"openapi/{service}.json", f"docs/{service}")
    return (AUTH_PREFIX, *own) if service == AUTH_OWNER else own


def location_regex(service: str) -> str:
    """The nginx regex location of a service's resources (auth excluded: it has its own locations)."""
    alternatives = "|".join(re.escape(p) for p in public_prefixes(service) if p != AUTH_PREFIX)
    return rf"^/api/v1/(?:{alternatives})(?:/|$)"


def owner_of(path: str) -> str | None:
    """The service the gateway routes `path` to, or None when the gateway answers 404 itself."""
    if not path.startswith(API_PREFIX):
        return None
    rest = path[len(API_PREFIX) :]
    for service in SERVICES:
        for prefix in public_prefixes(service):
            if rest == prefix or rest.startswith(prefix + "/"):
                return service
    return None
