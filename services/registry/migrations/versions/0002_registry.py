"""Regions, institutions, majors, organisations, certificates, pilots.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    # pg_trgm is a trusted extension: the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "regions",
        sa.Column("code", sa.String(6), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("parent_code", sa.String(6), nullable=True),
    )
    op.create_index("ix_regions_parent_code", "regions", ["parent_code"])

    op.create_table(
        "institutions",
        sa.Column("code", sa.String(10), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(24), nullable=True),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("city_code", sa.String(4), nullable=True),
        sa.Column("district_code", sa.String(6), nullable=True),
        sa.Column("uscc", sa.String(18), nullable=True),
        sa.Column("website", sa.String(255), nullable=True),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("contact_name", sa.String(50), nullable=True),
        sa.Column("contact_phone", sa.String(11), nullable=True),
        sa.Column("contact_email", sa.String(254), nullable=True),
        sa.Column("profile_completed", sa.Boolean, server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer, server_default=sa.text("1"), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("province_code", "name", name="uq_institutions_province_code_name"),
    )
    op.create_index(
        "ix_institutions_name_trgm",
        "institutions",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )

    op.create_table(
        "majors",
        sa.Column("code", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.String(12), nullable=False),
        sa.Column("category_code", sa.String(4), nullable=True),
        sa.Column("category_name", sa.String(64), nullable=True),
        sa.Column("class_code", sa.String(6), nullable=True),
        sa.Column("class_name", sa.String(64), nullable=True),
        sa.Column("version", sa.Integer, server_default=sa.text("1"), nullable=False),
    )
    op.create_index("ix_majors_level", "majors", ["level"])
    op.create_index(
        "ix_majors_name_trgm", "majors", ["name"], postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
    )

    op.create_table(
        "organizations",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("name", name="uq_organizations_name"),
    )

    op.create_table(
        "certificates",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.String(12), nullable=False),
        sa.Column(
            "org_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("organizations.id", name="fk_certificates_org_id_organizations"),
            nullable=False,
        ),
        sa.Column("major_codes", postgresql.ARRAY(sa.String(8)), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("active", sa.Boolean, server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.Integer, server_default=sa.text("1"), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("org_id", "name", "level", name="uq_certificates_org_id"),
    )
    op.create_index("ix_certificates_org_id", "certificates", ["org_id"])
    op.create_index(
        "ix_certificates_name_trgm",
        "certificates",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )

    op.create_table(
        "pilots",
        sa.Column("institution_code", sa.String(10), primary_key=True),
        sa.Column("year", sa.SmallInteger, primary_key=True),
        sa.Column("institution_name", sa.String(100), nullable=True),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("city_code", sa.String(4), nullable=True),
        sa.Column("application_id", sa.String(64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_pilots_year_province", "pilots", ["year", "province_code"])


def downgrade() -> None:
    for table in ("pilots", "certificates", "organizations", "majors", "institutions", "regions"):
        op.drop_table(table)
