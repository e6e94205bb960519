"""bookings: one open request to move an appointment at a time (uq_bookings_open_move)

Two parallel requests to move the same appointment could both be accepted before: of
such twins still waiting, the later one is cancelled so that the index can be built.

Revision ID: 9a3f6c2e8b41
Revises: 5c8e2f1a9d34
Create Date: 2026-12-01 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '9a3f6c2e8b41'
down_revision = '5c8e2f1a9d34'
branch_labels = None
depends_on = None

_OPEN_SQL = "status IN ('requested', 'proposed')"


def upgrade() -> None:
    op.execute(
        "UPDATE bookings SET status = 'cancelled' "
        f"WHERE replaces_booking_id IS NOT NULL AND {_OPEN_SQL} AND EXISTS ("
        "SELECT 1 FROM bookings AS earlier "
        "WHERE earlier.replaces_booking_id = bookings.replaces_booking_id "
        "AND earlier.status IN ('requested', 'proposed') "
        "AND (earlier.created_at < bookings.created_at OR "
        "(earlier.created_at = bookings.created_at AND earlier.id < bookings.id)))")
    op.create_index('uq_bookings_open_move', 'bookings', ['replaces_booking_id'],
                    unique=True, sqlite_where=sa.text(_OPEN_SQL),
                    postgresql_where=sa.text(_OPEN_SQL))


def downgrade() -> None:
    op.drop_index('uq_bookings_open_move', table_name='bookings')
