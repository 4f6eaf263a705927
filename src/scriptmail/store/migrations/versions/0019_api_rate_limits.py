"""the API's per-token rate limit in the store, shared by every web process and node: the
api_rate_limits table

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_rate_limits",
        sa.Column("token_id", Id, autoincrement=False, nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.Column("ok", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_api_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("api_rate_limits")
