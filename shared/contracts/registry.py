"""Events published by registry. `subject_version` grows with every change of the subject."""

from __future__ import annotations

from typing import Literal

from shared.contracts.envelope import Event, EventData

InstitutionType = Literal["undergraduate", "higher_vocational", "secondary_vocational"]
CertificateLevel = Literal["junior", "intermediate", "senior"]


class InstitutionData(EventData):
    code: str
    name: str
    type: InstitutionType | None = None
    province_code: str
    city_code: str | None = None
    district_code: str | None = None
    profile_completed: bool = False
    contact_name: str | None = None
    contact_phone: str | None = None


class InstitutionUpserted(Event[InstitutionData]):
    TYPE = "registry.institution.upserted"
    VERSION = 1


class CertificateData(EventData):
    id: str
    name: str
    level: CertificateLevel
    org_id: str
    org_name: str
    major_codes: list[str]
    active: bool = True


class CertificateUpserted(Event[CertificateData]):
    TYPE = "registry.certificate.upserted"
    VERSION = 1


class MajorData(EventData):
    code: str
    name: str
    level: str
    category_name: str | None = None


class MajorUpserted(Event[MajorData]):
    TYPE = "registry.major.upserted"
    VERSION = 1
