"""account_recoveries: staff start a recovery after an identity check in person

Revision ID: 5c7e9a1b3d24
Revises: 8e4b2c6a1f53
Create Date: 2026-12-01 14:10:00
"""

import sqlalchemy as sa
from alembic import op

import shared.models.base

revision = '5c7e9a1b3d24'
down_revision = '8e4b2c6a1f53'
branch_labels = None
depends_on = None

_OPEN = sa.text("completed_at IS NULL AND cancelled_at IS NULL")


def upgrade() -> None:
    op.create_table(
        'account_recoveries',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('account_id', sa.Uuid(), nullable=False),
        sa.Column('data_key_id', sa.Uuid(), nullable=False),
        sa.Column('started_by_id', sa.Uuid(), nullable=True),
        sa.Column('identity_check', sa.LargeBinary(), nullable=False),
        sa.Column('started_at', shared.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('effective_at', shared.models.base.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column('completed_at', shared.models.base.UTCDateTime(timezone=True),
                  nullable=True),
        sa.Column('cancelled_at', shared.models.base.UTCDateTime(timezone=True),
                  nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_account_recoveries_account_id_accounts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['data_key_id'], ['data_keys.id'],
                                name=op.f('fk_account_recoveries_data_key_id_data_keys')),
        sa.ForeignKeyConstraint(['started_by_id'], ['staff_members.id'],
                                name=op.f('fk_account_recoveries_started_by_id_staff_members'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_account_recoveries')),
    )
    with op.batch_alter_table('account_recoveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_recoveries_account_id'), ['account_id'],
                              unique=False)
        batch_op.create_index('uq_account_recoveries_open', ['account_id'], unique=True,
                              sqlite_where=_OPEN, postgresql_where=_OPEN)


def downgrade() -> None:
    with op.batch_alter_table('account_recoveries', schema=None) as batch_op:
        batch_op.drop_index('uq_account_recoveries_open')
        batch_op.drop_index(batch_op.f('ix_account_recoveries_account_id'))
    op.drop_table('account_recoveries')
