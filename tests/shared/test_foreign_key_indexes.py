"""Every foreign key has an index that starts with its columns, so an erasure (which deletes
or detaches every row pointing to a client, an account, a staff member or a data key) and
the database's own checks on delete read only the rows concerned, however many clients
there are. A new foreign key without an index fails here; the migrated schema equals the
models (tests/shared/test_migrations.py), so the migration must create it too."""

from __future__ import annotations

from sqlalchemy import inspect

from shared.app import create_app
from shared.cli import upgrade_database
from shared.extensions import db
from shared.models import Base
from tests.conftest import make_config


def leading_columns(table) -> set[tuple[str, ...]]:
    """The column lists an index of ``table`` can be searched by: its indexes, unique
    constraints and primary key (each usable by any leading part of its columns)."""
    starts: set[tuple[str, ...]] = set()
    lists = [index.columns for index in table.indexes]
    lists += [constraint.columns for constraint in table.constraints
              if constraint.__class__.__name__ in ("UniqueConstraint", "PrimaryKeyConstraint")]
    for columns in lists:
        names = tuple(column.name for column in columns)
        starts.update(names[:length] for length in range(1, len(names) + 1))
    return starts


def foreign_keys() -> list[tuple[str, tuple[str, ...]]]:
    return [(table.name, tuple(column.name for column in fk.columns))
            for table in Base.metadata.sorted_tables for fk in table.foreign_key_constraints]


def test_the_models_list_foreign_keys():
    """The check below reads the real metadata (not an empty list)."""
    keys = foreign_keys()
    assert len(keys) > 40
    assert ("bookings", ("booked_by_account_id",)) in keys
    assert ("clients", ("data_key_id",)) in keys


def test_every_foreign_key_starts_an_index():
    missing = [f"{table}.{','.join(columns)}" for table, columns in foreign_keys()
               if columns not in leading_columns(Base.metadata.tables[table])]
    assert missing == [], f"foreign keys without an index: {missing}"


def test_the_retention_purge_finds_what_ended_by_an_index():
    """The purge narrows kept appointments by their end and consents by their withdrawal."""
    assert ("end_at",) in leading_columns(Base.metadata.tables["bookings"])
    assert ("withdrawn_at",) in leading_columns(Base.metadata.tables["consents"])


def test_the_migrated_database_has_those_indexes(fresh_database_url, tmp_path):
    """What the migrations build (SQLite or PostgreSQL), read back from the database."""
    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database()
        inspector = inspect(db.engine)
        missing = []
        for table, columns in foreign_keys():
            indexed = {tuple(index["column_names"][:len(columns)])
                       for index in inspector.get_indexes(table)}
            indexed.add(tuple(inspector.get_pk_constraint(table)["constrained_columns"]
                              [:len(columns)]))
            indexed.update(tuple(unique["column_names"][:len(columns)])
                           for unique in inspector.get_unique_constraints(table))
            if columns not in indexed:
                missing.append(f"{table}.{','.join(columns)}")
        db.engine.dispose()
    assert missing == [], f"foreign keys without an index in the database: {missing}"
