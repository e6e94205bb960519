"""Field encryption, data keys, blind indexes, key rotation and start-up key checks."""

import json
import os
import stat

import pytest
from sqlalchemy import select, text

from shared import crypto
from shared.app import create_app
from shared.extensions import db
from shared.models import Account, Client, DataKey
from tests.conftest import make_config


def test_field_round_trip_and_place_binding():
    key, key_id = crypto.generate_key(), __import__("uuid").uuid4()
    aad = crypto.field_aad("accounts", "email", key_id)
    blob = crypto.encrypt_field(data_key=key, data_key_id=key_id, plaintext=b"x@y.z", aad=aad)
    assert crypto.decrypt_field(data_key=key, data_key_id=key_id, blob=blob, aad=aad) == b"x@y.z"
    # Same plaintext twice gives different ciphertexts (random nonce).
    again = crypto.encrypt_field(data_key=key, data_key_id=key_id, plaintext=b"x@y.z", aad=aad)
    assert again != blob
    other_place = crypto.field_aad("clients", "full_name", key_id)
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt_field(data_key=key, data_key_id=key_id, blob=blob, aad=other_place)


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
    result = file_app.test_cli_runner().invoke(args=["keys", "rotate"])
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
