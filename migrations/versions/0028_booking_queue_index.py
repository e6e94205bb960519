"""bookings: a partial index of the requests waiting for a decision, oldest first

The booking queue pages through the waiting requests by (created_at, id). At 100,000
clients with 10,000 requests waiting, PostgreSQL fetched every waiting request (and every
client) and sorted them for each page of 25 (0.2 s); this index lets a page read its 25
rows in order and stop.

Revision ID: 3f6b8d1c2e90
Revises: 7c1e5a9d3b42
Create Date: 2026-12-01 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '3f6b8d1c2e90'
down_revision = '7c1e5a9d3b42'
branch_labels = None
depends_on = None

_WAITING = "status = 'requested'"


def upgrade() -> None:
    op.create_index('ix_bookings_waiting', 'bookings', ['created_at', 'id'],
                    sqlite_where=sa.text(_WAITING), postgresql_where=sa.text(_WAITING))


def downgrade() -> None:
    op.drop_index('ix_bookings_waiting', table_name='bookings',
                  sqlite_where=sa.text(_WAITING), postgresql_where=sa.text(_WAITING))
