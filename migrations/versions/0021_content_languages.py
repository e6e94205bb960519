"""services: their name, description and place in the other languages

The columns stay German (the organisation's language); services.translations holds the
other languages as {locale: {"name", "description", "location"}}. Consent templates need
no new column: their texts already hold one entry per language, which now may carry that
language's purpose, legal basis and audience too (German's stay in their columns).
Existing rows keep all they had: their texts are the German entries.

Revision ID: 9c3e5a7f1d24
Revises: 4b8d1f7e2c90
Create Date: 2026-12-01 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '9c3e5a7f1d24'
down_revision = '4b8d1f7e2c90'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('services', sa.Column('translations', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE services DROP COLUMN translations")
