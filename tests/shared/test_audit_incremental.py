"""`flask audit verify` and `flask audit anchor` read only the chains that changed since the
last anchor (marked by triggers on access_events); `--full` reads every chain against every
record of the anchor file."""

import json
import uuid

from sqlalchemy import delete, select, text

from shared import audit
from shared.extensions import db
from shared.models import AccessChainAnchor, AccessChainChange, AccessEvent
from tests.conftest import counting_statements
from tests.shared.test_audit import staff_member, write_events


def counted(app, runner, args: list[str]):
    """Run a command; returns its result and the SQL statements it ran."""
    with counting_statements(app) as statements:
        result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return result, statements


def test_an_incremental_run_reads_what_changed_whatever_the_number_of_clients(
        app, make_staff, runner):
    member_id = staff_member(app, make_staff)
    clients = [uuid.uuid4() for _ in range(30)]
    costs = []
    for size in (3, 30):
        for client_id in clients[:size]:
            write_events(app, member_id, client_id, 2)
        assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
        write_events(app, member_id, clients[1], 1)  # one new event after the anchor
        verify, verify_statements = counted(app, runner, ["audit", "verify"])
        assert "1 chain changed since the last anchor, 2 events read" in verify.output
        anchor, anchor_statements = counted(app, runner, ["audit", "anchor"])
        assert "Anchored 1 access-log chain that changed" in anchor.output
        costs.append((len(verify_statements), len(anchor_statements)))
        verify, _ = counted(app, runner, ["audit", "verify"])
        assert "no chain changed since the last anchor" in verify.output
    assert costs[0] == costs[1], costs
    full = runner.invoke(args=["audit", "verify", "--full"])
    assert "all 30 chains read from their start (" in full.output
    assert "match the anchor file" in full.output
    with app.app_context():
        anchored = dict(db.session.execute(select(AccessChainAnchor.chain_id,
                                                  AccessChainAnchor.seq)).all())
    assert anchored == {client_id: 4 if client_id in clients[:3] else 2
                        for client_id in clients} | {clients[1]: 6}


def test_a_changed_event_after_the_anchor_is_found_incrementally(app, make_staff, runner):
    member_id = staff_member(app, make_staff)
    client_id, other_id = uuid.uuid4(), uuid.uuid4()
    write_events(app, member_id, client_id, 2)
    write_events(app, member_id, other_id, 2)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    write_events(app, member_id, client_id, 2)  # events 3 and 4, not yet anchored
    with app.app_context():
        db.session.execute(text("UPDATE access_events SET category = 'notes' WHERE seq = 3"))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert f"Broken chain for client {client_id} at event 3: event was changed" in result.output
    refused = runner.invoke(args=["audit", "anchor"])
    assert refused.exit_code != 0
    assert "Not anchored" in refused.output


def test_a_change_before_the_anchor_is_found_incrementally_through_the_trigger(
        app, make_staff, runner):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 4)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    with app.app_context():  # an old event, through SQL: the trigger marks the chain
        db.session.execute(text("UPDATE access_events SET action = 'change' WHERE seq = 2"))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "at event 2: event was changed" in result.output


def test_a_rewritten_old_event_hidden_from_the_marks_is_found_by_the_full_check(
        app, make_staff, runner):
    """Someone with database access changes an event from before the anchor and removes
    the mark the trigger wrote: the incremental check cannot see it, `--full` does, and a
    weekly full anchor refuses."""
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 4)
    write_events(app, member_id, uuid.uuid4(), 1)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    with app.app_context():
        db.session.execute(text("UPDATE access_events SET category = 'contact' WHERE seq = 2"))
        db.session.execute(delete(AccessChainChange))
        db.session.commit()
    assert "no chain changed" in runner.invoke(args=["audit", "verify"]).output
    result = runner.invoke(args=["audit", "verify", "--full"])
    assert result.exit_code != 0
    assert f"Broken chain for client {client_id} at event 2: event was changed" in result.output
    refused = runner.invoke(args=["audit", "anchor", "--full"])
    assert refused.exit_code != 0
    assert "Not anchored" in refused.output


def test_newest_events_removed_with_their_marks_are_found_by_the_full_check(
        app, make_staff, runner):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 3)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    with app.app_context():
        db.session.execute(delete(AccessEvent).where(AccessEvent.seq == 3))
        db.session.execute(delete(AccessChainChange))
        db.session.execute(delete(AccessChainAnchor))  # the database's copy of the heads too
        db.session.commit()
    result = runner.invoke(args=["audit", "verify", "--full"])
    assert result.exit_code != 0
    assert f"client {client_id} at event 3: events were removed since the anchor" \
        in result.output


def test_the_anchor_file_grows_by_the_changed_chains_and_stays_chained(app, make_staff,
                                                                        runner):
    member_id = staff_member(app, make_staff)
    first, second = uuid.uuid4(), uuid.uuid4()
    write_events(app, member_id, first, 1)
    write_events(app, member_id, second, 1)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    write_events(app, member_id, second, 1)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    path = app.extensions["einblick"].config.audit_anchor_path
    lines = path.read_text().splitlines()
    records = [json.loads(json.loads(line)["body"]) for line in lines]
    assert [(r["n"], r["full"], sorted(r["heads"])) for r in records] == [
        (1, True, sorted([str(first), str(second)])), (2, False, [str(second)])]
    assert records[1]["prev"] == json.loads(lines[0])["mac"]
    # A record taken out of the middle (or changed) breaks the file's own chain.
    write_events(app, member_id, first, 1)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    # The hourly check reads the last record only (which the database still names) ...
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    result = runner.invoke(args=["audit", "verify", "--full"])  # ... the weekly one all
    assert result.exit_code != 0
    assert "anchor file was changed" in result.output
    # The weekly full anchor starts a new file with every head.
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(args=["audit", "anchor", "--full"])
    assert "Anchored 2 access-log chains (all of them)" in result.output
    (line,) = path.read_text().splitlines()
    assert json.loads(json.loads(line)["body"])["n"] == 4
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0


def test_an_erased_chain_leaves_the_anchor(app, client, auth, make_client, make_staff,
                                          runner):
    from shared.models import Client
    from tests.portal.test_erasure import confirm_delete

    person = make_client(full_name="Weg Damit")
    member_id = staff_member(app, make_staff)
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
    write_events(app, member_id, own, 2)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    auth.login(person)
    assert confirm_delete(client).status_code == 302
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["audit", "anchor"])
    assert "1 chain went with an erasure" in result.output
    with app.app_context():
        assert db.session.get(AccessChainAnchor, own) is None
        assert db.session.scalars(select(AccessChainChange.chain_id)).all() == []
    result = runner.invoke(args=["audit", "verify", "--full"])
    assert result.exit_code == 0, result.output


def test_after_a_restore_the_anchor_continues_incrementally(app, make_staff, runner,
                                                            tmp_path):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 2)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    assert runner.invoke(args=["backup", "create", str(tmp_path / "b.bak")]).exit_code == 0
    write_events(app, member_id, client_id, 2)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    result = runner.invoke(args=["backup", "restore", "--yes", str(tmp_path / "b.bak")])
    assert result.exit_code == 0, result.output
    write_events(app, member_id, client_id, 1)  # event 3 again, another one
    result = runner.invoke(args=["audit", "verify"])
    assert "1 chain changed since the last anchor, 2 events read" in result.output
    assert "1 access-log chain that changed" in runner.invoke(args=["audit", "anchor"]).output
    result = runner.invoke(args=["audit", "verify", "--full"])
    assert result.exit_code == 0, result.output


def test_a_database_restored_behind_the_anchors_back_is_noticed(app, make_staff, runner,
                                                                tmp_path):
    from shared.services import backup

    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 2)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    assert runner.invoke(args=["backup", "create", str(tmp_path / "b.bak")]).exit_code == 0
    write_events(app, member_id, client_id, 2)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    with app.app_context():  # the copy only: no journal, no new anchor
        backup.restore_database(tmp_path / "b.bak")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "name different last anchors" in result.output
    result = runner.invoke(args=["audit", "verify", "--full"])
    assert result.exit_code != 0
    assert "events were removed since the anchor" in result.output


def test_an_anchor_file_from_before_incremental_anchors_is_checked_in_full(
        app, make_staff, runner):
    """The file the old code wrote (one record with every head): verify compares all of
    it, and the first anchor continues it with a full record."""
    import hashlib
    import hmac

    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 3)
    with app.app_context():
        head = audit.events_for(client_id)[0]
        body = json.dumps({"at": "2026-12-01T10:00:00+00:00",
                           "heads": {str(client_id): [3, head.hash.hex()]}},
                          sort_keys=True, separators=(",", ":")).encode()
        mac = hmac.new(audit._chain_key(), b"anchor:" + body, hashlib.sha256).hexdigest()
        db.session.execute(delete(AccessChainChange))
        db.session.commit()
    path = app.extensions["einblick"].config.audit_anchor_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"body": body.decode(), "mac": mac}))
    result = runner.invoke(args=["audit", "verify"])
    assert "all 1 chains read from their start" in result.output, result.output
    assert "Anchored 1 access-log chain (all of them)" in \
        runner.invoke(args=["audit", "anchor"]).output
    (line,) = path.read_text().splitlines()
    assert json.loads(json.loads(line)["body"])["prev"] == mac
    with app.app_context():
        db.session.execute(delete(AccessEvent).where(AccessEvent.seq == 3))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "events were removed since the anchor" in result.output


def test_verify_reports_missing_change_triggers(app, make_staff, runner):
    write_events(app, staff_member(app, make_staff), uuid.uuid4(), 1)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ALTER TABLE access_events DISABLE TRIGGER "
                                    "access_events_touched"))
        else:
            db.session.execute(text("DROP TRIGGER access_events_updated"))
        db.session.commit()
    try:
        result = runner.invoke(args=["audit", "verify"])
        assert result.exit_code != 0
        assert "change triggers are missing or disabled" in result.output
    finally:
        with app.app_context():
            if db.engine.dialect.name == "postgresql":
                db.session.execute(text("ALTER TABLE access_events ENABLE TRIGGER "
                                        "access_events_touched"))
            else:
                db.session.execute(text(
                    "CREATE TRIGGER access_events_updated AFTER UPDATE ON access_events BEGIN"
                    " INSERT INTO access_chain_changes (chain_id, low_seq, version) VALUES"
                    " (OLD.client_id, OLD.seq, 1) ON CONFLICT (chain_id) DO UPDATE SET"
                    " low_seq = min(low_seq, excluded.low_seq), version = version + 1;"
                    " INSERT INTO access_chain_changes (chain_id, low_seq, version) VALUES"
                    " (NEW.client_id, NEW.seq, 1) ON CONFLICT (chain_id) DO UPDATE SET"
                    " low_seq = min(low_seq, excluded.low_seq), version = version + 1; END"))
            db.session.commit()


def test_an_anchor_file_that_could_not_be_written_makes_the_next_anchor_a_full_one(
        app, make_staff, runner, monkeypatch):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 2)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    write_events(app, member_id, client_id, 1)

    def disk_full(path, line):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit, "_append_file", disk_full)
    result = runner.invoke(args=["audit", "anchor"])
    assert result.exit_code != 0
    assert "could not be written (No space left on device)" in result.output
    monkeypatch.undo()
    # The database is one record ahead of the file: no alarm, and the next run anchors all.
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    write_events(app, member_id, uuid.uuid4(), 1)
    result = runner.invoke(args=["audit", "anchor"])
    assert "Anchored 2 access-log chains (all of them)" in result.output
    result = runner.invoke(args=["audit", "verify", "--full"])
    assert result.exit_code == 0, result.output
    assert "match the anchor file" in result.output
