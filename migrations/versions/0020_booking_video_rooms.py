"""bookings: each confirmed online appointment's own video room (encrypted)

Services keep video_url, now the base address under which rooms are opened. Online
appointments confirmed before this revision shared the service's room; a migration cannot
encrypt with the clients' data keys, so they get no room of their own here and the portal
no longer shows the shared one (their confirmation email still has it).

Revision ID: 4b8d1f7e2c90
Revises: 7d2a4e9c1b85
Create Date: 2026-12-01 15:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '4b8d1f7e2c90'
down_revision = '7d2a4e9c1b85'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE: a batch rebuild of bookings on SQLite would drop rows others use.
    op.add_column('bookings', sa.Column('video_room', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE bookings DROP COLUMN video_room")
