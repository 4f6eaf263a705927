"""traffic shaping and pools as each delivery node sees them: the delivery_sites table

Revision ID: 0015
Revises: 0017
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_sites",
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("node", "kind", "name", name=op.f("pk_delivery_sites")),
    )


def downgrade() -> None:
    op.drop_table("delivery_sites")
