"""Who is calling: the claims every service reads from a verified access token."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Role(StrEnum):
    institution = "institution"
    institution_sub = "institution_sub"
    municipal = "municipal"
    provincial = "provincial"
    org = "org"
    operator = "operator"


SCHOOL_ROLES = frozenset({Role.institution, Role.institution_sub})
DEPARTMENT_ROLES = frozenset({Role.municipal, Role.provincial})


class Principal(BaseModel):
    account_id: str
    account: str
    role: Role
    institution_code: str | None = None
    province_code: str | None = None
    city_code: str | None = None
    org_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role is Role.operator

    @property
    def is_school(self) -> bool:
        return self.role in SCHOOL_ROLES

    @property
    def is_department(self) -> bool:
        return self.role in DEPARTMENT_ROLES

    def scope_claims(self) -> dict[str, str | None]:
        return {
            "institution_code": self.institution_code,
            "province_code": self.province_code,
            "city_code": self.city_code,
            "org_id": self.org_id,
        }
