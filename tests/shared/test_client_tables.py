"""Erasure and the export are generated from the catalogue's declaration of which tables hold
client data: a table added with a client column stops both until it is declared, and once
declared its rows are erased and exported like every other table's."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from shared import catalogue
from shared.extensions import db
from shared.models import Base, Client
from shared.models.base import utcnow
from shared.services import client_tables, erasure, export
from shared.services.client_tables import UndeclaredClientData
from tests.conftest import add_booking, submit

TABLE = "throwaway_hobbies"


@pytest.fixture
def hobbies(app):
    """A model added for this test only, on the project's Base, with a client column and
    no cascade (its rows go only if erasure deletes them); removed again afterwards from
    the database, the metadata and the registry."""
    tables_before, mappers_before = set(Base.metadata.tables), set(Base.registry.mappers)

    class Hobby(Base):
        __tablename__ = TABLE

        id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
        client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
        hobby: Mapped[str] = mapped_column(String(60))

    table = Hobby.__table__
    with app.app_context():
        table.create(db.engine)
    yield Hobby
    with app.app_context():
        db.session.remove()
        table.drop(db.engine)
    manager = Hobby._sa_class_manager
    Base.registry._dispose_manager_and_mapper(manager)
    del Base.registry._managers[manager]
    Base.metadata.remove(table)
    assert set(Base.metadata.tables) == tables_before
    assert set(Base.registry.mappers) == mappers_before


def declare_reference(monkeypatch) -> None:
    monkeypatch.setitem(catalogue.CLIENT_REFERENCES, f"{TABLE}.client_id", catalogue.ERASE)


def declare_columns(monkeypatch) -> None:
    entry = catalogue.Entry(
        f"{TABLE}.hobby", catalogue.HOUSEHOLD, "Hobby", "Zum Testen", "Art. 6(1)(a) DSGVO",
        "Mit dem Konto gelöscht", None, catalogue.CLIENT_ROLES, "Von Ihnen", catalogue.PLAIN)
    monkeypatch.setattr(catalogue, "ENTRIES", (*catalogue.ENTRIES, entry))
    monkeypatch.setitem(catalogue.BY_COLUMN, entry.column, entry)
    monkeypatch.setattr(catalogue, "TECHNICAL",
                        catalogue.TECHNICAL | {f"{TABLE}.id", f"{TABLE}.client_id"})


@pytest.fixture
def with_hobbies(app, hobbies, make_client, make_bookable):
    """A client with an appointment that took place (erasure keeps it, so the client row
    stays) and a hobby, and another client with a hobby of their own."""
    bookable = make_bookable()
    person, other = make_client(), make_client()
    with app.app_context():
        own = db.session.scalar(select(Client).where(Client.account_id == person.account_id))
        add_booking(own, bookable, end=utcnow().replace(microsecond=0) - timedelta(days=10))
        theirs = db.session.scalar(select(Client.id).where(Client.account_id ==
                                                           other.account_id))
        db.session.add_all([hobbies(client_id=own.id, hobby="Kanarien-Hobby-5e1f"),
                            hobbies(client_id=theirs, hobby="Fremdes-Hobby-77c2")])
        db.session.commit()
        return person, own.id


def hobbies_left(app, hobbies) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(hobbies.hobby)))


def test_a_new_table_with_a_client_column_stops_erasure_and_export_until_declared(
        app, client, auth, monkeypatch, hobbies, with_hobbies):
    person, own = with_hobbies

    def export_and_erasure_refused(naming: str) -> None:
        with app.app_context():
            account = db.session.get(Client, own).account
            with pytest.raises(UndeclaredClientData) as refused:
                export.build_data(account)
            assert naming in str(refused.value)
            with pytest.raises(UndeclaredClientData):
                erasure.delete_account(account)
            db.session.rollback()
            # Nothing was journalled or erased on the way.
            assert db.session.get(Client, own).restricted_at is None

    export_and_erasure_refused(f"{TABLE}.client_id")
    # Declaring the reference alone is not enough: its columns must be in the catalogue
    # too, or the export would leave them out.
    declare_reference(monkeypatch)
    export_and_erasure_refused(f"{TABLE}.hobby")
    assert not app.extensions["einblick"].config.erasure_journal_path.exists()
    assert hobbies_left(app, hobbies) == ["Fremdes-Hobby-77c2", "Kanarien-Hobby-5e1f"]

    declare_columns(monkeypatch)
    auth.login(person)
    archive = zipfile.ZipFile(io.BytesIO(submit(client, "/my-data/export", {}).data))
    data = json.loads(archive.read("data.json"))
    household = next(s for s in data["subjects"] if s["is_self"])["categories"]["household"]
    assert [item["values"] for item in household if item["column"] == f"{TABLE}.hobby"] == [
        ["Kanarien-Hobby-5e1f"]]
    assert "Fremdes-Hobby" not in json.dumps(data)

    assert submit(client, "/my-data/delete", {"understood": "yes"}).status_code == 302
    with app.app_context():
        assert db.session.get(Client, own).restricted_at is not None  # kept: the appointment
    assert hobbies_left(app, hobbies) == ["Fremdes-Hobby-77c2"]


def test_a_declared_table_goes_with_a_client_who_is_shredded(app, monkeypatch, hobbies,
                                                              make_client):
    declare_reference(monkeypatch)
    declare_columns(monkeypatch)
    person = make_client()
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
        db.session.add(hobbies(client_id=own, hobby="Kanarien-Hobby-90aa"))
        db.session.commit()
        erasure.journal_append([own], at=utcnow())
        assert erasure.erase_client(own, at=utcnow()) == "shredded"
        db.session.commit()
        assert db.session.get(Client, own) is None
    assert hobbies_left(app, hobbies) == []


def test_the_declaration_covers_todays_tables():
    """A positive control: the real models pass, and every table erasure and "my data" used
    to list by hand is declared with the same treatment."""
    client_tables.check()
    declared = {ref.name: ref.action for ref in client_tables.references()}
    assert {name for name, action in declared.items() if action == catalogue.KEEP} == {
        "bookings.client_id", "documents.client_id", "notes.client_id", "consents.subject_id"}
    assert {name for name, action in declared.items() if action == catalogue.DETACH} == {
        "clients.account_id", "bookings.booked_by_account_id", "consents.signer_account_id",
        "message_threads.started_by_account_id", "messages.author_account_id"}
    assert declared["access_events.client_id"] == catalogue.KEEP_WITH_FILE
    assert declared["messages.client_id"] == catalogue.ERASE  # no duty keeps messages
    assert declared["emergency_contacts.client_id"] == catalogue.ERASE
    assert declared["user_sessions.account_id"] == catalogue.ERASE


@pytest.mark.parametrize("forgotten", [
    "emergency_contacts.client_id",  # a foreign key to clients
    "access_events.client_id",  # no foreign key, on purpose: found by its name
    "consents.signer_account_id",  # a foreign key to accounts
])
def test_forgetting_a_real_reference_stops_erasure_and_export(app, make_client, monkeypatch,
                                                             forgotten):
    person = make_client()
    monkeypatch.delitem(catalogue.CLIENT_REFERENCES, forgotten)
    with app.app_context():
        account = db.session.get(Client, db.session.scalar(
            select(Client.id).where(Client.account_id == person.account_id))).account
        with pytest.raises(UndeclaredClientData) as refused:
            export.build_data(account)
        assert forgotten in refused.value.problems[0]
        with pytest.raises(UndeclaredClientData):
            erasure.delete_account(account)


def test_a_kept_table_needs_its_duty_and_personal_tables_need_an_owner(monkeypatch):
    monkeypatch.delitem(erasure.DUTIES, "notes")
    with pytest.raises(UndeclaredClientData, match="notes.client_id"):
        erasure.kept_references()
    monkeypatch.undo()
    monkeypatch.setattr(catalogue, "STAFF_TABLES", frozenset({"staff_members"}))
    with pytest.raises(UndeclaredClientData, match="availability_exceptions"):
        client_tables.check()
