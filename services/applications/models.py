"""Tables of the applications database: applications and their parts, and copies of others' data."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import ServiceBase, new_metadata
from shared.messaging.tables import messaging_tables


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


outbox, inbox = messaging_tables(Base.metadata)

# --- copies of other services' data (fed by events; rebuildable from the owners' APIs) -------------


class PlanCopy(Base):
    __tablename__ = "plan_copies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    province_code: Mapped[str] = mapped_column(String(6), index=True)
    year: Mapped[int] = mapped_column(Integer)
    batch: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by_major: Mapped[bool] = mapped_column(Boolean)
    municipal_review: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(20))
    subject_version: Mapped[int] = mapped_column(BigInteger)


class CertificateCopy(Base):
    __tablename__ = "certificate_copies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    org_name: Mapped[str] = mapped_column(String(200))
    major_codes: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    active: Mapped[bool] = mapped_column(Boolean)
    subject_version: Mapped[int] = mapped_column(BigInteger)


class InstitutionCopy(Base):
    __tablename__ = "institution_copies"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str | None] = mapped_column(String(40))
    province_code: Mapped[str] = mapped_column(String(6))
    city_code: Mapped[str | None] = mapped_column(String(6))
    profile_completed: Mapped[bool] = mapped_column(Boolean)
    subject_version: Mapped[int] = mapped_column(BigInteger)


class MajorCopy(Base):
    __tablename__ = "major_copies"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(40))
    subject_version: Mapped[int] = mapped_column(BigInteger)


# --- applications ----------------------------------------------------------------------------------


class Application(Base):
    __tablename__ = "applications"
    __table_args__ = (
        # One live application per institution, year and certificate: a rejected one does not count.
        Index(
            "uq_applications_live",
            "institution_code",
            "year",
            "certificate_id",
            unique=True,
            postgresql_where=text("status <> 'rejected'"),
        ),
        Index("ix_applications_scope", "province_code", "city_code", "plan_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    plan_id: Mapped[str] = mapped_column(String(64), index=True)
    year: Mapped[int] = mapped_column(Integer)
    institution_code: Mapped[str] = mapped_column(String(10), index=True)
    institution_name: Mapped[str] = mapped_column(String(200))
    province_code: Mapped[str] = mapped_column(String(6))
    city_code: Mapped[str | None] = mapped_column(String(6))
    certificate_id: Mapped[str] = mapped_column(String(64))
    certificate_name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    org_name: Mapped[str] = mapped_column(String(200))
    trainees_total: Mapped[int] = mapped_column(Integer)
    faculty_html: Mapped[str] = mapped_column(Text)
    venue_html: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    review_stage: Mapped[str | None] = mapped_column(String(20))
    approved_trainees: Mapped[int | None] = mapped_column(Integer)
    returned_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApplicationMajor(Base):
    __tablename__ = "application_majors"

    application_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    major_code: Mapped[str] = mapped_column(String(20))
    major_name: Mapped[str | None] = mapped_column(String(200))
    students: Mapped[int | None] = mapped_column(Integer)
    teachers: Mapped[int | None] = mapped_column(Integer)
    trainees: Mapped[int | None] = mapped_column(Integer)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    application_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    application_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    approved_trainees: Mapped[int | None] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(100))
    reviewer_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    """The first result of a write sent with an Idempotency-Key, replayed for a repeat of that request."""

    __tablename__ = "idempotency_keys"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, object]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PilotGrant(Base):
    """An institution's first approval of a year (announced once as `applications.pilot.granted`)."""

    __tablename__ = "pilot_grants"

    institution_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
