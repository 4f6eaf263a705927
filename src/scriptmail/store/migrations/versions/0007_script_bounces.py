"""script bounces and the log's index: script_counts.bounced, recipients (hosting_id, id)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Counted from now on: bounces from before the upgrade are not attributed to their script.
    with op.batch_alter_table("script_counts") as batch_op:
        batch_op.add_column(sa.Column("bounced", sa.BigInteger(), server_default="0", nullable=False))
    # The customer area's log reads a hosting's recipients newest first, a page at a time.
    op.create_index("ix_recipients_hosting_id", "recipients", ["hosting_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_recipients_hosting_id", table_name="recipients")
    with op.batch_alter_table("script_counts") as batch_op:
        batch_op.drop_column("bounced")
