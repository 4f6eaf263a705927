"""a site's slow-down shared by every delivery process: site_slowdowns; a site's live deferred
count: domain_sites and the partial index of deferred recipients by domain

Revision ID: 0023_site_slowdowns
Revises: 0022_audit_hosting
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_site_slowdowns"
down_revision = "0022_audit_hosting"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_slowdowns",
        sa.Column("site", sa.String(length=253), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("slowed_at", sa.Float(), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.Column("recovers_at", sa.Float(), nullable=False),
        sa.Column("ends_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_site_slowdowns")),
    )
    op.create_index("ix_site_slowdowns_ends_at", "site_slowdowns", ["ends_at"])
    op.create_table(
        "domain_sites",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("site", sa.String(length=253), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_domain_sites")),
    )
    op.create_index("ix_domain_sites_seen_at", "domain_sites", ["seen_at"])
    deferred = sa.text("status = 'deferred'")
    op.create_index(
        "ix_recipients_deferred_domain", "recipients", ["domain", "status"], sqlite_where=deferred, postgresql_where=deferred
    )


def downgrade() -> None:
    op.drop_index("ix_recipients_deferred_domain", table_name="recipients")
    op.drop_index("ix_domain_sites_seen_at", table_name="domain_sites")
    op.drop_table("domain_sites")
    op.drop_index("ix_site_slowdowns_ends_at", table_name="site_slowdowns")
    op.drop_table("site_slowdowns")
