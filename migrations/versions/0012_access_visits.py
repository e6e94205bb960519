"""access_events: one event per staff request and client (categories, actions, purpose)

Earlier events keep their single category and action and their hashes: a category list
of one is the same string, and the purpose only enters the hash when it is set, so the
chains and the anchor verify across the change without rewriting any event.

Revision ID: 3f6a8c1d2e47
Revises: 9b2d4e6f8a10
Create Date: 2026-12-01 11:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '3f6a8c1d2e47'
down_revision = '9b2d4e6f8a10'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('access_events') as batch:
        batch.add_column(sa.Column('purpose', sa.String(length=32), nullable=True))
        batch.alter_column('category', type_=sa.String(length=255),
                           existing_type=sa.String(length=32), existing_nullable=False)
        batch.alter_column('action', type_=sa.String(length=128),
                           existing_type=sa.String(length=32), existing_nullable=False)


def downgrade() -> None:
    # The columns stay wide: a visit's category list no longer fits 32 characters, and
    # cutting it would change the events (and break their hashes). The old code reads
    # wide columns as well.
    with op.batch_alter_table('access_events') as batch:
        batch.drop_column('purpose')
