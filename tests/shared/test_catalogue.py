"""The data catalogue is complete by construction."""

import re

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


# Declared personal columns whose names sound secret but are not: each with its reason.
NOT_SECRET = {
    "consents.document_hash": "the fingerprint of a document the client holds a copy of",
    "consent_requests.template_key": "names a consent form, e.g. 'photos'",
}
SECRET_WORDS = re.compile(r"(^|_)(secret|hash|token|key|credential|code|handle|signature|salt|"
                          r"nonce|pin)(_|$)")


def test_columns_that_sound_secret_are_declared_secret_so_they_are_never_shown():
    """A new secret column cannot leak into "my data" or the export by being forgotten: a
    name that sounds like a secret needs secret=True (or a reason above)."""
    undeclared = sorted(
        entry.column for entry in catalogue.ENTRIES
        if SECRET_WORDS.search(entry.column.split(".")[1]) and not entry.secret
        and entry.storage != catalogue.BLIND_INDEX and entry.column not in NOT_SECRET)
    assert not undeclared, f"declare these secret=True in shared/catalogue.py: {undeclared}"


def test_every_secret_says_how_to_remove_it_and_since_when_if_it_can():
    for entry in catalogue.ENTRIES:
        if not entry.secret:
            continue
        assert entry.removal, entry.column
        table = entry.column.split(".")[0]
        if entry.since is not None:
            assert f"{table}.{entry.since}" in all_columns(), entry.column


def test_who_can_see_it_never_names_more_than_the_staff_area_allows():
    """"My data" tells clients who can see each item; the words come from shared/policy.py.
    These checks do not read the policy, so it cannot grant too much unnoticed: case notes,
    documents and health details are for caseworkers only, security data for nobody on
    staff, the access log never for reception."""
    staff_roles = {"admin", "caseworker", "reception"}
    for entry in catalogue.ENTRIES:
        seen = set(entry.visible_to)
        assert seen <= staff_roles | {"client"}, entry.column
        if entry.category in (catalogue.DOCUMENTS, catalogue.NOTES) or entry.column in (
                "clients.allergies", "clients.medical_notes"):
            assert seen - {"client"} == {"caseworker"}, entry.column
        if entry.category == catalogue.SECURITY:
            assert not seen & staff_roles, entry.column
        if entry.category == catalogue.ACCESS_LOG:
            assert "reception" not in seen, entry.column
    # Positive control: everyday contact data is seen by every staff role.
    assert set(catalogue.BY_COLUMN["clients.phone"].visible_to) == staff_roles | {"client"}
