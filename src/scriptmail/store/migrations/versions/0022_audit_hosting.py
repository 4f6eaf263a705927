"""audit_log.hosting and audit_log.by_operator: the customer's own changes are audited too, and
each entry names the hosting it concerns, so an operator can filter by it and its owner can read
its trail

Revision ID: 0022_audit_hosting
Revises: 0021_stripes
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_audit_hosting"
down_revision = "0021_stripes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("hosting", sa.String(length=253), nullable=True))
        batch.add_column(sa.Column("by_operator", sa.Integer(), server_default="1", nullable=False))
    op.create_index("ix_audit_log_hosting", "audit_log", ["hosting", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_hosting", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("by_operator")
        batch.drop_column("hosting")
