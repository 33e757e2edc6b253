"""Pydantic models of the registry API (requests and responses)."""

from __future__ import annotations

import uuid
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

InstitutionType = Literal["undergraduate", "higher_vocational", "secondary_vocational"]
CertificateLevel = Literal["junior", "intermediate", "senior"]
MajorLevel = Literal["secondary", "associate", "bachelor"]
T = TypeVar("T")


def _plain(value: str) -> str:
    """PostgreSQL refuses NUL in text, and no field here needs control characters."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("不能包含控制字符")
    return value


PlainText = Annotated[str, AfterValidator(_plain)]
MajorCode = Annotated[str, Field(pattern=r"^\d{6}K?$", description="专业代码，如 510201")]
Code10 = Field(pattern=r"^\d{10}$", description="10位院校识别码")
ProvinceCode = Field(pattern=r"^\d{2}$", description="2位省份代码")


class RegionOut(BaseModel):
    code: str
    name: str
    level: Literal["province", "city", "district"]


class InstitutionSummary(BaseModel):
    """What the public registration search returns: nothing more."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    province_code: str
    type: InstitutionType | None


class InstitutionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    type: InstitutionType | None
    province_code: str
    city_code: str | None
    district_code: str | None
    uscc: str | None
    website: str | None
    address: str | None
    contact_name: str | None
    contact_phone: str | None
    contact_email: str | None
    profile_completed: bool
    version: int


class ProfileIn(BaseModel):
    """Base info a school completes itself; missing fields are saved as empty (profile incomplete)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    type: InstitutionType | None = None
    uscc: PlainText | None = Field(default=None, max_length=18, description="统一社会信用代码（18位）")
    website: PlainText | None = Field(default=None, max_length=255)
    province_code: str | None = Field(default=None, pattern=r"^\d{2}$")
    city_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    district_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    address: PlainText | None = Field(default=None, max_length=255)
    contact_name: PlainText | None = Field(default=None, max_length=50)
    contact_phone: PlainText | None = Field(default=None, max_length=11)
    contact_email: PlainText | None = Field(default=None, max_length=254)


class InstitutionCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    code: str = Code10
    name: PlainText = Field(min_length=2, max_length=100)
    type: InstitutionType
    province_code: str = ProvinceCode
    city_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    district_code: str | None = Field(default=None, pattern=r"^\d{6}$")


class RowErrorOut(BaseModel):
    row: int
    field: str
    message: str


class ImportReport(BaseModel):
    total: int = Field(description="数据行数")
    created: int
    updated: int
    unchanged: int
    failed: int
    errors: list[RowErrorOut]
    unplaced: list[RowErrorOut] = Field(default_factory=list, description="所在地无法对应到地市的行")


class MajorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    level: MajorLevel
    category_name: str | None
    class_name: str | None


class OrganizationIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: PlainText = Field(min_length=2, max_length=100)


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str


class CertificateIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: PlainText = Field(min_length=2, max_length=100)
    level: CertificateLevel
    org_id: uuid.UUID
    major_codes: list[MajorCode] = Field(default_factory=list, max_length=500)


class CertificateMajorsIn(BaseModel):
    major_codes: list[MajorCode] = Field(max_length=500)


class CertificateOut(BaseModel):
    id: uuid.UUID
    name: str
    level: CertificateLevel
    org_id: uuid.UUID
    org_name: str
    major_codes: list[str]
    active: bool
    version: int


class PilotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    institution_code: str
    institution_name: str | None
    province_code: str
    city_code: str | None
    year: int
    application_id: str


class RebuildPage(BaseModel, Generic[T]):
    """A page of an internal rebuild listing: event data fields plus `subject_version`."""

    items: list[T]
    next: str | None


class InstitutionCopy(BaseModel):
    code: str
    name: str
    type: InstitutionType | None
    province_code: str
    city_code: str | None
    district_code: str | None
    profile_completed: bool
    contact_name: str | None
    contact_phone: str | None
    subject_version: int


class CertificateCopy(BaseModel):
    id: str
    name: str
    level: CertificateLevel
    org_id: str
    org_name: str
    major_codes: list[str]
    active: bool
    subject_version: int


class MajorCopy(BaseModel):
    code: str
    name: str
    level: str
    category_name: str | None
    subject_version: int
