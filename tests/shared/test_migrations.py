"""The Alembic migrations build exactly the schema the models describe, up and down, and
carry the stored data along."""

import hashlib
import importlib.util
import os
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from shared import crypto
from shared.app import create_app
from shared.cli import MIGRATIONS_DIR, alembic_config, upgrade_database
from shared.extensions import db
from shared.models import (
    Account,
    Base,
    Booking,
    BreakGlassGrant,
    Client,
    Consent,
    ConsentTemplate,
    CorrectionRequest,
    DataKey,
    Document,
    EmergencyContact,
    Note,
    PasskeyCredential,
    Service,
    StaffMember,
)
from shared.models.base import OWNER_ATTRIBUTE, encrypted_fields
from tests.conftest import make_config, store_in_field_format_1

BEFORE_OWNER_BINDING = "8a3f2c1e9d40"
OWNER_BINDING = "8d77192e1721"


def test_migrated_schema_equals_the_models(fresh_database_url, tmp_path):
    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        db.engine.dispose()
    assert diff == []


def test_downgrade_to_nothing_and_up_again(fresh_database_url, tmp_path):
    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database()
        command.downgrade(alembic_config(), "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade_database()
        assert "accounts" in inspect(db.engine).get_table_names()
        db.engine.dispose()


# -- 0009: every stored value bound to its owner ------------------------------------------
def load_migration(filename: str):
    spec = importlib.util.spec_from_file_location(filename[:-3],
                                                  MIGRATIONS_DIR / "versions" / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_later_columns() -> list[tuple[str, str]]:
    """Let today's models write and read rows in an older schema: the (nullable) columns
    that later revisions add exist for the moment. ``drop_later_columns`` removes them
    again before the test migrates."""
    inspector = inspect(db.engine)
    added = []
    for table in Base.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                assert column.nullable, f"{table.name}.{column.name}"
                kind = column.type.compile(dialect=db.engine.dialect)
                db.session.execute(text(
                    f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
                added.append((table.name, column.name))
    db.session.commit()
    return added


def drop_later_columns(added: list[tuple[str, str]]) -> None:
    db.session.rollback()
    for table, column in added:
        db.session.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    db.session.commit()
    db.session.expire_all()


def one_of_everything(notes: int) -> list:
    """A row of every model with encrypted fields, every field filled (at revision 0008)."""
    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    key, staff_key = DataKey.generate(), DataKey.generate()
    account = Account(kind="client", data_key=key, locale="de")
    account.email = "alt@example.org"
    account.totp_secret = "JBSWY3DPEHPK3PXP"
    account.totp_pending_secret = "KRSXG5CTMVRXEZLU"
    client = Client(data_key=key, account=account)
    client.full_name, client.birth_date = "Alma Altbestand", date(1990, 5, 17)
    client.allergies, client.medical_notes = "Nuesse", "Asthma"
    client.group_name, client.phone = "Gruppe Rot", "+4930123456"
    staff_account = Account(kind="staff", data_key=staff_key, locale="de")
    staff_account.email = "team@example.org"
    member = StaffMember(account=staff_account, data_key=staff_key, role="caseworker")
    member.name = "Sina Sozial"
    service = Service(name="Beratung", duration_minutes=45)
    db.session.add_all([key, staff_key, account, client, staff_account, member, service])
    db.session.flush()
    passkey = PasskeyCredential(account_id=account.id, data_key=key, credential_id=b"cred",
                                public_key=b"pk")
    passkey.name = "Mein Handy"
    booking = Booking(client_id=client.id, data_key=key, service_id=service.id,
                      staff_member_id=member.id, start_at=at, end_at=at + timedelta(hours=1))
    booking.note, booking.staff_message = "Mit Dolmetscherin", "Bitte Ausweis mitbringen"
    document = Document(client_id=client.id, data_key=key, category="other",
                        content_type="application/pdf", size=3_000_000)
    document.filename = "Hilfeplan.pdf"
    document.content = b"%PDF-1.4\n" + os.urandom(3_000_000)  # one large value
    grant = BreakGlassGrant(client_id=client.id, data_key=key, staff_member_id=member.id)
    grant.reason = "Vertretung, Kollegin krank"
    request = CorrectionRequest(client_id=client.id, data_key=key, about="other")
    request.message, request.reply = "Falsches Datum", "Korrigiert"
    contact = EmergencyContact(client_id=client.id, data_key=key)
    contact.name, contact.phone = "Oma Alt", "+4930654321"
    template = ConsentTemplate(key="fotos", version=1, texts={"de": {"title": "F", "text": "T"}},
                               purpose="Fotos", legal_basis="Art. 6", status="published")
    db.session.add(template)
    db.session.flush()
    consent = Consent(template_id=template.id, subject_id=client.id, data_key=key,
                      method="passkey", locale="de", document_hash=hashlib.sha256(b"d").digest())
    consent.document, consent.evidence = b'{"d":1}', {"method": "passkey", "text": {"t": 1}}
    consent.receipt, consent.withdrawal_receipt = b"%PDF receipt", b"%PDF withdrawal"
    rows = [account, client, staff_account, member, passkey, booking, document, grant, request,
            contact, consent]
    for index in range(notes):  # several batches
        note = Note(client_id=client.id, data_key=key)
        note.body = f"Aktennotiz {index}"
        rows.append(note)
    db.session.add_all(rows)
    db.session.commit()
    return rows


def stored_values(rows) -> dict:
    """Every encrypted value of the rows, read through the models as the app reads them."""
    db.session.expire_all()
    values = {}
    for row in rows:
        fresh = db.session.get(type(row), row.id)
        for name in encrypted_fields(type(row)):
            values[(type(row).__name__, row.id, name)] = getattr(fresh, name)
    return values


def stored_blobs(rows) -> list[bytes]:
    db.session.expire_all()
    return [blob for row in rows for field in encrypted_fields(type(row)).values()
            if (blob := getattr(db.session.get(type(row), row.id), field.attr)) is not None]


def test_the_owner_binding_migration_covers_every_encrypted_column(fresh_database_url,
                                                                    tmp_path):
    migration = load_migration("0009_field_owner_binding.py")
    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database(BEFORE_OWNER_BINDING)
        schema = inspect(db.engine)
        existing = {table: {c["name"] for c in schema.get_columns(table)}
                    for table in schema.get_table_names()}
        db.engine.dispose()
    for mapper in Base.registry.mappers:
        model = mapper.class_
        table = model.__tablename__
        for name in encrypted_fields(model):
            if name not in existing.get(table, ()):
                continue  # added later: written in the new format from the start
            owner, columns = migration.ENCRYPTED[table]
            assert owner == getattr(model, OWNER_ATTRIBUTE), table
            assert name in columns, f"{table}.{name} is not converted by migration 0009"


def test_existing_values_are_bound_to_their_owner_and_back(fresh_database_url, tmp_path):
    migration = load_migration("0009_field_owner_binding.py")
    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database(BEFORE_OWNER_BINDING)
        later = add_later_columns()
        rows = one_of_everything(notes=2 * migration.BATCH_ROWS + 1)
        expected = stored_values(rows)
        assert expected[("Document", rows[6].id, "content")].startswith(b"%PDF")
        for row in rows:  # as the code before this change wrote them
            store_in_field_format_1(db.session.get(type(row), row.id))
        db.session.commit()
        assert {blob[0] for blob in stored_blobs(rows)} == {1}
        with pytest.raises(crypto.DecryptionFailed):  # the new code refuses the old format
            _ = db.session.get(Note, rows[-1].id).body
        db.session.rollback()
        drop_later_columns(later)

        command.upgrade(alembic_config(), "head")
        assert {blob[0] for blob in stored_blobs(rows)} == {2}
        assert stored_values(rows) == expected
        # The converted values are bound to their owner now: a moved note does not read.
        note = db.session.get(Note, rows[-1].id)
        note.client_id = uuid.uuid4()
        with pytest.raises(crypto.DecryptionFailed):
            _ = note.body
        db.session.rollback()

        command.downgrade(alembic_config(), BEFORE_OWNER_BINDING)
        later = add_later_columns()
        assert {blob[0] for blob in stored_blobs(rows)} == {1}
        note = db.session.get(Note, rows[-1].id)
        assert crypto.decrypt_field(
            data_key=note.data_key.plaintext(), data_key_id=note.data_key_id,
            blob=note.body_ciphertext, aad=crypto.legacy_field_aad("notes", "body", note.id),
            version=crypto.LEGACY_FIELD_FORMAT_VERSION).decode() == expected[
                ("Note", note.id, "body")]
        drop_later_columns(later)

        command.upgrade(alembic_config(), "head")
        assert stored_values(rows) == expected
        # Values already in the new format are left alone (a backup restored from before
        # the migration, written by code after it).
        db.session.rollback()  # PostgreSQL: the ALTER TABLE waits for every reader
        command.downgrade(alembic_config(), OWNER_BINDING)
        command.stamp(alembic_config(), BEFORE_OWNER_BINDING)
        command.upgrade(alembic_config(), "head")
        assert stored_values(rows) == expected
        db.session.remove()
        db.engine.dispose()


def test_a_value_that_does_not_decrypt_is_left_as_it_was(fresh_database_url, tmp_path):
    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database(BEFORE_OWNER_BINDING)
        later = add_later_columns()
        rows = one_of_everything(notes=2)
        for row in rows:
            store_in_field_format_1(db.session.get(type(row), row.id))
        broken = db.session.get(Note, rows[-1].id)
        blob = bytearray(broken.body_ciphertext)
        blob[-1] ^= 1
        broken.body_ciphertext = bytes(blob)
        db.session.commit()
        drop_later_columns(later)
        command.upgrade(alembic_config(), "head")
        db.session.expire_all()
        assert db.session.get(Note, rows[-1].id).body_ciphertext == bytes(blob)
        assert db.session.get(Note, rows[-2].id).body == "Aktennotiz 0"
        assert db.session.get(Consent, rows[10].id).evidence["method"] == "passkey"
        db.session.remove()
        db.engine.dispose()



# -- 0010: the invitation is recorded on the young person -----------------------------------
def test_accounts_invited_before_0010_keep_their_invitation_date(fresh_database_url,
                                                                 tmp_path):
    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database(OWNER_BINDING)
        later = add_later_columns()
        rows = {}
        for invited_by in ("guardian", None):
            key = DataKey.generate()
            account = Account(kind="client", data_key=key, locale="de", invited_by=invited_by,
                              created_at=datetime(2026, 11, 3, 8, 30, tzinfo=UTC))
            account.email = f"{invited_by or 'selbst'}@example.org"
            client = Client(data_key=key, account=account)
            db.session.add_all([key, account, client])
            rows[invited_by] = client
        db.session.commit()
        ids = {invited_by: client.id for invited_by, client in rows.items()}
        drop_later_columns(later)

        command.upgrade(alembic_config(), "head")
        db.session.expire_all()
        assert db.session.get(Client, ids["guardian"]).own_account_invited_at == datetime(
            2026, 11, 3, 8, 30, tzinfo=UTC)
        assert db.session.get(Client, ids[None]).own_account_invited_at is None
        db.session.rollback()  # PostgreSQL: the ALTER TABLE waits for every reader
        command.downgrade(alembic_config(), OWNER_BINDING)
        assert "own_account_invited_at" not in {
            column["name"] for column in inspect(db.engine).get_columns("clients")}
        db.session.remove()
        db.engine.dispose()


# -- 0030: messages numbered in the order they were committed -----------------------------
BEFORE_MESSAGE_SEQUENCE = "9a4c2e7b5d13"


def test_existing_messages_are_numbered_in_the_order_their_pages_showed(fresh_database_url,
                                                                        tmp_path):
    import sqlalchemy as sa

    app = create_app(make_config(tmp_path, fresh_database_url()))
    with app.app_context():
        upgrade_database(BEFORE_MESSAGE_SEQUENCE)
        at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
        key_id, client_id = uuid.uuid4(), uuid.uuid4()
        threads = {name: uuid.uuid4() for name in ("busy", "other", "empty")}
        data_keys = sa.table("data_keys", sa.column("id", sa.Uuid()),
                             sa.column("kek_id", sa.String()),
                             sa.column("wrapped_key", sa.LargeBinary()),
                             sa.column("created_at", DataKey.__table__.c.created_at.type))
        clients = sa.table("clients", sa.column("id", sa.Uuid()),
                           sa.column("data_key_id", sa.Uuid()),
                           sa.column("created_at", Client.__table__.c.created_at.type),
                           sa.column("updated_at", Client.__table__.c.updated_at.type))
        stamp = Base.metadata.tables["messages"].c.created_at.type
        message_threads = sa.table(
            "message_threads", sa.column("id", sa.Uuid()), sa.column("client_id", sa.Uuid()),
            sa.column("data_key_id", sa.Uuid()), sa.column("topic", sa.LargeBinary()),
            sa.column("confidential_from_guardians", sa.Boolean()),
            sa.column("created_at", stamp), sa.column("last_message_at", stamp))
        messages = sa.table(
            "messages", sa.column("id", sa.Uuid()), sa.column("thread_id", sa.Uuid()),
            sa.column("client_id", sa.Uuid()), sa.column("data_key_id", sa.Uuid()),
            sa.column("from_staff", sa.Boolean()), sa.column("body", sa.LargeBinary()),
            sa.column("created_at", stamp),
            sa.column("confidential_from_guardians", sa.Boolean()))
        with db.engine.begin() as conn:
            conn.execute(data_keys.insert().values(id=key_id, kek_id="k1", wrapped_key=b"w",
                                                   created_at=at))
            conn.execute(clients.insert().values(id=client_id, data_key_id=key_id,
                                                 created_at=at, updated_at=at))
            for thread_id in threads.values():
                conn.execute(message_threads.insert().values(
                    id=thread_id, client_id=client_id, data_key_id=key_id, topic=b"t",
                    confidential_from_guardians=False, created_at=at, last_message_at=at))
            # Two messages of the same moment: the page showed them by id.
            same = sorted([uuid.uuid4(), uuid.uuid4()])
            busy = [(uuid.uuid4(), at + timedelta(minutes=5)), (same[1], at),
                    (uuid.uuid4(), at - timedelta(minutes=5)), (same[0], at)]
            other = [(uuid.uuid4(), at + timedelta(days=1))]
            for thread, rows in ((threads["busy"], busy), (threads["other"], other)):
                for message_id, created_at in rows:
                    conn.execute(messages.insert().values(
                        id=message_id, thread_id=thread, client_id=client_id,
                        data_key_id=key_id, from_staff=False, body=b"b",
                        created_at=created_at, confidential_from_guardians=False))

        command.upgrade(alembic_config(), "head")
        with db.engine.connect() as conn:
            numbered = dict(conn.execute(sa.select(
                sa.column("id", sa.Uuid()), sa.column("seq", sa.Integer()))
                .select_from(sa.table("messages"))).all())
            last = dict(conn.execute(sa.select(
                sa.column("id", sa.Uuid()), sa.column("last_seq", sa.Integer()))
                .select_from(sa.table("message_threads"))).all())
        in_order = [busy[2][0], same[0], same[1], busy[0][0]]
        assert [numbered[message_id] for message_id in in_order] == [1, 2, 3, 4]
        assert numbered[other[0][0]] == 1
        assert last == {threads["busy"]: 4, threads["other"]: 1, threads["empty"]: 0}

        command.downgrade(alembic_config(), BEFORE_MESSAGE_SEQUENCE)
        inspector = inspect(db.engine)
        assert "seq" not in {column["name"] for column in inspector.get_columns("messages")}
        assert "last_seq" not in {column["name"]
                                  for column in inspector.get_columns("message_threads")}
        assert "ix_clients_anonymous_at" not in {
            index["name"] for index in inspector.get_indexes("clients")}
        with db.engine.connect() as conn:  # nothing else went
            assert conn.scalar(text("SELECT count(*) FROM messages")) == 5
        db.engine.dispose()
