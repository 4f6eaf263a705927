"""sending domains: sending_domains, dkim_keys (encrypted private keys), from_domains (seen From domains)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sending_domains",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("hosting_id", Id, sa.ForeignKey("hostings.id", name="fk_sending_domains_hosting_id_hostings"), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("checked_at", sa.Float(), nullable=True),
        sa.Column("verified_at", sa.Float(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'verified', 'failing')", name="ck_sending_domains_state"),
        sa.PrimaryKeyConstraint("id", name="pk_sending_domains"),
        sa.UniqueConstraint("domain", name="uq_sending_domains_domain"),
    )
    op.create_index("ix_sending_domains_hosting", "sending_domains", ["hosting_id"])
    op.create_table(
        "dkim_keys",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "domain_id", Id, sa.ForeignKey("sending_domains.id", ondelete="CASCADE", name="fk_dkim_keys_domain_id_sending_domains"),
            nullable=False,
        ),
        sa.Column("selector", sa.String(63), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("active", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("retire_after", sa.Float(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'verified', 'failing')", name="ck_dkim_keys_state"),
        sa.PrimaryKeyConstraint("id", name="pk_dkim_keys"),
    )
    op.create_index("ix_dkim_keys_domain", "dkim_keys", ["domain_id", "selector"], unique=True)
    op.create_table(
        "from_domains",
        sa.Column("hosting_id", Id, sa.ForeignKey("hostings.id", name="fk_from_domains_hosting_id_hostings"), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("signed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("platform", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("failed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_at", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("hosting_id", "domain", name="pk_from_domains"),
    )


def downgrade() -> None:
    op.drop_table("from_domains")
    op.drop_index("ix_dkim_keys_domain", table_name="dkim_keys")
    op.drop_table("dkim_keys")
    op.drop_index("ix_sending_domains_hosting", table_name="sending_domains")
    op.drop_table("sending_domains")
