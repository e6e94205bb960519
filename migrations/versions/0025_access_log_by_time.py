"""access_events: an index on (client_id, created_at)

The access log's pages ("Who looked at my data") go newer/older from a visit by time
within a client instead of counting and skipping, so a page reads its 25 visits whether
the client has 1,000 or 50,000.

Revision ID: 6e2a9c4b7d15
Revises: a9cecb2af1a4
Create Date: 2026-12-01 18:00:00
"""

from alembic import op

revision = '6e2a9c4b7d15'
down_revision = 'a9cecb2af1a4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_access_events_client_time', 'access_events',
                    ['client_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_access_events_client_time', table_name='access_events')
