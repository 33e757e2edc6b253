"""Login failures also record the login key, for the hourly cap per account.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("login_failures", sa.Column("account_key", sa.String(length=128), nullable=True))
    op.create_index("ix_login_failures_key_at", "login_failures", ["account_key", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_key_at", table_name="login_failures")
    op.drop_column("login_failures", "account_key")
