"""access log: chains changed since the last anchor, and each chain's anchored head

`flask audit verify` and `flask audit anchor` look only at what changed since the last
anchor. Triggers on access_events mark every chain an insert, update or delete touches
(also a write that bypasses the app), with the lowest event it touched; the anchor keeps
each chain's anchored head in the database beside the anchor file. Until the first anchor
after this revision, verify and anchor check everything, as before.

Revision ID: a9cecb2af1a4
Revises: 2f7c5b9e8a13
Create Date: 2026-12-01 17:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'a9cecb2af1a4'
down_revision = '2f7c5b9e8a13'
branch_labels = None
depends_on = None

_SQLITE_MARK = """
    INSERT INTO access_chain_changes (chain_id, low_seq, version) VALUES ({row}.client_id,
        {row}.seq, 1)
    ON CONFLICT (chain_id) DO UPDATE SET low_seq = min(low_seq, excluded.low_seq),
        version = version + 1;"""

_POSTGRES_MARK = """
        INSERT INTO access_chain_changes (chain_id, low_seq, version)
        VALUES ({row}.client_id, {row}.seq, 1)
        ON CONFLICT (chain_id) DO UPDATE
        SET low_seq = LEAST(access_chain_changes.low_seq, EXCLUDED.low_seq),
            version = access_chain_changes.version + 1;"""


def upgrade() -> None:
    op.create_table(
        'access_chain_anchors',
        sa.Column('chain_id', sa.Uuid(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('chain_id', name=op.f('pk_access_chain_anchors')),
    )
    op.create_table(
        'access_chain_changes',
        sa.Column('chain_id', sa.Uuid(), nullable=False),
        sa.Column('low_seq', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('chain_id', name=op.f('pk_access_chain_changes')),
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"""
            CREATE FUNCTION access_chain_touched() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN {_POSTGRES_MARK.format(row='OLD')}
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN {_POSTGRES_MARK.format(row='NEW')}
                END IF;
                RETURN NULL;
            END $$""")
        op.execute("CREATE TRIGGER access_events_touched AFTER INSERT OR UPDATE OR DELETE"
                   " ON access_events FOR EACH ROW EXECUTE FUNCTION access_chain_touched()")
        return
    op.execute(f"CREATE TRIGGER access_events_inserted AFTER INSERT ON access_events BEGIN"
               f" {_SQLITE_MARK.format(row='NEW')} END")
    op.execute(f"CREATE TRIGGER access_events_updated AFTER UPDATE ON access_events BEGIN"
               f" {_SQLITE_MARK.format(row='OLD')} {_SQLITE_MARK.format(row='NEW')} END")
    op.execute(f"CREATE TRIGGER access_events_deleted AFTER DELETE ON access_events BEGIN"
               f" {_SQLITE_MARK.format(row='OLD')} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER access_events_touched ON access_events")
        op.execute("DROP FUNCTION access_chain_touched()")
    else:
        for name in ('inserted', 'updated', 'deleted'):
            op.execute(f"DROP TRIGGER access_events_{name}")
    op.drop_table('access_chain_changes')
    op.drop_table('access_chain_anchors')
