"""The outbox and inbox tables every service owns, declared once here for models and migrations."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

OUTBOX = "outbox"
INBOX = "inbox"


def _outbox_columns() -> list[Column]:  # type: ignore[type-arg]
    return [
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("seq", BigInteger, Identity(always=False), nullable=False, unique=True),
        Column("routing_key", String(200), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        Column("last_error", Text, nullable=True),
    ]


def _inbox_columns() -> list[Column]:  # type: ignore[type-arg]
    return [
        Column("consumer", String(200), primary_key=True),
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Declare the outbox and inbox on a service's metadata (for its models and autogenerate)."""
    outbox = Table(OUTBOX, metadata, *_outbox_columns())
    Index("ix_outbox_pending", outbox.c.next_attempt_at, outbox.c.seq, postgresql_where=outbox.c.sent_at.is_(None))
    inbox = Table(INBOX, metadata, *_inbox_columns())
    return outbox, inbox


def create_messaging_tables() -> None:
    """Call from a service's first Alembic migration."""
    from alembic import op

    op.create_table(OUTBOX, *_outbox_columns())
    op.create_index("ix_outbox_pending", OUTBOX, ["next_attempt_at", "seq"], postgresql_where=text("sent_at IS NULL"))
    op.create_table(INBOX, *_inbox_columns())


def drop_messaging_tables() -> None:
    from alembic import op

    op.drop_table(INBOX)
    op.drop_table(OUTBOX)
