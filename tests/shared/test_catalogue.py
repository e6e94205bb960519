"""The data catalogue is complete by construction."""

from sqlalchemy import LargeBinary

from shared import catalogue
from shared.models import Base
from shared.models.base import encrypted


def all_columns() -> dict[str, object]:
    return {
        f"{table.name}.{column.name}": column
        for table in Base.metadata.sorted_tables
        for column in table.columns
    }


def test_every_column_is_declared_personal_or_technical():
    columns = set(all_columns())
    declared = set(catalogue.BY_COLUMN) | catalogue.TECHNICAL
    undeclared = sorted(columns - declared)
    assert not undeclared, f"declare these in shared/catalogue.py: {undeclared}"
    stale = sorted(declared - columns)
    assert not stale, f"the catalogue names columns that do not exist: {stale}"
    assert not set(catalogue.BY_COLUMN) & catalogue.TECHNICAL


def test_encrypted_fields_are_declared_as_encrypted():
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        for name, value in vars(cls).items():
            if isinstance(value, encrypted):
                entry = catalogue.BY_COLUMN.get(f"{cls.__tablename__}.{name}")
                assert entry is not None, f"{cls.__tablename__}.{name} is not in the catalogue"
                assert entry.storage == catalogue.ENCRYPTED


def test_declared_encrypted_and_hashed_columns_store_bytes_or_hashes():
    columns = all_columns()
    for entry in catalogue.ENTRIES:
        column = columns[entry.column]
        if entry.storage in (catalogue.ENCRYPTED, catalogue.BLIND_INDEX):
            assert isinstance(column.type, LargeBinary), entry.column
        assert entry.purpose
        assert entry.legal_basis
        assert entry.retention
        assert entry.source


def test_a_new_undeclared_column_would_fail(monkeypatch):
    """The check above can fail: drop one declaration and it names the column."""
    trimmed = {k: v for k, v in catalogue.BY_COLUMN.items() if k != "clients.full_name"}
    monkeypatch.setattr(catalogue, "BY_COLUMN", trimmed)
    declared = set(catalogue.BY_COLUMN) | catalogue.TECHNICAL
    assert set(all_columns()) - declared == {"clients.full_name"}
