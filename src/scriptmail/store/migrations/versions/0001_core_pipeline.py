"""core pipeline: hostings, messages, bodies, recipients, attempts

Revision ID: 0001
Revises: 
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hostings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('owner_email', sa.String(length=320), nullable=False),
    sa.Column('uid', sa.Integer(), nullable=True),
    sa.Column('smtp_password_hash', sa.String(length=200), nullable=True),
    sa.Column('plan', sa.String(length=64), server_default='default', nullable=False),
    sa.Column('state', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('report_to', sa.String(length=320), nullable=True),
    sa.Column('language', sa.String(length=8), server_default='en', nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.CheckConstraint("state IN ('active', 'blocked', 'purging', 'spam', 'bounce', 'forced')", name=op.f('ck_hostings_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hostings')),
    sa.UniqueConstraint('name', name=op.f('uq_hostings_name')),
    sa.UniqueConstraint('uid', name=op.f('uq_hostings_uid'))
    )
    op.create_table('messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('hosting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('received_at', sa.Float(), nullable=False),
    sa.Column('envelope_from', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.Text(), server_default='', nullable=False),
    sa.Column('message_id', sa.String(length=998), server_default='', nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('client', sa.String(length=255), server_default='', nullable=False),
    sa.Column('script', sa.Text(), server_default='', nullable=False),
    sa.Column('cwd', sa.Text(), server_default='', nullable=False),
    sa.Column('command', sa.Text(), server_default='', nullable=False),
    sa.CheckConstraint("origin IN ('smtp', 'sendmail', 'maildrop')", name=op.f('ck_messages_origin')),
    sa.ForeignKeyConstraint(['hosting_id'], ['hostings.id'], name=op.f('fk_messages_hosting_id_hostings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_hosting_received', ['hosting_id', 'received_at'], unique=False)

    op.create_table('bodies',
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_bodies_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_bodies'))
    )
    op.create_table('recipients',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hosting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('queued_at', sa.Float(), nullable=False),
    sa.Column('next_attempt_at', sa.Float(), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_code', sa.Integer(), nullable=True),
    sa.Column('last_text', sa.Text(), server_default='', nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'deferred', 'sending', 'sent', 'bounced', 'expired', 'held', 'purged')", name=op.f('ck_recipients_status')),
    sa.ForeignKeyConstraint(['hosting_id'], ['hostings.id'], name=op.f('fk_recipients_hosting_id_hostings')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_recipients_message_id_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recipients'))
    )
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.create_index('ix_recipients_hosting_status', ['hosting_id', 'status'], unique=False)
        batch_op.create_index('ix_recipients_message', ['message_id'], unique=False)
        batch_op.create_index('ix_recipients_status_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('nodes',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('heartbeat_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_nodes'))
    )
    op.create_table('attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('recipient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('node', sa.String(length=128), server_default='', nullable=False),
    sa.Column('mx_host', sa.String(length=300), server_default='', nullable=False),
    sa.Column('code', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), server_default='', nullable=False),
    sa.Column('duration', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['recipient_id'], ['recipients.id'], name=op.f('fk_attempts_recipient_id_recipients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempts'))
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index('ix_attempts_recipient', ['recipient_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_recipient')

    op.drop_table('attempts')
    op.drop_table('nodes')
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_recipients_status_due')
        batch_op.drop_index('ix_recipients_message')
        batch_op.drop_index('ix_recipients_hosting_status')

    op.drop_table('recipients')
    op.drop_table('bodies')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_hosting_received')

    op.drop_table('messages')
    op.drop_table('hostings')
