"""Plans table.

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
        "plans",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("batch", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_major", sa.Boolean, nullable=False),
        sa.Column("municipal_review", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("opened_announced_at", sa.DateTime(timezone=True)),
        sa.Column("closed_announced_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("province_code", "year", "batch", name="uq_plans_province_code_year_batch"),
    )
    op.create_index("ix_plans_state_opens", "plans", ["state", "opens_at"])
    # The scheduler's question: which published plans have a transition not yet announced?
    op.create_index(
        "ix_plans_unannounced",
        "plans",
        ["opens_at", "closes_at"],
        postgresql_where=sa.text("state = 'published' AND closed_announced_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("plans")
