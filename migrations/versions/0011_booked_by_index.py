"""bookings: index on booked_by_account_id (the per-account cap on open requests)

Revision ID: 9b2d4e6f8a10
Revises: 4c7e2b9a1f03
Create Date: 2026-12-01 05:35:00
"""

from alembic import op

revision = '9b2d4e6f8a10'
down_revision = '4c7e2b9a1f03'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_bookings_booked_by_account_id'), 'bookings',
                    ['booked_by_account_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_bookings_booked_by_account_id'), table_name='bookings')
