"""Accounts, plans and applications copies; SMS messages, dev inbox, delivery log; in-app
notifications; review digest queue; deadline reminders.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("institution_code", sa.String(10)),
        sa.Column("province_code", sa.String(2)),
        sa.Column("city_code", sa.String(4)),
        sa.Column("removed", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("subject_version", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_accounts_institution_code", "accounts", ["institution_code"])
    op.create_index("ix_accounts_role_province_code", "accounts", ["role", "province_code"])
    op.create_table(
        "plans",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("subject_version", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("institution_code", sa.String(10), nullable=False),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("city_code", sa.String(4)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("plan_closes_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_applications_plan_id_status", "applications", ["plan_id", "status"])
    op.create_table(
        "sms_messages",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("source_event_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("body_masked", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("dedupe_key", name="uq_sms_messages_dedupe_key"),
    )
    op.create_index("ix_sms_messages_phone_created_at", "sms_messages", ["phone", "created_at"])
    op.create_index(
        "ix_sms_messages_due",
        "sms_messages",
        ["next_attempt_at"],
        postgresql_where=sa.text("state IN ('pending', 'sending')"),
    )
    op.create_table(
        "dev_sms",
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_dev_sms_phone_created_at", "dev_sms", ["phone", "created_at"])
    op.create_table(
        "sms_delivery_log",
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("phone_masked", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "notifications",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
    )
    op.create_index("ix_notifications_account_id_created_at", "notifications", ["account_id", "created_at"])
    op.create_table(
        "review_queue",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("application_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("city_code", sa.String(4)),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("digested_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_review_queue_pending", "review_queue", ["queued_at"], postgresql_where=sa.text("digested_at IS NULL")
    )
    op.create_table(
        "reminders",
        sa.Column("plan_id", sa.String(64), primary_key=True),
        sa.Column("institution_code", sa.String(10), primary_key=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "reminders",
        "review_queue",
        "notifications",
        "sms_delivery_log",
        "dev_sms",
        "sms_messages",
        "applications",
        "plans",
        "accounts",
    ):
        op.drop_table(table)
