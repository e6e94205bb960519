"""Edges of the access log's visits, found in review: a visit racing the client's erasure,
savepoints, a rollback straight after a commit, who reads a break-glass reason, the
purpose of every staff page, and the cost of /my-data/access with several children."""

import threading
import time
import uuid
from datetime import timedelta

from sqlalchemy import event as sql_event
from sqlalchemy import select, text

from shared import audit
from shared.extensions import db
from shared.models import AccessEvent, Assignment, Client, StaffMember
from shared.models.base import utcnow
from tests.conftest import add_booking, submit
from tests.portal.test_access_visits import family  # noqa: F401  (fixture)

REASON = "Mutter ruft aus der Psychiatrie an, Verdacht auf Suizidalität"


def _client_of(app, person) -> uuid.UUID:
    with app.app_context():
        return db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))


def _wait_for_a_blocked_writer(app, thread: threading.Thread) -> None:
    """On PostgreSQL: until the other transaction waits for a lock (the chain lock the
    erasure holds), or has finished. SQLite has one writer at a time anyway."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return
        deadline = time.monotonic() + 30
        while thread.is_alive() and time.monotonic() < deadline:
            with db.engine.connect() as conn:
                if conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                                    " current_database() AND wait_event_type = 'Lock'")):
                    return


def test_a_visit_committed_while_the_client_is_erased_leaves_no_broken_chain(
        app, make_client, make_staff, runner):
    """A staff request that noted client X commits while X's erasure is in flight: it
    must neither append to the head it saw before the erasure deleted the chain nor start
    a new one."""
    from shared.services import erasure

    make_staff(role="caseworker")
    client_id = _client_of(app, make_client())
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        for category in (audit.CONTACT, audit.BOOKINGS):
            audit.record_access(client_id=client_id, staff_member=member, category=category)
            db.session.commit()
    erased_not_committed, errors = threading.Event(), []

    def staff_request():
        try:
            with app.app_context():
                member = db.session.scalar(select(StaffMember))
                audit.record_access(client_id=client_id, staff_member=member,
                                    category=audit.BOOKINGS)  # e.g. the booking queue
                erased_not_committed.wait(30)
                db.session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writer = threading.Thread(target=staff_request)
    writer.start()
    with app.app_context():
        erasure.journal_append([client_id], at=utcnow())
        erasure.erase_client(client_id, at=utcnow(), shred=True)
        db.session.flush()
        erased_not_committed.set()
        _wait_for_a_blocked_writer(app, writer)
        db.session.commit()
    writer.join(60)
    assert errors == []
    with app.app_context():
        assert db.session.get(Client, client_id) is None
        assert db.session.scalars(select(AccessEvent.seq).where(
            AccessEvent.client_id == client_id)).all() == []
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_a_visit_noted_before_the_erasure_and_committed_after_starts_no_new_chain(
        app, make_client, make_staff):
    from shared.services import erasure

    make_staff(role="caseworker")
    client_id = _client_of(app, make_client())
    noted, erased, errors = threading.Event(), threading.Event(), []

    def staff_request():
        try:
            with app.app_context():
                member = db.session.scalar(select(StaffMember))
                audit.record_access(client_id=client_id, staff_member=member,
                                    category=audit.CONTACT)
                noted.set()
                erased.wait(30)
                db.session.commit()  # the after_request commit
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writer = threading.Thread(target=staff_request)
    writer.start()
    noted.wait(30)
    with app.app_context():
        erasure.journal_append([client_id], at=utcnow())
        erasure.erase_client(client_id, at=utcnow(), shred=True)
        db.session.commit()
    erased.set()
    writer.join(60)
    assert errors == []
    with app.app_context():
        assert db.session.get(Client, client_id) is None
        assert audit.events_for(client_id) == []


def test_a_change_noted_in_a_rolled_back_savepoint_is_not_logged(app, make_staff):
    make_staff(role="caseworker")
    client_id, kept = uuid.uuid4(), uuid.uuid4()
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        audit.record_access(client_id=kept, staff_member=member, category=audit.CONTACT)
        try:
            with db.session.begin_nested():
                audit.record_access(client_id=client_id, staff_member=member,
                                    category=audit.NOTES, action=audit.CHANGE)
                raise ValueError("the change fails and its savepoint is rolled back")
        except ValueError:
            pass
        db.session.commit()
        assert audit.events_for(client_id) == []
        assert [e.category for e in audit.events_for(kept)] == ["contact"]


def test_visits_are_written_at_the_real_commit_not_at_a_savepoint_release(app, make_staff):
    make_staff(role="caseworker")
    first, second = uuid.uuid4(), uuid.uuid4()
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        audit.record_access(client_id=first, staff_member=member, category=audit.CONTACT)
        with db.session.begin_nested():
            pass  # e.g. a service's savepoint around a flush
        written_early = db.session.scalar(select(db.func.count()).select_from(AccessEvent))
        audit.record_access(client_id=second, staff_member=member, category=audit.CONTACT)
        db.session.commit()
        assert written_early == 0
        assert len(audit.events_for(first)) == len(audit.events_for(second)) == 1


def test_a_rollback_right_after_a_commit_drops_what_was_noted(app, make_staff):
    make_staff(role="caseworker")
    client_id = uuid.uuid4()
    with app.app_context():
        db.session.commit()
        audit.record_access(client_id=client_id, staff_member=None, role=audit.GUARDIAN,
                            category=audit.HOUSEHOLD, action=audit.INVITATION)
        db.session.rollback()
        db.session.commit()
        assert audit.events_for(client_id) == []


def test_the_childs_caseworker_does_not_read_the_reason_given_for_the_parents_file(
        app, client, auth, family, make_staff):  # noqa: F811
    """A caseworker assigned only to the child opens the child's file: its log says a
    household member's file was opened in an emergency, not the reason typed for the
    parent (the parent's data, which that caseworker may not read)."""
    _parent, parent_id, child = family
    child_worker = make_staff(role="caseworker")
    with app.app_context():
        member = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == child_worker.account_id))
        db.session.add(Assignment(client_id=child, staff_member_id=member.id))
        db.session.commit()
    auth.login(make_staff(role="caseworker"), area="staff")
    submit(client, f"/staff/clients/{parent_id}/break-glass", {"reason": REASON})
    client.get(f"/staff/clients/{parent_id}")
    auth.logout("staff")
    auth.login(child_worker, area="staff")
    page = client.get(f"/staff/clients/{child}").get_data(as_text=True)
    assert "bei einer Notfall-Öffnung der Akte eines Haushaltsmitglieds" in page
    assert REASON not in page


def test_the_propose_page_names_its_purpose(app, client, auth, make_client, make_bookable):
    person = make_client(full_name="Mia Demir")
    bookable = make_bookable()
    with app.app_context():
        target = db.session.scalar(select(Client).where(Client.account_id == person.account_id))
        booking = add_booking(target, bookable, end=utcnow() + timedelta(days=2),
                              status="requested")
        db.session.commit()
        booking_id, client_id = booking.id, target.id
    auth.login(bookable.staff, area="staff")
    assert client.get(f"/staff/bookings/{booking_id}/propose").status_code == 200
    with app.app_context():
        (visit,) = db.session.scalars(select(AccessEvent).where(
            AccessEvent.client_id == client_id)).all()
    assert visit.purpose == audit.BOOKING_DECISION


def test_my_data_access_costs_the_same_with_one_or_four_children(app, client, auth,
                                                                 make_client):
    from tests.portal.test_household import add_child

    def cost(children: int) -> int:
        parent = make_client()
        auth.login(parent)
        for n in range(children):
            add_child(client, full_name=f"Kind{n} Demir", birth_date="2015-05-05")
        client.get("/my-data/access")
        statements = []

        def count(*_args) -> None:
            statements.append(1)

        with app.app_context():
            engine = db.engine
        sql_event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/my-data/access").status_code == 200
        finally:
            sql_event.remove(engine, "before_cursor_execute", count)
        auth.logout()
        return len(statements)

    assert cost(1) == cost(4)
