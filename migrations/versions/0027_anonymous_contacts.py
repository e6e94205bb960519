"""anonymous contacts: a pseudonym to sign in with, and clients marked anonymous

accounts.pseudonym (encrypted under the account's data key) and its blind index
pseudonym_bidx (unique); clients.anonymous_at (when an anonymous contact first wrote).
Columns are only added, so SQLite needs no rebuild of the accounts table (which its
foreign keys would not survive).

Revision ID: 7c1e5a9d3b42
Revises: 4b8d2e6f1a37
Create Date: 2026-12-01 21:00:00
"""

import sqlalchemy as sa
from alembic import op

import shared.models.base

revision = '7c1e5a9d3b42'
down_revision = '4b8d2e6f1a37'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('accounts', sa.Column('pseudonym', sa.LargeBinary(), nullable=True))
    op.add_column('accounts', sa.Column('pseudonym_bidx', sa.LargeBinary(length=32),
                                        nullable=True))
    op.create_index(op.f('ix_accounts_pseudonym_bidx'), 'accounts', ['pseudonym_bidx'],
                    unique=True)
    op.add_column('clients', sa.Column('anonymous_at',
                                       shared.models.base.UTCDateTime(timezone=True),
                                       nullable=True))


def _drop_column(table: str, column: str) -> None:
    # SQLite (3.35+) drops a column in place; a batch rebuild of accounts would cascade
    # into its sessions, codes and passkeys while foreign keys are on.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(sa.text(f'ALTER TABLE {table} DROP COLUMN {column}'))
    else:
        op.drop_column(table, column)


def downgrade() -> None:
    _drop_column('clients', 'anonymous_at')
    op.drop_index(op.f('ix_accounts_pseudonym_bidx'), table_name='accounts')
    _drop_column('accounts', 'pseudonym_bidx')
    _drop_column('accounts', 'pseudonym')
