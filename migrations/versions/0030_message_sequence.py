"""messages: numbered in the order they were committed; anonymous contacts indexed

messages.seq (1, 2, … within a conversation, unique with thread_id) and
message_threads.last_seq (the number of the conversation's last message). An open
conversation page asked for the messages after the last one it showed by (created_at, id):
a message begun earlier but committed later (two people writing at once, a large file being
checked) was never shown. Writing a message now takes the next number with an UPDATE of its
conversation's row, whose lock holds other writers until the commit, so the numbers follow
the commits. Existing messages are numbered in the order their pages showed them.

clients.anonymous_at gets an index: the retention purge erases anonymous contacts whose
conversations are all gone and looks among them only.

Columns are only added, so SQLite needs no rebuild of the messages or clients tables
(which their foreign keys would not survive). messages.seq is added with a default of 0 to
fill the existing rows; PostgreSQL drops the default afterwards, SQLite cannot without a
rebuild (the application always writes the number).

Revision ID: 5d2b8f4a6c71
Revises: 9a4c2e7b5d13
Create Date: 2026-12-02 01:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = '5d2b8f4a6c71'
down_revision = '9a4c2e7b5d13'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('message_threads', sa.Column('last_seq', sa.Integer(),
                                               server_default=sa.text('0'), nullable=False))
    op.add_column('messages', sa.Column('seq', sa.Integer(), server_default=sa.text('0'),
                                        nullable=False))
    # The order the pages showed: time, then id (SQLite 3.33+ and PostgreSQL alike).
    op.execute(sa.text(
        'UPDATE messages SET seq = numbered.n FROM ('
        ' SELECT id, ROW_NUMBER() OVER (PARTITION BY thread_id ORDER BY created_at, id) AS n'
        ' FROM messages) AS numbered WHERE numbered.id = messages.id'))
    op.execute(sa.text(
        'UPDATE message_threads SET last_seq = COALESCE((SELECT MAX(messages.seq)'
        ' FROM messages WHERE messages.thread_id = message_threads.id), 0)'))
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('messages', 'seq', server_default=None)
    op.create_index('ix_messages_thread_seq', 'messages', ['thread_id', 'seq'], unique=True)
    op.create_index(op.f('ix_clients_anonymous_at'), 'clients', ['anonymous_at'])


def _drop_column(table: str, column: str) -> None:
    # SQLite (3.35+) drops a column in place; a batch rebuild would cascade into the rows
    # that point at the table while foreign keys are on.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(sa.text(f'ALTER TABLE {table} DROP COLUMN {column}'))
    else:
        op.drop_column(table, column)


def downgrade() -> None:
    op.drop_index(op.f('ix_clients_anonymous_at'), table_name='clients')
    op.drop_index('ix_messages_thread_seq', table_name='messages')
    _drop_column('messages', 'seq')
    _drop_column('message_threads', 'last_seq')
