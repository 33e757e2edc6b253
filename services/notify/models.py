"""Tables of the notify database."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from shared.db import ServiceBase, new_metadata
from shared.messaging.tables import messaging_tables


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


outbox, inbox = messaging_tables(Base.metadata)

#: Copy of identity's accounts: who gets in-app notices, and each institution's registered mobile.
accounts = Table(
    "accounts",
    Base.metadata,
    Column("account_id", String(64), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("is_primary", Boolean, nullable=False, server_default=text("false")),
    Column("institution_code", String(10)),
    Column("province_code", String(2)),
    Column("city_code", String(4)),
    Column("removed", Boolean, nullable=False, server_default=text("false")),
    Column("subject_version", Integer, nullable=False, server_default=text("0")),
)
Index("ix_accounts_institution_code", accounts.c.institution_code)
Index("ix_accounts_role_province_code", accounts.c.role, accounts.c.province_code)

#: Copy of plans: the closing time drives the deadline reminder.
plans = Table(
    "plans",
    Base.metadata,
    Column("id", String(64), primary_key=True),
    Column("province_code", String(2), nullable=False),
    Column("title", Text, nullable=False),
    Column("closes_at", DateTime(timezone=True), nullable=False),
    Column("closed", Boolean, nullable=False, server_default=text("false")),
    Column("subject_version", Integer, nullable=False, server_default=text("0")),
)

#: The last known state of each application (drafts matter for the deadline reminder).
applications = Table(
    "applications",
    Base.metadata,
    Column("id", String(64), primary_key=True),
    Column("plan_id", String(64), nullable=False),
    Column("institution_code", String(10), nullable=False),
    Column("province_code", String(2), nullable=False),
    Column("city_code", String(4)),
    Column("status", String(16), nullable=False),
    Column("plan_closes_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
)
Index("ix_applications_plan_id_status", applications.c.plan_id, applications.c.status)

#: Every SMS: the intent is recorded in the consumer's transaction, then a sender delivers it.
sms_messages = Table(
    "sms_messages",
    Base.metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    # source event id + purpose + phone: a redelivered event can never make a second intent.
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("source_event_id", String(64), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("phone", String(20), nullable=False),
    # Holds secrets only until the message reaches a final state; then it equals body_masked.
    Column("body", Text, nullable=False),
    Column("body_masked", Text, nullable=False),
    Column("state", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("lease_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("correlation_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
)
Index("ix_sms_messages_phone_created_at", sms_messages.c.phone, sms_messages.c.created_at)
Index(
    "ix_sms_messages_due",
    sms_messages.c.next_attempt_at,
    postgresql_where=sms_messages.c.state.in_(["pending", "sending"]),
)

#: The dev provider's handset: what a phone would have received (APP_ENV=dev inbox).
dev_sms = Table(
    "dev_sms",
    Base.metadata,
    Column("message_id", UUID(as_uuid=True), primary_key=True),
    Column("phone", String(20), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_dev_sms_phone_created_at", dev_sms.c.phone, dev_sms.c.created_at)

#: Outcomes of SMS delivery, fed by notify's own sms.sent / sms.failed events.
sms_delivery_log = Table(
    "sms_delivery_log",
    Base.metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("message_id", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("phone_masked", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

notifications = Table(
    "notifications",
    Base.metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    # source + kind + account: a redelivered event or a second instance adds no second notice.
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("read_at", DateTime(timezone=True)),
)
Index("ix_notifications_account_id_created_at", notifications.c.account_id, notifications.c.created_at)

#: Submissions waiting for a reviewer, until a digest has announced them.
review_queue = Table(
    "review_queue",
    Base.metadata,
    Column("event_id", String(64), primary_key=True),
    Column("application_id", String(64), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("province_code", String(2), nullable=False),
    Column("city_code", String(4)),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("digested_at", DateTime(timezone=True)),
)
Index("ix_review_queue_pending", review_queue.c.queued_at, postgresql_where=review_queue.c.digested_at.is_(None))

#: One row per plan and institution reminded: the unique key makes the reminder fire once.
reminders = Table(
    "reminders",
    Base.metadata,
    Column("plan_id", String(64), primary_key=True),
    Column("institution_code", String(10), primary_key=True),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)
