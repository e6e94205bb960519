"""account_recoveries: the hand-over code staff give in person (keyed hash) and wrong tries

Revision ID: 7d2a4e9c1b85
Revises: 9a3f6c2e8b41
Create Date: 2026-12-01 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '7d2a4e9c1b85'
down_revision = '9a3f6c2e8b41'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('account_recoveries') as batch:
        batch.add_column(sa.Column('handover_code_hash', sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column('wrong_codes', sa.Integer(), nullable=False,
                                   server_default=sa.text('0')))


def downgrade() -> None:
    with op.batch_alter_table('account_recoveries') as batch:
        batch.drop_column('wrong_codes')
        batch.drop_column('handover_code_hash')
