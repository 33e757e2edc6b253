"""Indexes for the sweeps of stale SMS codes, login failures and refresh tokens.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sms_codes_created_at", "sms_codes", ["created_at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])
    op.create_index(op.f("ix_refresh_tokens_expires_at"), "refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_refresh_tokens_expires_at"), table_name="refresh_tokens")
    op.drop_index("ix_login_failures_at", table_name="login_failures")
    op.drop_index("ix_sms_codes_created_at", table_name="sms_codes")
