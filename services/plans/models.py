"""Tables of the plans database."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import ServiceBase, new_metadata
from shared.messaging.tables import messaging_tables


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


outbox, inbox = messaging_tables(Base.metadata)


class Plan(Base):
    """A provincial application plan (申报计划). `version` grows with every change, announcements
    included, and is the `subject_version` of the plan's events."""

    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("province_code", "year", "batch"),
        Index("ix_plans_state_opens", "state", "opens_at"),
        Index(
            "ix_plans_unannounced",
            "opens_at",
            "closes_at",
            postgresql_where=text("state = 'published' AND closed_announced_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    province_code: Mapped[str] = mapped_column(String(2), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    batch: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    by_major: Mapped[bool] = mapped_column(Boolean, nullable=False)
    municipal_review: Mapped[bool] = mapped_column(Boolean, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by the scheduler in the transaction that stages plans.plan.opened / .closed: once per transition.
    opened_announced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_announced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
