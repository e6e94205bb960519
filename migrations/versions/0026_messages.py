"""messages: secure conversations between a client and the team of a service

message_threads, thread_staff, messages and message_attachments, every row under the
client's data key and naming the client (erasure, "my data" and the export find them by
it); staff_members choose instant emails or a daily digest for new messages.

Revision ID: 4b8d2e6f1a37
Revises: 6e2a9c4b7d15
Create Date: 2026-12-01 20:30:00
"""

import sqlalchemy as sa
from alembic import op

import shared.models.base

revision = '4b8d2e6f1a37'
down_revision = '6e2a9c4b7d15'
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, shared.models.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        'message_threads',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('client_id', sa.Uuid(), nullable=False),
        sa.Column('data_key_id', sa.Uuid(), nullable=False),
        sa.Column('service_id', sa.Uuid(), nullable=True),
        sa.Column('topic', sa.LargeBinary(), nullable=False),
        sa.Column('started_by_account_id', sa.Uuid(), nullable=True),
        sa.Column('assigned_staff_id', sa.Uuid(), nullable=True),
        _time('assigned_at', True),
        sa.Column('confidential_from_guardians', sa.Boolean(), nullable=False),
        _time('created_at'),
        _time('last_message_at'),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'],
                                name=op.f('fk_message_threads_client_id_clients'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['data_key_id'], ['data_keys.id'],
                                name=op.f('fk_message_threads_data_key_id_data_keys')),
        sa.ForeignKeyConstraint(['service_id'], ['services.id'],
                                name=op.f('fk_message_threads_service_id_services'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['started_by_account_id'], ['accounts.id'],
                                name=op.f('fk_message_threads_started_by_account_id_accounts'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['assigned_staff_id'], ['staff_members.id'],
                                name=op.f('fk_message_threads_assigned_staff_id_staff_members'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_message_threads')),
    )
    for column in ('client_id', 'data_key_id', 'service_id', 'started_by_account_id',
                   'assigned_staff_id', 'last_message_at'):
        op.create_index(op.f(f'ix_message_threads_{column}'), 'message_threads', [column])
    op.create_table(
        'thread_staff',
        sa.Column('thread_id', sa.Uuid(), nullable=False),
        sa.Column('staff_member_id', sa.Uuid(), nullable=False),
        sa.Column('client_id', sa.Uuid(), nullable=False),
        _time('joined_at'),
        sa.ForeignKeyConstraint(['thread_id'], ['message_threads.id'],
                                name=op.f('fk_thread_staff_thread_id_message_threads'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['staff_member_id'], ['staff_members.id'],
                                name=op.f('fk_thread_staff_staff_member_id_staff_members'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'],
                                name=op.f('fk_thread_staff_client_id_clients'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('thread_id', 'staff_member_id', name=op.f('pk_thread_staff')),
    )
    for column in ('staff_member_id', 'client_id'):
        op.create_index(op.f(f'ix_thread_staff_{column}'), 'thread_staff', [column])
    op.create_table(
        'messages',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('thread_id', sa.Uuid(), nullable=False),
        sa.Column('client_id', sa.Uuid(), nullable=False),
        sa.Column('data_key_id', sa.Uuid(), nullable=False),
        sa.Column('author_account_id', sa.Uuid(), nullable=True),
        sa.Column('author_staff_id', sa.Uuid(), nullable=True),
        sa.Column('from_staff', sa.Boolean(), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        _time('created_at'),
        _time('read_by_client_at', True),
        _time('read_by_staff_at', True),
        sa.Column('confidential_from_guardians', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['thread_id'], ['message_threads.id'],
                                name=op.f('fk_messages_thread_id_message_threads'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'],
                                name=op.f('fk_messages_client_id_clients'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['data_key_id'], ['data_keys.id'],
                                name=op.f('fk_messages_data_key_id_data_keys')),
        sa.ForeignKeyConstraint(['author_account_id'], ['accounts.id'],
                                name=op.f('fk_messages_author_account_id_accounts'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['author_staff_id'], ['staff_members.id'],
                                name=op.f('fk_messages_author_staff_id_staff_members'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    )
    for column in ('thread_id', 'client_id', 'data_key_id', 'author_account_id',
                   'author_staff_id'):
        op.create_index(op.f(f'ix_messages_{column}'), 'messages', [column])
    op.create_table(
        'message_attachments',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('message_id', sa.Uuid(), nullable=False),
        sa.Column('client_id', sa.Uuid(), nullable=False),
        sa.Column('data_key_id', sa.Uuid(), nullable=False),
        sa.Column('filename', sa.LargeBinary(), nullable=False),
        sa.Column('content_type', sa.String(length=120), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        _time('created_at'),
        sa.Column('confidential_from_guardians', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'],
                                name=op.f('fk_message_attachments_message_id_messages'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'],
                                name=op.f('fk_message_attachments_client_id_clients'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['data_key_id'], ['data_keys.id'],
                                name=op.f('fk_message_attachments_data_key_id_data_keys')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_message_attachments')),
    )
    for column in ('message_id', 'client_id', 'data_key_id'):
        op.create_index(op.f(f'ix_message_attachments_{column}'), 'message_attachments',
                        [column])
    # Plain ALTER TABLE (SQLite 3.35+ drops columns too): a batch copy of staff_members
    # would break the foreign keys pointing at it.
    op.add_column('staff_members', sa.Column('message_notifications', sa.String(length=16),
                                             server_default='instant', nullable=True))
    op.add_column('staff_members', _time('message_digest_sent_at', True))


def downgrade() -> None:
    op.drop_column('staff_members', 'message_digest_sent_at')
    op.drop_column('staff_members', 'message_notifications')
    op.drop_table('message_attachments')
    op.drop_table('messages')
    op.drop_table('thread_staff')
    op.drop_table('message_threads')
