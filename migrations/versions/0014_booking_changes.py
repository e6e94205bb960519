"""bookings: moving an appointment (replaces_booking_id), the expiry notice; services: video link

Requests that expired before this revision count as told: the notice is for requests
that expire from now on.

Revision ID: 7d1e5a9c3b20
Revises: 6d1e9a4b7c25
Create Date: 2026-12-01 14:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = '7d1e5a9c3b20'
down_revision = '6d1e9a4b7c25'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases: a batch rebuild of services or bookings on
    # SQLite would drop tables other rows point to.
    op.add_column('services', sa.Column('video_url', sa.String(length=500), nullable=True))
    op.add_column('bookings', sa.Column('expiry_notice_sent_at', sa.DateTime(timezone=True),
                                        nullable=True))
    op.add_column('bookings', sa.Column('replaces_booking_id', sa.Uuid(), nullable=True))
    op.execute("UPDATE bookings SET expiry_notice_sent_at = expires_at "
               "WHERE status = 'expired'")


def downgrade() -> None:
    op.execute("ALTER TABLE bookings DROP COLUMN replaces_booking_id")
    op.execute("ALTER TABLE bookings DROP COLUMN expiry_notice_sent_at")
    op.execute("ALTER TABLE services DROP COLUMN video_url")
