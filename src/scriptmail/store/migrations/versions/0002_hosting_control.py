"""hosting control: state history, and when a recipient was held

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recipients") as batch_op:
        batch_op.add_column(sa.Column("held_at", sa.Float(), nullable=True))
    op.create_table(
        "hosting_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("hosting_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(["hosting_id"], ["hostings.id"], name=op.f("fk_hosting_events_hosting_id_hostings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosting_events")),
    )
    op.create_index("ix_hosting_events_hosting_at", "hosting_events", ["hosting_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_hosting_events_hosting_at", table_name="hosting_events")
    op.drop_table("hosting_events")
    with op.batch_alter_table("recipients") as batch_op:
        batch_op.drop_column("held_at")
