"""invitation state: when a client was invited to an account of their own

``clients.own_account_invited_at`` records an invitation on the young person whether or not
the address already had an account, so that nothing a guardian sees afterwards tells the
two apart. Existing invited accounts get their account's creation time.

Revision ID: 4c7e2b9a1f03
Revises: 8d77192e1721
Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

import shared.models.base

revision = '4c7e2b9a1f03'
down_revision = '8d77192e1721'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE, also on SQLite (3.35+): a batch operation would copy and drop the
    # clients table, and with foreign keys on, dropping it deletes every row that
    # references a client with ON DELETE CASCADE (bookings, notes, documents ...).
    op.add_column('clients', sa.Column('own_account_invited_at',
                                       shared.models.base.UTCDateTime(timezone=True),
                                       nullable=True))
    # Accounts made by an invitation before this revision: the invitation went out when
    # the account was made.
    op.execute(
        "UPDATE clients SET own_account_invited_at = (SELECT accounts.created_at "
        "FROM accounts WHERE accounts.id = clients.account_id) "
        "WHERE account_id IN (SELECT id FROM accounts WHERE invited_by IS NOT NULL)")


def downgrade() -> None:
    op.drop_column('clients', 'own_account_invited_at')
