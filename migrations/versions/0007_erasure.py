"""erasure: restricted clients

Revision ID: 7e1a5c0d2b31
Revises: cff9a76e5078
Create Date: 2026-11-29 22:30:00
"""

from alembic import op
import sqlalchemy as sa
import shared.models.base


revision = '7e1a5c0d2b31'
down_revision = 'cff9a76e5078'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('restricted_at', shared.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('erasure_reviewed_at', shared.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_clients_restricted_at'), ['restricted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clients_restricted_at'))
        batch_op.drop_column('erasure_reviewed_at')
        batch_op.drop_column('restricted_at')
