"""consents for accounts with only a password: email codes, reminder of requests

consent_email_codes holds keyed hashes of one-time codes sent by email to sign a consent;
consent_requests.reminded_at marks the one reminder, found through a partial index of the
requests still waiting for it. A refusal ("declined") is a row of consents, no new column.

Revision ID: 6d1e9a4b7c25
Revises: 3f6a8c1d2e47
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa
from alembic import op

import shared.models.base

revision = '6d1e9a4b7c25'
down_revision = '3f6a8c1d2e47'
branch_labels = None
depends_on = None

_DUE = "fulfilled_at IS NULL AND reminded_at IS NULL"


def upgrade() -> None:
    op.create_table(
        'consent_email_codes',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('account_id', sa.Uuid(), nullable=False),
        sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('created_at', shared.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', shared.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('used_at', shared.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_consent_email_codes_account_id_accounts'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_email_codes')),
    )
    op.create_index(op.f('ix_consent_email_codes_account_id'), 'consent_email_codes',
                    ['account_id'], unique=False)
    with op.batch_alter_table('consent_requests') as batch:
        batch.add_column(sa.Column('reminded_at',
                                   shared.models.base.UTCDateTime(timezone=True),
                                   nullable=True))
    op.create_index('ix_consent_requests_reminder_due', 'consent_requests', ['created_at'],
                    unique=False, sqlite_where=sa.text(_DUE), postgresql_where=sa.text(_DUE))


def downgrade() -> None:
    op.drop_index('ix_consent_requests_reminder_due', table_name='consent_requests')
    with op.batch_alter_table('consent_requests') as batch:
        batch.drop_column('reminded_at')
    op.drop_index(op.f('ix_consent_email_codes_account_id'), table_name='consent_email_codes')
    op.drop_table('consent_email_codes')
