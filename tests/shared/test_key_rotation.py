"""Key rotation with running processes: two phases (rotate, retire), heartbeats, no restart.

Each app instance stands for one worker process: it has its own keyring in memory and
reports in the database which key it uses."""

import json
import threading
import time

import pytest
from sqlalchemy import select, text

from shared import crypto, key_rotation
from shared.app import create_app
from shared.extensions import db
from shared.models import Account, DataKey
from shared.models.keys import AppMeta
from tests.conftest import make_config, postgres_requested, submit

OLD = "test1:" + crypto.b64encode(b"\x01" * 32)  # the key the `app` fixture uses
NEW = "test2:" + crypto.b64encode(b"\x03" * 32)


def start(tmp_path, name, database_url, master_keys=None, **overrides):
    """Start another process (app instance) against the same database."""
    if master_keys is not None:
        overrides["master_keys"] = master_keys
    return create_app(make_config(tmp_path / name, database_url, **overrides))


def stop(*apps):
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def register(app, email):
    """Sign up through the portal; returns the new account's data key's KEK id."""
    client = app.test_client()
    assert submit(client, "/register", {"email": email}).status_code == 200
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.kind == "client").order_by(
            Account.created_at.desc()).limit(1))
        kek_id = account.data_key.kek_id
        assert account.email == email
        db.session.remove()
        return kek_id


def kek_ids_in_database(app):
    with app.app_context():
        ids = sorted(set(db.session.scalars(select(DataKey.kek_id))))
        db.session.remove()
        return ids


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["keys", *args])


def age_heartbeats(app, seconds):
    """Make every process report look `seconds` old (as if they stopped that long ago)."""
    with app.app_context():
        for row in db.session.scalars(
                select(AppMeta).where(AppMeta.key.startswith(key_rotation.PROCESS_PREFIX))):
            data = json.loads(row.value)
            data["seen"] -= seconds
            row.value = json.dumps(data).encode()
        db.session.commit()
        db.session.remove()


def test_a_process_started_before_a_rotation_wraps_new_data_keys_under_the_new_key(
        app, database_url, tmp_path):
    # Phase 0: every worker got the new key as a second key (a rolling restart).
    worker = start(tmp_path, "worker", database_url, OLD + "," + NEW)
    admin = start(tmp_path, "admin", database_url, OLD + "," + NEW)
    assert register(worker, "before@example.org") == "test1"  # still the primary

    result = cli(admin, "rotate")
    assert result.exit_code == 0, result.output
    assert "Key test2 is primary (generation 2)" in result.output
    assert "Re-wrapped 1 of 1 data keys" in result.output
    # The `app` fixture's process was started without the new key: it is named.
    assert "does not have key test2" in result.output

    # The worker has not read the primary again yet: its new data key is still wrapped
    # under the primary before its transaction commits.
    assert worker.extensions["einblick"].keyring.active_kek_id == "test1"
    assert register(worker, "during@example.org") == "test2"
    # Once its copy is old it switches, and reports so with its next request.
    worker.extensions[key_rotation.EXTENSION].expire()
    assert register(worker, "after@example.org") == "test2"
    assert worker.extensions["einblick"].keyring.active_kek_id == "test2"
    assert kek_ids_in_database(admin) == ["test2"]
    with admin.app_context():
        reports = {p.kek_id: p.generation for p in key_rotation.live_processes()
                   if p.holds == ("test1", "test2")}
        assert reports == {"test2": 2}
    stop(worker, admin)


def test_retire_is_refused_while_a_process_or_a_data_key_uses_the_old_key(
        app, database_url, tmp_path):
    worker = start(tmp_path, "worker", database_url, OLD + "," + NEW)
    admin = start(tmp_path, "admin", database_url, NEW + "," + OLD)
    assert register(worker, "rosa@example.org") == "test1"
    assert cli(admin, "rotate").exit_code == 0

    # The worker has not switched yet, and the `app` process never had the new key.
    refused = cli(admin, "retire")
    assert refused.exit_code == 1
    assert "Not retired" in refused.output
    assert "still uses key 'test1' (generation 1" in refused.output
    assert "does not have 'test2': add it to EINBLICK_MASTER_KEYS" in refused.output
    # A client who signs up at the lagging process gets a data key under the old key.
    assert register(app, "lagging@example.org") == "test1"

    worker.extensions[key_rotation.EXTENSION].expire()
    assert worker.test_client().get("/").status_code in (200, 302)  # reports generation 2
    status = cli(admin, "status").output
    assert "Primary key: test2 (generation 2)" in status
    assert "1 data keys under test1" in status
    assert "not switched yet" in status  # the `app` process

    # The lagging process stops (its report grows old); its data key still holds the key.
    age_heartbeats(admin, 10 * key_rotation.LIVE_SECONDS)
    worker.extensions[key_rotation.EXTENSION].expire()
    worker.test_client().get("/")
    refused = cli(admin, "retire")
    assert refused.exit_code == 1
    assert "1 data keys are still wrapped under 'test1': run `flask keys rewrap`" in (
        refused.output)
    assert "process" not in refused.output

    rewrap = cli(admin, "rewrap")
    assert rewrap.exit_code == 0
    assert "Re-wrapped 1 of 2 data keys" in rewrap.output
    retired = cli(admin, "retire")
    assert retired.exit_code == 0, retired.output
    assert "Retired keys: test1" in retired.output
    assert "Remove them from EINBLICK_MASTER_KEYS" in retired.output
    from tests.conftest import security_events

    assert security_events(admin, "keys.retired") == [("ok", None)]

    # Nothing decrypts with the retired key, not even in a process that had it in memory.
    worker.extensions[key_rotation.EXTENSION].expire()
    with worker.app_context():
        worker_keyring = key_rotation.fresh_keyring()
        assert sorted(worker_keyring.keks) == ["test2"]
        old_keyring = crypto.Keyring({"test1": b"\x01" * 32}, "test1", b"\x02" * 32)
        stolen = DataKey(id=DataKey.generate().id)
        stolen.kek_id, stolen.wrapped_key = old_keyring.wrap_data_key(
            b"\x05" * 32, data_key_id=stolen.id)
        with pytest.raises(crypto.KeyConfigError, match="was retired"):
            stolen.plaintext()
        db.session.rollback()
        assert db.session.scalar(
            select(Account).where(Account.kind == "client").limit(1)).email.endswith(
            "@example.org")
        db.session.remove()
    # A retired key cannot become primary again.
    back = start(tmp_path, "back", database_url, OLD + "," + NEW)
    result = cli(back, "rotate", "--to", "test1")
    assert result.exit_code == 1
    assert "was retired" in result.output
    stop(back)

    # The next start works, with the old key still in the environment or without it.
    for name, keys in (("next", NEW + "," + OLD), ("only-new", NEW)):
        nxt = start(tmp_path, name, database_url, keys)
        assert sorted(nxt.extensions["einblick"].keyring.keks) == ["test2"]
        assert register(nxt, f"{name}@example.org") == "test2"
        stop(nxt)
    with pytest.raises(crypto.KeyConfigError, match="retired"):
        start(tmp_path, "only-old", database_url, OLD)
    stop(worker, admin)


def test_key_file_rotation_reaches_a_running_process_and_retires_after_it_switched(
        fresh_database_url, tmp_path):
    from shared.cli import upgrade_database

    database_url = fresh_database_url()
    instance = tmp_path / "machine"
    no_env = {"master_keys": None, "index_key": None, "secret_key": None}
    first = create_app(make_config(instance, database_url, **no_env))
    with first.app_context():
        upgrade_database()
    # Two processes on the machine, started before the rotation, sharing instance/keys.json.
    worker = create_app(make_config(instance, database_url, **no_env))
    admin = create_app(make_config(instance, database_url, **no_env))
    old_id = json.loads((instance / "keys.json").read_text())["active"]
    assert register(worker, "file@example.org") == old_id

    result = cli(admin, "rotate", "--retire", "--wait", "0")
    assert result.exit_code == 1
    new_id = json.loads((instance / "keys.json").read_text())["active"]
    assert f"Key {new_id} is primary" in result.output
    assert f"still uses key '{old_id}'" in result.output
    assert len(json.loads((instance / "keys.json").read_text())["master_keys"]) == 2

    # Without a restart the worker reads the new key from the file and switches.
    for app in (worker, first):
        app.extensions[key_rotation.EXTENSION].expire()
        app.test_client().get("/")
    assert worker.extensions["einblick"].keyring.active_kek_id == new_id
    assert register(worker, "file2@example.org") == new_id
    retired = cli(admin, "retire")
    assert retired.exit_code == 0, retired.output
    assert f"Retired keys: {old_id}" in retired.output
    data = json.loads((instance / "keys.json").read_text())
    assert [k["id"] for k in data["master_keys"]] == [new_id]

    again = create_app(make_config(instance, database_url, **no_env))
    with again.app_context():
        from shared.services.accounts import find_account

        assert find_account(email="file@example.org", kind="client").email == "file@example.org"
        db.session.remove()
    stop(first, worker, admin, again)


def _someone_waits_for_a_lock(app) -> bool:
    with app.app_context(), db.engine.connect() as conn:
        return conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'")) > 0


@pytest.mark.skipif(not postgres_requested(),
                    reason="row locks are PostgreSQL's; on SQLite a writing transaction "
                           "runs alone anyway")
def test_a_rotation_waits_for_a_transaction_that_is_writing_a_data_key(
        app, database_url, tmp_path):
    worker = start(tmp_path, "worker", database_url, OLD + "," + NEW)
    admin = start(tmp_path, "admin", database_url, OLD + "," + NEW)
    switched = threading.Event()

    def rotate() -> None:
        with admin.app_context():
            key_rotation.make_primary("test2")
        switched.set()

    with worker.app_context():
        written = DataKey.generate()
        db.session.add(written)
        db.session.flush()  # wrapped under test1, the primary it read, not yet committed
        assert written.kek_id == "test1"
        rotation = threading.Thread(target=rotate)
        rotation.start()
        deadline = time.monotonic() + 60
        while not (switched.is_set() or _someone_waits_for_a_lock(admin)):
            assert time.monotonic() < deadline, "the rotation neither waited nor went on"
            time.sleep(0.01)
        assert not switched.is_set()  # it waits for this transaction
        db.session.commit()
        db.session.remove()
    rotation.join(60)
    assert switched.is_set()
    # Committed before the switch, so the re-wrap pass after it finds the data key.
    result = cli(admin, "rewrap")
    assert "Re-wrapped 1 of 1 data keys" in result.output
    assert kek_ids_in_database(admin) == ["test2"]
    stop(worker, admin)
