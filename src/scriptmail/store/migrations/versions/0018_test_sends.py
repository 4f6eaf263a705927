"""test messages of the customer area and the API: the test_sends table

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "test_sends",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("hosting_id", Id, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("requested_by", sa.String(length=320), server_default="", nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("queue_id", Id, nullable=True),
        sa.Column("refused", sa.Text(), server_default="", nullable=False),
        sa.Column("dkim", sa.String(length=16), server_default="", nullable=False),
        sa.Column("dkim_domain", sa.String(length=253), server_default="", nullable=False),
        sa.ForeignKeyConstraint(["hosting_id"], ["hostings.id"], name=op.f("fk_test_sends_hosting_id_hostings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_sends")),
    )
    op.create_index("ix_test_sends_hosting_created", "test_sends", ["hosting_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_test_sends_hosting_created", table_name="test_sends")
    op.drop_table("test_sends")
