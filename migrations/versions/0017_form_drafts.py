"""form_drafts: a posted form kept across the sign-in after an idle timeout

Revision ID: 5c8e2f1a9d34
Revises: 5c7e9a1b3d24
Create Date: 2026-12-01 14:00:00
"""

import sqlalchemy as sa
from alembic import op

from shared.models.base import UTCDateTime

revision = '5c8e2f1a9d34'
down_revision = '5c7e9a1b3d24'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'form_drafts',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('account_id', sa.Uuid(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_form_drafts_account_id', 'form_drafts', ['account_id'])
    op.create_index('ix_form_drafts_expires_at', 'form_drafts', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_form_drafts_expires_at', table_name='form_drafts')
    op.drop_index('ix_form_drafts_account_id', table_name='form_drafts')
    op.drop_table('form_drafts')
