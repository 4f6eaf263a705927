"""tracking: daily and total counters, scripts, VERP secret, inbound reports, report runs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_DAILY = ("accepted", "flagged", "dispatched", "sent", "bounced", "unknown_user", "expired", "complaints")
_TOTALS = ("sent", "bounced", "expired", "purged", "complaints")


def _hosting_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["hosting_id"], ["hostings.id"], name=op.f(f"fk_{table}_hosting_id_hostings"))


def upgrade() -> None:
    op.drop_index("ix_recipients_hosting_status", table_name="recipients")
    op.create_index("ix_recipients_hosting_status_updated", "recipients", ["hosting_id", "status", "updated_at"])
    with op.batch_alter_table("activity") as batch_op:
        batch_op.add_column(sa.Column("expired", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("complaints", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "activity_daily",
        sa.Column("hosting_id", _ID, nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in _DAILY),
        _hosting_fk("activity_daily"),
        sa.PrimaryKeyConstraint("hosting_id", "day", name=op.f("pk_activity_daily")),
    )
    op.create_table(
        "hosting_totals",
        sa.Column("hosting_id", _ID, nullable=False),
        *(sa.Column(name, sa.BigInteger(), server_default="0", nullable=False) for name in _TOTALS),
        _hosting_fk("hosting_totals"),
        sa.PrimaryKeyConstraint("hosting_id", name=op.f("pk_hosting_totals")),
    )
    op.create_table(
        "script_counts",
        sa.Column("hosting_id", _ID, nullable=False),
        sa.Column("script", sa.String(length=500), nullable=False),
        sa.Column("messages", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("recipients", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_at", sa.Float(), server_default="0", nullable=False),
        _hosting_fk("script_counts"),
        sa.PrimaryKeyConstraint("hosting_id", "script", name=op.f("pk_script_counts")),
    )
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_secrets")),
    )
    op.create_table(
        "inbound_reports",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("recipient_id", _ID, nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("client", sa.String(length=255), server_default="", nullable=False),
        sa.Column("summary", sa.Text(), server_default="", nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["recipient_id"], ["recipients.id"], name=op.f("fk_inbound_reports_recipient_id_recipients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_reports")),
    )
    op.create_index("ix_inbound_reports_recipient", "inbound_reports", ["recipient_id"])
    op.create_table(
        "report_runs",
        sa.Column("hosting_id", _ID, nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("message_id", _ID, nullable=True),
        sa.Column("late", sa.Integer(), server_default="0", nullable=False),
        _hosting_fk("report_runs"),
        sa.PrimaryKeyConstraint("hosting_id", "day", name=op.f("pk_report_runs")),
    )


def downgrade() -> None:
    op.drop_table("report_runs")
    op.drop_index("ix_inbound_reports_recipient", table_name="inbound_reports")
    op.drop_table("inbound_reports")
    op.drop_table("secrets")
    op.drop_table("script_counts")
    op.drop_table("hosting_totals")
    op.drop_table("activity_daily")
    with op.batch_alter_table("activity") as batch_op:
        batch_op.drop_column("complaints")
        batch_op.drop_column("expired")
    op.drop_index("ix_recipients_hosting_status_updated", table_name="recipients")
    op.create_index("ix_recipients_hosting_status", "recipients", ["hosting_id", "status"])
