"""Field encryption, data keys, blind indexes, key rotation and start-up key checks."""

import json
import os
import stat
import uuid

import pytest
from sqlalchemy import select, text

from shared import crypto
from shared.app import create_app
from shared.extensions import db
from shared.models import Account, Base, Client, DataKey, Document, Note
from shared.models.base import OWNER_ATTRIBUTE, encrypted, encrypted_fields
from tests.conftest import make_config


def test_field_round_trip_and_place_binding():
    key, key_id = crypto.generate_key(), uuid.uuid4()
    owner, row = uuid.uuid4(), uuid.uuid4()
    aad = crypto.field_aad("notes", "body", owner_id=owner, row_id=row)
    blob = crypto.encrypt_field(data_key=key, data_key_id=key_id, plaintext=b"x@y.z", aad=aad)
    assert blob[0] == crypto.FIELD_FORMAT_VERSION == 2
    assert crypto.decrypt_field(data_key=key, data_key_id=key_id, blob=blob, aad=aad) == b"x@y.z"
    # Same plaintext twice gives different ciphertexts (random nonce).
    again = crypto.encrypt_field(data_key=key, data_key_id=key_id, plaintext=b"x@y.z", aad=aad)
    assert again != blob
    for other_place in (crypto.field_aad("clients", "full_name", owner_id=owner, row_id=row),
                        crypto.field_aad("notes", "body", owner_id=uuid.uuid4(), row_id=row),
                        crypto.field_aad("notes", "body", owner_id=owner, row_id=uuid.uuid4())):
        with pytest.raises(crypto.DecryptionFailed):
            crypto.decrypt_field(data_key=key, data_key_id=key_id, blob=blob, aad=other_place)


def test_the_old_field_format_is_refused_outside_the_migration():
    key, key_id, row = crypto.generate_key(), uuid.uuid4(), uuid.uuid4()
    old = crypto.encrypt_field(data_key=key, data_key_id=key_id, plaintext=b"alt",
                               aad=crypto.legacy_field_aad("notes", "body", row),
                               version=crypto.LEGACY_FIELD_FORMAT_VERSION)
    assert old[0] == 1
    with pytest.raises(crypto.DecryptionFailed, match="format 1"):
        crypto.decrypt_field(data_key=key, data_key_id=key_id, blob=old,
                             aad=crypto.legacy_field_aad("notes", "body", row))
    assert crypto.decrypt_field(data_key=key, data_key_id=key_id, blob=old,
                                aad=crypto.legacy_field_aad("notes", "body", row),
                                version=crypto.LEGACY_FIELD_FORMAT_VERSION) == b"alt"
    # Relabelling a new value as the old format does not get around the owner binding.
    new = crypto.encrypt_field(data_key=key, data_key_id=key_id, plaintext=b"neu",
                               aad=crypto.field_aad("notes", "body", owner_id=uuid.uuid4(),
                                                    row_id=row))
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt_field(data_key=key, data_key_id=key_id, blob=bytes([1]) + new[1:],
                             aad=crypto.legacy_field_aad("notes", "body", row),
                             version=crypto.LEGACY_FIELD_FORMAT_VERSION)


def test_keyring_repr_shows_no_key_material():
    keyring = crypto.Keyring({"k1": b"\x07" * 32}, "k1", b"\x08" * 32)
    assert "\\x07" not in repr(keyring)
    assert "BwcH" not in repr(keyring)


def _stored_email(account_id):
    return db.session.execute(
        text("SELECT email FROM accounts WHERE id = :id"), {"id": account_id.hex
                                                             if db.engine.dialect.name == "sqlite"
                                                             else account_id}
    ).scalar_one()


def test_tampered_ciphertext_fails(app_ctx, make_client):
    person = make_client(email="tamper@example.org")
    account = db.session.get(Account, person.account_id)
    blob = bytearray(account.email_ciphertext)
    blob[-5] ^= 0x01
    account.email_ciphertext = bytes(blob)
    db.session.commit()
    db.session.expire_all()
    with pytest.raises(crypto.DecryptionFailed):
        _ = db.session.get(Account, person.account_id).email


def test_ciphertext_copied_to_another_row_or_column_fails(app_ctx, make_client):
    first = make_client(email="first@example.org", full_name="First Person")
    second = make_client(email="second@example.org")
    a1 = db.session.get(Account, first.account_id)
    a2 = db.session.get(Account, second.account_id)
    a2.email_ciphertext = a1.email_ciphertext  # another row (and another data key)
    c1 = db.session.scalar(select(Client).where(Client.account_id == a1.id))
    c1.full_name_ciphertext = a1.email_ciphertext  # another column, same row owner
    db.session.commit()
    db.session.expire_all()
    with pytest.raises(crypto.DecryptionFailed):
        _ = db.session.get(Account, second.account_id).email
    with pytest.raises(crypto.DecryptionFailed):
        _ = db.session.scalar(select(Client).where(Client.account_id == a1.id)).full_name


def test_same_data_key_other_row_fails(app_ctx, make_client):
    """Even under the same data key, the row id in the associated data binds the value."""
    person = make_client(full_name="Row Bound")
    client = db.session.scalar(select(Client))
    account = db.session.get(Account, person.account_id)
    assert client.data_key_id == account.data_key_id
    client.full_name_ciphertext = account.email_ciphertext
    db.session.commit()
    db.session.expire_all()
    with pytest.raises(crypto.DecryptionFailed):
        _ = db.session.scalar(select(Client)).full_name


# -- every value is bound to the client (or account) it belongs to -------------------------
def _client_of(person) -> Client:
    return db.session.scalar(select(Client).where(Client.account_id == person.account_id))


def _note(client: Client, body: str) -> Note:
    note = Note(client_id=client.id, data_key=client.data_key)
    note.body = body
    db.session.add(note)
    return note


def _document(client: Client, name: str, content: bytes) -> Document:
    document = Document(client_id=client.id, data_key=client.data_key, category="other",
                        content_type="application/pdf", size=len(content))
    document.filename = name
    document.content = content
    db.session.add(document)
    return document


def _fresh(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def test_swapping_two_notes_of_one_client_fails(app_ctx, make_client):
    """Same client, same data key: the row id still binds each note."""
    client = _client_of(make_client(full_name="Nora Notiz"))
    first, second = _note(client, "Erstgespraech"), _note(client, "Hausbesuch")
    db.session.commit()
    first.body_ciphertext, second.body_ciphertext = second.body_ciphertext, first.body_ciphertext
    db.session.commit()
    for note_id in (first.id, second.id):
        with pytest.raises(crypto.DecryptionFailed):
            _ = _fresh(Note, note_id).body


@pytest.mark.parametrize("with_key", [False, True], ids=["client-only", "client-and-key"])
def test_moving_a_note_to_another_client_fails(app_ctx, make_client, with_key):
    """Changing a note's client (and perhaps its data key) in the database does not put it
    into another client's file: it no longer decrypts there."""
    owner = _client_of(make_client(full_name="Anna Eigentuemerin"))
    other = _client_of(make_client(full_name="Otto Anderer"))
    note = _note(owner, "Vertrauliche Notiz ueber Anna")
    db.session.commit()
    note.client_id = other.id
    if with_key:
        note.data_key_id = other.data_key_id
    db.session.commit()
    with pytest.raises(crypto.DecryptionFailed):
        _ = _fresh(Note, note.id).body
    moved_back = _fresh(Note, note.id)  # control: in its own place it still reads
    moved_back.client_id, moved_back.data_key_id = owner.id, owner.data_key_id
    db.session.commit()
    assert _fresh(Note, note.id).body == "Vertrauliche Notiz ueber Anna"


@pytest.mark.parametrize("with_key", [False, True], ids=["client-only", "client-and-key"])
def test_moving_a_document_to_another_client_fails(app_ctx, make_client, with_key):
    owner = _client_of(make_client(full_name="Anna Eigentuemerin"))
    other = _client_of(make_client(full_name="Otto Anderer"))
    document = _document(owner, "Hilfeplan.pdf", b"%PDF-1.4 Hilfeplan")
    db.session.commit()
    document.client_id = other.id
    if with_key:
        document.data_key_id = other.data_key_id
    db.session.commit()
    moved = _fresh(Document, document.id)
    with pytest.raises(crypto.DecryptionFailed):
        _ = moved.filename
    with pytest.raises(crypto.DecryptionFailed):
        _ = moved.content


def test_a_documents_content_copied_into_another_clients_document_fails(app_ctx, make_client):
    owner = _client_of(make_client(full_name="Anna Eigentuemerin"))
    other = _client_of(make_client(full_name="Otto Anderer"))
    source = _document(owner, "Gutachten.pdf", b"%PDF-1.4 Gutachten")
    target = _document(other, "Leer.pdf", b"%PDF-1.4 leer")
    db.session.commit()
    target.content_ciphertext = source.content_ciphertext
    target.data_key_id = owner.data_key_id
    db.session.commit()
    with pytest.raises(crypto.DecryptionFailed):
        _ = _fresh(Document, target.id).content


def test_every_model_with_an_encrypted_field_names_its_owner():
    checked = 0
    for mapper in Base.registry.mappers:
        model = mapper.class_
        if not encrypted_fields(model):
            continue
        owner = getattr(model, OWNER_ATTRIBUTE, None)
        assert owner in model.__table__.columns, f"{model.__name__}: {owner!r} is no column"
        column = model.__table__.columns[owner]
        assert not column.nullable, f"{model.__name__}.{owner} may be empty"
        assert owner == "id" or column.foreign_keys, f"{model.__name__}.{owner} names nobody"
        checked += 1
    assert checked >= 10


def test_a_model_without_an_owner_cannot_be_defined():
    # Python 3.11 wraps the TypeError in a RuntimeError; 3.12 raises it as it is.
    with pytest.raises((TypeError, RuntimeError)) as raised:
        class Forgetful:
            secret = encrypted()
    assert "__encryption_owner__" in str(raised.value.__cause__ or raised.value)


def test_an_encrypted_field_set_before_its_owner_is_refused(app_ctx, make_client):
    from shared.models.base import EncryptionOwnerMissing

    client = _client_of(make_client())
    note = Note(data_key=client.data_key)
    with pytest.raises(EncryptionOwnerMissing, match="client_id"):
        note.body = "zu frueh"


def test_each_client_has_its_own_wrapped_data_key(app_ctx, make_client):
    make_client()
    make_client()
    keys = db.session.scalars(select(DataKey)).all()
    assert len(keys) == 2
    assert keys[0].plaintext() != keys[1].plaintext()
    assert all(k.plaintext() not in k.wrapped_key for k in keys)


def test_blind_index_finds_email_case_insensitively(app_ctx, make_client):
    from shared.services.accounts import find_account

    person = make_client(email="Case.Mixed@example.org")
    assert find_account(email="case.mixed@EXAMPLE.org", kind="client").id == person.account_id
    assert find_account(email="other@example.org", kind="client") is None


def test_keys_rotate_with_environment_keys_rewraps_every_data_key(app, runner, make_client,
                                                                  database_url, tmp_path):
    person = make_client(email="rotate@example.org", full_name="Rosa Rotation")
    new_keys = "test2:" + crypto.b64encode(b"\x03" * 32) + "," + app.extensions[
        "einblick"].config.master_keys
    rotated = create_app(make_config(tmp_path / "i2", database_url, master_keys=new_keys))
    result = rotated.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Re-wrapped 1 of 1" in result.output
    # Only the new key is needed now.
    only_new = create_app(make_config(
        tmp_path / "i3", database_url, master_keys="test2:" + crypto.b64encode(b"\x03" * 32)))
    with only_new.app_context():
        account = db.session.get(Account, person.account_id)
        assert account.email == "rotate@example.org"
        assert account.data_key.kek_id == "test2"
        assert db.session.scalar(select(Client)).full_name == "Rosa Rotation"
        db.engine.dispose()
    with rotated.app_context():
        db.engine.dispose()


def test_keys_rotate_with_key_file_adds_a_key_and_retires_the_old(fresh_database_url,
                                                                 tmp_path):
    from shared.cli import upgrade_database

    database_url = fresh_database_url()
    instance = tmp_path / "file-keys"
    file_app = create_app(make_config(instance, database_url, master_keys=None, index_key=None,
                                      secret_key=None))
    with file_app.app_context():
        upgrade_database()
    key_file = instance / "keys.json"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    with file_app.app_context():
        from shared.services import accounts

        accounts.register_client(email="file@example.org", locale="de")
    old_id = json.loads(key_file.read_text())["active"]
    result = file_app.test_cli_runner().invoke(args=["keys", "rotate", "--retire"])
    assert result.exit_code == 0, result.output
    data = json.loads(key_file.read_text())
    assert data["active"] != old_id
    assert [k["id"] for k in data["master_keys"]] == [data["active"]]
    reopened = create_app(make_config(instance, database_url, master_keys=None, index_key=None,
                                      secret_key=None))
    with reopened.app_context():
        from shared.services.accounts import find_account

        assert find_account(email="file@example.org", kind="client").email == "file@example.org"
        db.engine.dispose()
    with file_app.app_context():
        db.engine.dispose()


def test_missing_key_file_with_existing_data_is_a_clear_start_up_error(database_url, tmp_path,
                                                                       make_client):
    make_client()  # data exists, wrapped under the test keys
    with pytest.raises(crypto.KeyConfigError, match="would make every record unreadable"):
        create_app(make_config(tmp_path / "empty", database_url, master_keys=None,
                               index_key=None, secret_key=None))
    assert not (tmp_path / "empty" / "keys.json").exists()


def test_wrong_master_key_is_a_clear_start_up_error(database_url, tmp_path, make_client):
    make_client()
    wrong = "test1:" + crypto.b64encode(b"\x09" * 32)
    with pytest.raises(crypto.KeyConfigError, match="wrong"):
        create_app(make_config(tmp_path / "w", database_url, master_keys=wrong))


def test_wrong_index_key_is_a_clear_start_up_error(database_url, tmp_path, make_client):
    make_client()
    with pytest.raises(crypto.KeyConfigError, match="index key"):
        create_app(make_config(tmp_path / "w", database_url,
                               index_key=crypto.b64encode(b"\x0a" * 32)))


def test_unknown_master_key_id_is_a_clear_start_up_error(database_url, tmp_path, make_client):
    make_client()
    other = "other:" + crypto.b64encode(b"\x01" * 32)
    with pytest.raises(crypto.KeyConfigError, match="not configured"):
        create_app(make_config(tmp_path / "w", database_url, master_keys=other))
