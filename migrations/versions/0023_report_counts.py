"""report_counts: the funder report from counts, not from every client's birth date

Counts per appointment time, service and age band (no client id, no birth date), kept up to
date when an appointment is confirmed or cancelled and when a client is erased. Existing
appointments are counted by ``flask reports rebuild`` (run once after this upgrade; the
report page also does it on its first visit when nobody did): it decrypts each client's birth
date once, which a migration cannot do.

Revision ID: 2f7c5b9e8a13
Revises: 6e1a9c4d2b57
Create Date: 2026-12-01 18:30:00
"""

import sqlalchemy as sa
from alembic import op

import shared.models.base

revision = '2f7c5b9e8a13'
down_revision = '6e1a9c4d2b57'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'report_counts',
        sa.Column('slot_at', shared.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('service_id', sa.Uuid(), nullable=False),
        sa.Column('age_band', sa.String(length=8), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('appointments', sa.Integer(), nullable=False),
        sa.Column('clients', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['service_id'], ['services.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('slot_at', 'service_id', 'age_band'),
    )
    op.create_index('ix_report_counts_service_id', 'report_counts', ['service_id'])


def downgrade() -> None:
    op.drop_index('ix_report_counts_service_id', table_name='report_counts')
    op.drop_table('report_counts')
    op.execute("DELETE FROM app_meta WHERE key = 'report_counts'")
