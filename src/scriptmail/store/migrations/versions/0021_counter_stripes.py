"""striped counter rows: activity, activity_daily, hosting_totals, script_counts and from_domains
gain a `stripe` in their primary key, so that writers in several processes add to rows of their own

Revision ID: 0021_stripes
Revises: 0020_reputation
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_stripes"
down_revision = "0020_reputation"
branch_labels = None
depends_on = None

KEYS = {
    "activity": ("hosting_id", "minute"),
    "activity_daily": ("hosting_id", "day"),
    "hosting_totals": ("hosting_id",),
    "script_counts": ("hosting_id", "script"),
    "from_domains": ("hosting_id", "domain"),
}


def upgrade() -> None:
    for table, keys in KEYS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.add_column(sa.Column("stripe", sa.SmallInteger(), server_default="0", nullable=False))
            batch.create_primary_key(f"pk_{table}", [*keys, "stripe"])


def downgrade() -> None:
    # Fold the stripes back into one row per key before the column goes.
    for table, keys in KEYS.items():
        counters = [
            c["name"] for c in sa.inspect(op.get_bind()).get_columns(table) if c["name"] not in (*keys, "stripe")
        ]
        sums = ", ".join(f"{'MAX' if name == 'last_at' else 'SUM'}({name})" for name in counters)
        key_list = ", ".join(keys)
        op.execute(f"CREATE TEMPORARY TABLE folded AS SELECT {key_list}, {sums} FROM {table} GROUP BY {key_list}")
        op.execute(f"DELETE FROM {table}")
        op.execute(f"INSERT INTO {table} ({key_list}, {', '.join(counters)}) SELECT * FROM folded")
        op.execute("DROP TABLE folded")
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("stripe")
            batch.create_primary_key(f"pk_{table}", list(keys))
