"""sending policy: per-minute activity counters, job leases, content scores, purge start

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("hostings") as batch_op:
        batch_op.add_column(sa.Column("purge_started_at", sa.Float(), nullable=True))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("score", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("score_reasons", sa.Text(), server_default="", nullable=False))
    counters = ("accepted", "flagged", "dispatched", "sent", "bounced", "unknown_user")
    op.create_table(
        "activity",
        sa.Column("hosting_id", _ID, nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in counters),
        sa.ForeignKeyConstraint(["hosting_id"], ["hostings.id"], name=op.f("fk_activity_hosting_id_hostings")),
        sa.PrimaryKeyConstraint("hosting_id", "minute", name=op.f("pk_activity")),
    )
    op.create_index("ix_activity_minute", "activity", ["minute"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_activity_minute", table_name="activity")
    op.drop_table("activity")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("score_reasons")
        batch_op.drop_column("score")
    with op.batch_alter_table("hostings") as batch_op:
        batch_op.drop_column("purge_started_at")
