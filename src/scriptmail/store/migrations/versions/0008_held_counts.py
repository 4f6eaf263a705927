"""held counts: recipients put on hold, per hosting and minute and per day (the volume charts)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Counted from now on: mail held before the upgrade does not appear in the charts.
    for table in ("activity", "activity_daily"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("held", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    for table in ("activity", "activity_daily"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("held")
