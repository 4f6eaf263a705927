"""suppression lists and notices to senders: the suppressions and notice_events tables, the
`suppressed` recipient status and counters, the per-hosting notices switch

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_BEFORE = ("queued", "deferred", "sending", "sent", "bounced", "expired", "held", "purged")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _statuses(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("recipients") as batch_op:
        batch_op.drop_constraint(op.f("ck_recipients_status"), type_="check")
        batch_op.create_check_constraint("status", _statuses((*_BEFORE, "suppressed")))
    with op.batch_alter_table("hostings") as batch_op:
        batch_op.add_column(sa.Column("notices", sa.Integer(), server_default="1", nullable=False))
    for table in ("activity", "activity_daily"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("suppressed", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("hosting_totals") as batch_op:
        batch_op.add_column(sa.Column("suppressed", sa.BigInteger(), server_default="0", nullable=False))
    op.create_table(
        "suppressions",
        sa.Column("scope", Id, nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("reply", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("notified", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("scope", "value", name=op.f("pk_suppressions")),
    )
    op.create_index("ix_suppressions_kind", "suppressions", ["kind"])
    op.create_table(
        "notice_events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("recipient_id", Id, nullable=False),
        sa.Column("message_id", Id, nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("done_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), server_default="", nullable=False),
        sa.Column("sender", sa.String(length=320), server_default="", nullable=False),
        sa.Column("notice_id", Id, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_events")),
    )
    op.create_index("ix_notice_events_done", "notice_events", ["done_at"])
    op.create_index("ix_notice_events_message", "notice_events", ["message_id", "done_at"])
    op.create_index("ix_notice_events_recipient", "notice_events", ["recipient_id"])
    op.create_index("ix_notice_events_sender", "notice_events", ["sender", "done_at"])


def downgrade() -> None:
    op.drop_table("notice_events")
    op.drop_table("suppressions")
    with op.batch_alter_table("hosting_totals") as batch_op:
        batch_op.drop_column("suppressed")
    for table in ("activity", "activity_daily"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("suppressed")
    with op.batch_alter_table("hostings") as batch_op:
        batch_op.drop_column("notices")
    op.execute("DELETE FROM recipients WHERE status = 'suppressed'")
    with op.batch_alter_table("recipients") as batch_op:
        batch_op.drop_constraint(op.f("ck_recipients_status"), type_="check")
        batch_op.create_check_constraint("status", _statuses(_BEFORE))
