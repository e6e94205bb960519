"""slot_holds: a visitor's chosen time, kept while they register (booking picker)

Revision ID: 8e4b2c6a1f53
Revises: 7d1e5a9c3b20
Create Date: 2026-12-01 14:20:00
"""

import sqlalchemy as sa
from alembic import op

from shared.models.base import UTCDateTime

revision = '8e4b2c6a1f53'
down_revision = '7d1e5a9c3b20'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'slot_holds',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('service_id', sa.Uuid(), nullable=False),
        sa.Column('staff_member_id', sa.Uuid(), nullable=False),
        sa.Column('start_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('end_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['service_id'], ['services.id'],
                                name=op.f('fk_slot_holds_service_id_services'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['staff_member_id'], ['staff_members.id'],
                                name=op.f('fk_slot_holds_staff_member_id_staff_members'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slot_holds')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_slot_holds_token_hash')),
    )
    op.create_index('uq_slot_holds_slot', 'slot_holds', ['staff_member_id', 'start_at'],
                    unique=True)
    op.create_index(op.f('ix_slot_holds_expires_at'), 'slot_holds', ['expires_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_slot_holds_expires_at'), table_name='slot_holds')
    op.drop_index('uq_slot_holds_slot', table_name='slot_holds')
    op.drop_table('slot_holds')
