"""security: event log, passkeys flagged for review, invited accounts' hand-over

Revision ID: 8a3f2c1e9d40
Revises: 7e1a5c0d2b31
Create Date: 2026-12-01 03:30:00
"""

from alembic import op
import sqlalchemy as sa
import shared.models.base


revision = '8a3f2c1e9d40'
down_revision = '7e1a5c0d2b31'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'security_events',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('at', shared.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('event', sa.String(length=48), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('account_kind', sa.String(length=16), nullable=True),
        sa.Column('account_ref', sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_security_events')),
    )
    with op.batch_alter_table('security_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_security_events_account_ref'), ['account_ref'],
                              unique=False)
    with op.batch_alter_table('passkey_credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flagged_at', shared.models.base.UTCDateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invited_by', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('handover_confirmed_at',
                                      shared.models.base.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('handover_confirmed_at')
        batch_op.drop_column('invited_by')
    with op.batch_alter_table('passkey_credentials', schema=None) as batch_op:
        batch_op.drop_column('flagged_at')
    with op.batch_alter_table('security_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_events_account_ref'))
        batch_op.drop_index(batch_op.f('ix_security_events_at'))
    op.drop_table('security_events')
