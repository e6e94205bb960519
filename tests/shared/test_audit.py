"""The access log is hash-chained per client: tampering is found, parallel writers never
fork the chain."""

import threading
import uuid

from sqlalchemy import delete, select, text

from shared import audit
from shared.extensions import db
from shared.models import AccessEvent, StaffMember
from tests.portal.test_erasure import restricted_case  # noqa: F401  (fixture)


def staff_member(app, make_staff):
    person = make_staff(role="caseworker")
    with app.app_context():
        return db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == person.account_id)).id


def write_events(app, member_id, client_id, count: int) -> None:
    """``count`` staff requests (transactions), each touching the client's bookings."""
    with app.app_context():
        member = db.session.get(StaffMember, member_id)
        for _ in range(count):
            audit.record_access(client_id=client_id, staff_member=member,
                                category=audit.BOOKINGS)
            db.session.commit()


def test_events_chain_and_verify(app, make_staff, runner):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 3)
    with app.app_context():
        events = audit.events_for(client_id)
        assert [e.seq for e in events] == [3, 2, 1]
        assert events[-1].prev_hash == audit.GENESIS
        assert events[0].prev_hash == events[1].hash
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0


def test_editing_an_event_in_the_database_breaks_verification(app, make_staff, runner):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 3)
    with app.app_context():
        db.session.execute(
            text("UPDATE access_events SET category = 'contact' WHERE seq = 2")
        )
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "event 2" in result.output


def test_deleting_an_event_breaks_verification(app, make_staff, runner):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 3)
    with app.app_context():
        db.session.execute(text("DELETE FROM access_events WHERE seq = 2"))
        db.session.commit()
    assert "missing" in runner.invoke(args=["audit", "verify"]).output


def test_parallel_writers_do_not_fork_the_chain(app, make_staff):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    writers, per_writer = 6, 15
    errors = []

    def write() -> None:
        try:
            with app.app_context():
                member = db.session.get(StaffMember, member_id)
                for _ in range(per_writer):
                    audit.record_access(client_id=client_id, staff_member=member,
                                        category=audit.BOOKINGS)
                    db.session.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with app.app_context():
        seqs = sorted(db.session.scalars(select(AccessEvent.seq).where(
            AccessEvent.client_id == client_id)))
        assert seqs == list(range(1, writers * per_writer + 1))
        assert audit.verify_chain(client_id) is None


def test_a_rewritten_chain_without_the_key_does_not_verify(app, make_staff, runner):
    """An attacker with database access changes an event and recomputes the hashes with
    plain SHA-256 (they have no key): verification still fails."""
    import hashlib
    import json

    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    with app.app_context():
        member = db.session.get(StaffMember, member_id)
        audit.record_access(client_id=client_id, staff_member=member, category=audit.NOTES)
        db.session.commit()
        event = db.session.scalar(select(AccessEvent))
        event.category = "contact"
        payload = json.dumps({"client": str(event.client_id), "seq": event.seq,
                              "staff": str(event.staff_member_id), "role": event.role,
                              "category": event.category, "action": event.action,
                              "grant": None, "at": event.created_at.isoformat()},
                             sort_keys=True, separators=(",", ":")).encode()
        event.hash = hashlib.sha256(event.prev_hash + payload).digest()
        db.session.commit()
    assert runner.invoke(args=["audit", "verify"]).exit_code != 0


def test_an_event_spliced_in_from_another_history_does_not_verify(app, make_staff, runner):
    """Two histories share a beginning (a restore from an older backup): event 3 was
    "notes viewed" before the restore and "contact changed" after it. Someone puts the old
    event 3 back in place of the new one and points event 4's previous hash at it. Every
    event still carries its own genuine MAC, sequence numbers and client are right; only
    event 4's MAC covering the hash it follows shows the splice."""
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 2)
    with app.app_context():
        member = db.session.get(StaffMember, member_id)
        audit.record_access(client_id=client_id, staff_member=member, category=audit.NOTES)
        db.session.commit()
        before_restore = audit.events_for(client_id)[0]
        old_third = {c.key: getattr(before_restore, c.key)
                     for c in AccessEvent.__table__.columns}
        # The restore: the backup ended at event 2, and the log continues from there.
        db.session.delete(before_restore)
        db.session.commit()
        audit.record_access(client_id=client_id, staff_member=member, category=audit.CONTACT,
                            action=audit.CHANGE)
        db.session.commit()
        audit.record_access(client_id=client_id, staff_member=member,
                            category=audit.BOOKINGS)
        db.session.commit()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0  # the live history is whole

    with app.app_context():
        db.session.execute(delete(AccessEvent).where(AccessEvent.client_id == client_id)
                           .where(AccessEvent.seq == 3))
        db.session.add(AccessEvent(**old_third))
        fourth = db.session.scalar(select(AccessEvent).where(AccessEvent.client_id == client_id)
                                   .where(AccessEvent.seq == 4))
        fourth.prev_hash = old_third["hash"]
        db.session.commit()
        assert [e.category for e in audit.events_for(client_id)] == [
            audit.BOOKINGS, audit.NOTES, audit.BOOKINGS, audit.BOOKINGS]
        assert audit.verify_chain(client_id) == audit.BrokenLink(client_id, 4,
                                                                 "event was changed")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "event 4" in result.output


def test_the_anchor_notices_removed_newest_events(app, make_staff, runner):
    member_id = staff_member(app, make_staff)
    client_id, other_id = uuid.uuid4(), uuid.uuid4()
    write_events(app, member_id, client_id, 3)
    write_events(app, member_id, other_id, 1)
    result = runner.invoke(args=["audit", "anchor"])
    assert "Anchored 2 access-log chains" in result.output
    write_events(app, member_id, client_id, 2)  # growing after the anchor is fine
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    with app.app_context():
        # Removing the newest events leaves a valid, shorter chain ...
        db.session.execute(text("DELETE FROM access_events WHERE seq >= 3"))
        db.session.commit()
        assert audit.verify_chain(client_id) is None
    # ... which only the anchor, kept outside the database, can tell.
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert str(client_id) in result.output
    assert "removed since the anchor" in result.output


def test_a_changed_anchor_file_is_reported(app, make_staff, runner):
    import json

    write_events(app, staff_member(app, make_staff), uuid.uuid4(), 1)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    path = app.extensions["einblick"].config.audit_anchor_path
    stored = json.loads(path.read_text())
    stored["body"] = stored["body"].replace('"heads":{', '"heads":{"00000000-0000-0000-0000-'
                                            '000000000001":[9,"00"],', 1)
    path.write_text(json.dumps(stored))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "anchor file was changed" in result.output


def test_erased_clients_are_not_reported_missing(app, client, auth, make_client, make_staff,
                                                 runner):
    from shared.models import Client
    from shared.services import casefile
    from tests.portal.test_erasure import confirm_delete

    person = make_client(full_name="Weg Damit")
    member_id = staff_member(app, make_staff)
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
        casefile.search(member=db.session.get(StaffMember, member_id), query="Damit")
    write_events(app, member_id, own, 1)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    auth.login(person)
    assert confirm_delete(client).status_code == 302
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_a_deliberate_restore_re_anchors_the_log(app, make_staff, runner, tmp_path):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 1)
    path = tmp_path / "backup.bak"
    assert runner.invoke(args=["backup", "create", str(path)]).exit_code == 0
    write_events(app, member_id, client_id, 2)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    result = runner.invoke(args=["backup", "restore", str(path), "--yes"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.session.remove()
        assert [e.seq for e in audit.events_for(client_id)] == [1]
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_a_scheduled_re_anchor_cannot_launder_a_truncated_chain(app, make_staff, runner):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 5)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    with app.app_context():  # someone with database access removes the newest events
        db.session.execute(text("DELETE FROM access_events WHERE seq >= 3"))
        db.session.commit()
    refused = runner.invoke(args=["audit", "anchor"])  # the hourly job runs first
    assert refused.exit_code != 0
    assert "Not anchored" in refused.output
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert "removed since the anchor" in result.output


def test_a_restricted_files_log_stays_protected(app, client, auth, runner,
                                               restricted_case):  # noqa: F811
    from tests.conftest import submit

    own = restricted_case["client_id"]
    auth.login(restricted_case["worker"], area="staff")
    submit(client, f"/staff/clients/{own}/break-glass",
           {"reason": "Anfrage des Familiengerichts vom 2. Dezember"})
    with app.app_context():
        head = db.session.scalar(select(AccessEvent).where(AccessEvent.client_id == own)
                                 .where(AccessEvent.action == "restricted"))
        seq = head.seq
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    with app.app_context():  # hide that the restricted file was opened
        db.session.execute(delete(AccessEvent).where(AccessEvent.client_id == own)
                           .where(AccessEvent.seq >= seq))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert str(own) in result.output


def test_verify_does_not_mistake_an_erasure_during_the_run_for_tampering(
        app, make_staff, make_client, runner, monkeypatch):
    from datetime import UTC, datetime

    from shared.models import Client
    from shared.services import erasure

    person = make_client(full_name="Weg Damit")
    member_id = staff_member(app, make_staff)
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
    write_events(app, member_id, own, 1)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    real_scalar = db.session.scalar
    done = []

    def erasure_commits_meanwhile(statement, *args, **kwargs):
        if not done:  # another worker erases the client while verify walks the chains
            done.append(True)
            erasure.journal_append([own], at=datetime.now(UTC))
            erasure.erase_client(own, at=datetime.now(UTC))
            db.session.commit()
        return real_scalar(statement, *args, **kwargs)

    with app.app_context():
        monkeypatch.setattr(db.session, "scalar", erasure_commits_meanwhile)
        assert audit.verify_anchor() == []
        assert done


def test_after_a_restore_new_events_do_not_look_like_tampering(app, make_staff, runner,
                                                               tmp_path):
    member_id = staff_member(app, make_staff)
    client_id = uuid.uuid4()
    write_events(app, member_id, client_id, 2)
    assert runner.invoke(args=["backup", "create", str(tmp_path / "b.bak")]).exit_code == 0
    write_events(app, member_id, client_id, 2)
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    result = runner.invoke(args=["backup", "restore", "--yes", str(tmp_path / "b.bak")])
    assert result.exit_code == 0, result.output
    write_events(app, member_id, client_id, 2)  # seq 3 and 4 again, other hashes
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    kept = list(app.extensions["einblick"].config.audit_anchor_path.parent.glob(
        "audit-anchor.json.before-restore-*"))
    assert len(kept) == 1  # the anchor from before the restore is kept for investigation
