"""a site's shaping counts shared by every delivery process and node: site_budgets, site_slots;
and notice_events.quiet, whether the hosting was blocked as spam or bounce when the recipient failed

Revision ID: 0020_reputation
Revises: 0015
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_reputation"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_budgets",
        sa.Column("site", sa.String(length=253), nullable=False),
        sa.Column("minute_tat", sa.Float(), server_default="0", nullable=False),
        sa.Column("hour_tat", sa.Float(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_site_budgets")),
    )
    op.create_table(
        "site_slots",
        sa.Column("site", sa.String(length=253), nullable=False),
        sa.Column("holder", sa.String(length=96), nullable=False),
        sa.Column("connections", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("site", "holder", name=op.f("pk_site_slots")),
    )
    op.create_index("ix_site_slots_holder", "site_slots", ["holder"])
    with op.batch_alter_table("notice_events") as batch:
        batch.add_column(sa.Column("quiet", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notice_events") as batch:
        batch.drop_column("quiet")
    op.drop_index("ix_site_slots_holder", table_name="site_slots")
    op.drop_table("site_slots")
    op.drop_table("site_budgets")
