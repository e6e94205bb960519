"""accounts: the address an anonymous contact asked to be told at, until it is confirmed

accounts.pending_email (encrypted under the account's data key). The link that confirms it
is an account token (purpose "notification-email", its keyed hash only) instead of a
signed link that carried the address and the account id. Only a column is added, so
SQLite needs no rebuild of the accounts table (which its foreign keys would not survive).

Revision ID: 9a4c2e7b5d13
Revises: 3f6b8d1c2e90
Create Date: 2026-12-02 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '9a4c2e7b5d13'
down_revision = '3f6b8d1c2e90'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('accounts', sa.Column('pending_email', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # SQLite (3.35+) drops a column in place; a batch rebuild of accounts would cascade
    # into its sessions, codes and passkeys while foreign keys are on.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(sa.text('ALTER TABLE accounts DROP COLUMN pending_email'))
    else:
        op.drop_column('accounts', 'pending_email')
    op.execute(sa.text("DELETE FROM account_tokens WHERE purpose = 'notification-email'"))
