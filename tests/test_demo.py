"""The demo shows a history: Mia Demir has a child, a caseworker, appointments, a consent
asked of her and staff visits to her file; Jonas has given a consent. All of it is written
through the services, relative to now, and a second load adds nothing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from sqlalchemy import func, select, text

from shared import audit
from shared.extensions import db
from shared.models import Booking
from shared.models.audit import AccessEvent
from shared.models.base import utcnow
from shared.models.casefile import Assignment
from shared.models.consents import Consent, ConsentRequest
from shared.models.household import Guardianship
from shared.services import accounts, bookings, casefile, consents, household, staff
from tests.conftest import submit

BERLIN = ZoneInfo("Europe/Berlin")
COUNTED = (Booking, AccessEvent, Assignment, Consent, ConsentRequest, Guardianship)


def load(runner) -> str:
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    return result.output


def mia_account():
    return accounts.find_account(email="mia@example.org", kind="client")


def mia_bookings() -> dict[str, Booking]:
    mia = household.own_client(mia_account())
    rows = db.session.scalars(select(Booking).where(Booking.client_id == mia.id)).all()
    by_status: dict[str, Booking] = {}
    for booking in rows:
        assert booking.status not in by_status, f"two {booking.status} bookings"
        by_status[booking.status] = booking
    return by_status


def rows_held() -> dict[str, int]:
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in COUNTED}


def next_week_monday():
    today = datetime.now(BERLIN).date()
    return today + timedelta(days=7 - today.weekday())


def test_a_second_load_adds_nothing_and_says_what_exists(app, runner, outbox, totp_clock):
    first = load(runner)
    assert "skipped" not in first
    assert first.count("created: ") == 17  # 5 accounts, services, a consent, 10 of history
    with app.app_context():
        before = rows_held()
    emails = len(outbox.messages())
    second = load(runner)
    assert "created" not in second
    assert second.count("exists: ") == 15
    with app.app_context():
        assert rows_held() == before
        assert before["Booking"] == 3
    assert len(outbox.messages()) == emails  # nobody is told twice


def test_mias_history_is_in_the_database_through_the_services(app, runner, totp_clock):
    load(runner)
    with app.app_context():
        account = mia_account()
        mia = household.own_client(account)
        caseworker = staff.find_staff(email="caseworker@example.org")
        reception = staff.find_staff(email="reception@example.org")
        admin = staff.find_staff(email="admin@example.org")

        assert casefile.is_assigned(caseworker, mia.id)

        children = household.visible_dependants(account)
        assert [(c.full_name, c.birth_date.year) for c in children] == [("Emil Demir", 2019)]

        by_status = mia_bookings()
        assert set(by_status) == {"confirmed", "requested", "proposed"}
        monday = next_week_monday()
        for booking in by_status.values():
            assert booking.staff_member_id == caseworker.id
            assert booking.service.name == "Elternberatung"
            assert booking.booked_by_account_id == account.id
            local = booking.start_at.astimezone(BERLIN)
            assert monday <= local.date() < monday + timedelta(days=5), local
        confirmed = by_status["confirmed"].start_at.astimezone(BERLIN)
        assert confirmed.date() == monday + timedelta(days=1)  # Tuesday
        assert "10:00" <= confirmed.strftime("%H:%M") < "12:00"  # from 10 in the morning
        proposed = by_status["proposed"]
        assert proposed.original_start_at is not None
        assert proposed.original_start_at != proposed.start_at
        assert by_status["requested"].note.startswith("Es geht um die Eingewöhnung")
        # Waiting ones hold their time (48 h) and count as waiting for the home page.
        for status in ("requested", "proposed"):
            assert utcnow() < by_status[status].expires_at
        assert [b.status for b in bookings.bookings_for(account)] == [
            "confirmed", "requested", "proposed"]

        asked = consents.open_requests(account)
        assert [(r.subject_id, r.template_key, r.requested_by_id) for r in asked] == [
            (mia.id, "beratung-daten", caseworker.id)]
        assert consents.current_consent(mia.id, "beratung-daten") is None

        jonas = household.own_client(accounts.find_account(email="jonas@example.org",
                                                           kind="client"))
        signed = consents.current_consent(jonas.id, "beratung-daten")
        assert signed.status == "given"
        assert signed.method == "totp-name"
        assert signed.evidence["typed_name"] == "Jonas Weber"
        assert consents.verify_stored(signed.id)[0]

        visits = [(e.staff_member_id, e.purpose, set(audit.categories_of(e)))
                  for e in audit.events_for(mia.id)]
        assert (caseworker.id, audit.OPEN_FILE, {
            "contact", "bookings", "household", "access-log", "documents", "notes"}) in visits
        assert [v for v in visits if v[0] == reception.id] == [
            (reception.id, audit.BOOKING_LISTS, {"bookings"})]  # next week's calendar
        assert (admin.id, audit.CASE_WORK, {"case-file"}) in visits
        assert (caseworker.id, audit.BOOKING_DECISION, {"bookings"}) in visits
        assert (caseworker.id, audit.CONSENT_WORK, {"case-file"}) in visits
        assert audit.verify_chain(mia.id) is None
        # Emil is named in his mother's file: a visit of his own.
        named = audit.events_for(children[0].id)
        assert [(e.staff_member_id, e.action, e.purpose) for e in named] == [
            (caseworker.id, audit.NAMED, audit.OPEN_FILE)]
        assert audit.verify_all() == []

        # Personal data is stored encrypted: no name or note in any column as written.
        for table in ("clients", "bookings", "emergency_contacts"):
            for row in db.session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                raw = " ".join(str(value) for value in row)
                for plain in ("Emil", "Demir", "Eingewöhnung", "Ayşe", "5550123"):
                    assert plain not in raw, (table, plain)


def test_a_later_load_renews_what_ran_out(app, runner, totp_clock):
    """A request holds its time 48 hours: loaded again days later, the demo asks again
    (the old one stays, expired), and keeps what is still current."""
    load(runner)
    with app.app_context():
        held = mia_bookings()
        db.session.execute(
            Booking.__table__.update()
            .where(Booking.id.in_([held["requested"].id, held["proposed"].id]))
            .values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    output = load(runner)
    assert "created: a request of mia@example.org" in output
    assert "created: a time proposed to mia@example.org" in output
    assert "exists: an appointment of mia@example.org" in output
    with app.app_context():
        mia = household.own_client(mia_account())
        rows = db.session.scalars(select(Booking).where(Booking.client_id == mia.id)).all()
        assert sorted(bookings.effective_status(b) for b in rows) == [
            "confirmed", "expired", "expired", "proposed", "requested"]


def test_mia_signs_in_and_reads_her_appointment_in_berlin_time(app, runner, client,
                                                              totp_clock):
    load(runner)
    with app.app_context():
        confirmed = mia_bookings()["confirmed"]
        booking_id, start = str(confirmed.id), confirmed.start_at
    response = submit(client, "/login", {"email": "mia@example.org",
                                         "password": "demo-client-Sonnenblume-42"})
    assert response.status_code == 302
    html = client.get("/bookings").get_data(as_text=True)
    card = re.search(rf'data-booking="{booking_id}".*?</li>', html, re.DOTALL).group(0)
    local = start.astimezone(BERLIN)
    expected = f"{format_date(local, 'full', locale='de')}, " \
               f"{format_time(local, 'short', locale='de')}"
    assert expected in card  # e.g. "Dienstag, 8. Dezember 2026, 10:50"
    assert start.strftime("%H:%M") not in card  # never the UTC time
    assert "Elternberatung" in card
    assert 'data-status="confirmed"' in card
    assert "bestätigt" in card
    assert html.count('data-status="requested"') == 1
    assert html.count('data-status="proposed"') == 1
    assert "Neue Zeit annehmen" in html
