"""Staff decide on requests in one tap; roles see what they may; every view is logged."""

import re

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import AccessEvent, Booking, StaffMember
from tests.conftest import (
    get_counting_statements,
    staff_member_id,
    submit,
    tomorrow_slot_token,
)
from tests.portal.test_bookings import book


@pytest.fixture
def requested(app, client, auth, make_client, make_bookable):
    bookable = make_bookable()
    person = make_client(full_name="Mia Demir")
    auth.login(person)
    book(client, bookable, tomorrow_slot_token(app, bookable), note="Bitte Dolmetscherin")
    auth.logout()
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        return bookable, person, booking.id, booking.client_id


def test_caseworker_confirms_and_the_client_sees_it(app, client, auth, requested, outbox):
    bookable, person, booking_id, client_id = requested
    auth.login(bookable.staff, area="staff")
    queue = client.get("/staff/bookings").get_data(as_text=True)
    assert "Mia Demir" in queue
    assert "Bitte Dolmetscherin" in queue
    response = submit(client, f"/staff/bookings/{booking_id}/confirm", {},
                      form_url="/staff/bookings")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "confirmed"
        events = db.session.scalars(select(AccessEvent).where(
            AccessEvent.client_id == client_id)).all()
        assert {(e.category, e.action) for e in events} >= {("bookings", "view"),
                                                            ("bookings", "change")}
    mail = outbox.last_to(person.email)
    # Neither the text nor the attached .ics carries the note.
    parts = [part.get_content() for part in mail.walk() if not part.is_multipart()]
    assert not [part for part in parts if "Bitte Dolmetscherin" in str(part)]
    auth.logout("staff")
    auth.login(person)
    assert 'data-status="confirmed"' in client.get("/bookings").get_data(as_text=True)


def test_decline_with_message_and_propose_another_time(app, client, auth, requested,
                                                       make_client, make_bookable):
    bookable, person, booking_id, _client_id = requested
    auth.login(bookable.staff, area="staff")
    # The queue links to the choice of other times, computed for this request only.
    queue = client.get("/staff/bookings").get_data(as_text=True)
    assert f'href="/staff/bookings/{booking_id}/propose"' in queue
    choice = client.get(f"/staff/bookings/{booking_id}/propose").get_data(as_text=True)
    other_slot = re.search(r'<option value="([^"]+)"', choice).group(1)
    proposed = submit(client, f"/staff/bookings/{booking_id}/propose", {"slot": other_slot},
                      form_url=f"/staff/bookings/{booking_id}/propose")
    assert proposed.status_code == 302
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert booking.status == "proposed"
        assert booking.original_start_at is not None
    auth.logout("staff")
    auth.login(person)
    assert 'data-status="proposed"' in client.get("/bookings").get_data(as_text=True)
    submit(client, f"/bookings/{booking_id}/proposal/accept", {}, form_url="/bookings")
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "confirmed"


def test_decline_sends_the_message_to_the_portal_not_the_email(app, client, auth, requested,
                                                              outbox):
    bookable, person, booking_id, _ = requested
    auth.login(bookable.staff, area="staff")
    submit(client, f"/staff/bookings/{booking_id}/decline",
           {"message": "Bitte rufen Sie uns an."}, form_url="/staff/bookings")
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert booking.status == "declined"
        assert booking.staff_message == "Bitte rufen Sie uns an."
    assert "rufen Sie uns an" not in outbox.last_to(person.email).get_content()
    auth.logout("staff")
    auth.login(person)
    assert "Bitte rufen Sie uns an." in client.get("/bookings").get_data(as_text=True)


def test_reception_sees_the_queue_but_not_the_note(app, client, auth, requested, make_staff):
    auth.login(make_staff(role="reception"), area="staff")
    queue = client.get("/staff/bookings").get_data(as_text=True)
    assert "Mia Demir" in queue
    assert "Bitte Dolmetscherin" not in queue


def test_another_caseworker_neither_sees_nor_decides(app, client, auth, requested, make_staff):
    _bookable, _person, booking_id, client_id = requested
    auth.login(make_staff(role="caseworker"), area="staff")
    assert "Mia Demir" not in client.get("/staff/bookings").get_data(as_text=True)
    response = submit(client, f"/staff/bookings/{booking_id}/confirm", {},
                      form_url="/staff/bookings")
    assert response.status_code == 404
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "requested"


def test_only_admins_manage_services(client, auth, make_staff):
    auth.login(make_staff(role="caseworker"), area="staff")
    assert client.get("/staff/services").status_code == 403
    assert client.get("/staff/services/new").status_code == 403


def test_the_service_form_offers_the_active_caseworkers_and_admins_in_constant_queries(
        app, client, auth, make_staff):
    """Only who may offer services (caseworkers, admins) is offered, never reception or a
    deactivated member, and the form costs the same statements however many staff exist."""
    from shared.services import staff

    admin = make_staff(role="admin")
    caseworker = make_staff(role="caseworker")
    reception = make_staff(role="reception")
    gone = make_staff(role="caseworker")
    with app.app_context():
        staff.set_active(admin=db.session.get(StaffMember, staff_member_id(app, admin)),
                         member_id=staff_member_id(app, gone), active=False)
    auth.login(admin, area="staff")

    def offered() -> tuple[set[str], int]:
        page, statements = get_counting_statements(app, client, "/staff/services/new")
        assert page.status_code == 200
        values = re.findall(r'name="staff"[^>]*value="([^"]+)"', page.get_data(as_text=True))
        return set(values), statements

    values, statements = offered()
    assert values == {str(staff_member_id(app, admin)), str(staff_member_id(app, caseworker))}
    assert str(staff_member_id(app, reception)) not in values
    more = [make_staff(role="caseworker") for _ in range(4)]
    values, statements_with_more = offered()
    assert {str(staff_member_id(app, person)) for person in more} <= values
    assert statements_with_more == statements


def test_admin_creates_a_service_and_staff_publish_hours(app, client, auth, make_staff):
    from shared.models import AvailabilityRule, Service

    caseworker = make_staff(role="caseworker")
    auth.login(make_staff(role="admin"), area="staff")
    page = client.get("/staff/services/new").get_data(as_text=True)
    member_value = re.search(r'name="staff"[^>]*value="([^"]+)"', page).group(1)
    response = submit(client, "/staff/services/new", {
        "name": "Suchtberatung", "description": "Vertraulich", "duration_minutes": "50",
        "location": "Raum 3", "active": "y", "staff": member_value})
    assert response.status_code == 302
    auth.logout("staff")
    auth.login(caseworker, area="staff")
    saved = submit(client, "/staff/availability", {
        "rule-weekday": "0", "rule-start_time": "09:00", "rule-end_time": "12:00",
        "rule-submit": "1"})
    assert saved.status_code == 302
    wrong = submit(client, "/staff/availability", {
        "rule-weekday": "1", "rule-start_time": "12:00", "rule-end_time": "09:00",
        "rule-submit": "1"})
    assert wrong.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(Service)).name == "Suchtberatung"
        assert len(db.session.scalars(select(AvailabilityRule)).all()) == 1


def test_day_and_week_views_show_the_booking(app, client, auth, requested):
    bookable, _person, booking_id, _ = requested
    with app.app_context():
        day = db.session.get(Booking, booking_id).start_at.date().isoformat()
    auth.login(bookable.staff, area="staff")
    assert "Elternberatung" in client.get(f"/staff/bookings/day?day={day}").get_data(
        as_text=True)
    assert "Elternberatung" in client.get(f"/staff/bookings/week?day={day}").get_data(
        as_text=True)


@pytest.mark.parametrize("view", ["day", "week"])
@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "10000-01-01", "2026-02-30",
                                 "morgen", "2026-13-01", "\u0663\u0663\u0663\u0663-01-01"])
def test_an_impossible_day_is_a_clear_400_not_an_error(client, auth, make_staff, view, day):
    auth.login(make_staff(), area="staff")
    response = client.get(f"/staff/bookings/{view}", query_string={"day": day})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Dieses Datum kann nicht angezeigt werden" in page
    assert 'href="/staff/bookings/day"' in page  # the way back: today


@pytest.mark.parametrize(("view", "earlier", "later"), [
    ("day", "Vorheriger Tag", "Nächster Tag"), ("week", "Vorherige Woche", "Nächste Woche")])
def test_the_first_and_last_days_shown_have_links_that_work(client, auth, make_staff, view,
                                                            earlier, later):
    """Every link on the pages at the ends of the range works; a link that would leave the
    range is not offered."""
    auth.login(make_staff(), area="staff")
    for day, offered, hidden in (("1900-01-01", [later], [earlier]),
                                 ("2026-03-11", [earlier, later], []),
                                 ("2999-12-31", [earlier], [later])):
        response = client.get(f"/staff/bookings/{view}?day={day}")
        assert response.status_code == 200, day
        page = response.get_data(as_text=True)
        assert [text for text in offered if text not in page] == [], day
        assert [text for text in hidden if text in page] == [], day
        for link in re.findall(r'href="(/staff/bookings/(?:day|week)\?[^"]+)"', page):
            assert client.get(link.replace("&amp;", "&")).status_code == 200, link


STAFF_BOOKING_PAGES = ["/staff/bookings", "/staff/bookings/day", "/staff/bookings/week",
                       "/staff/availability", "/staff/services"]


@pytest.mark.parametrize("path", STAFF_BOOKING_PAGES)
def test_clients_cannot_open_staff_booking_pages(client, auth, make_client, path):
    auth.login(make_client())
    assert client.get(path).status_code == 403


def test_the_day_view_leads_caseworkers_to_the_invitation_in_the_case_file(
        app, client, auth, make_client, make_bookable, outbox, make_staff):
    from shared.models import Guardianship
    from tests.conftest import assign_caseworker
    from tests.portal.test_household import add_child

    bookable = make_bookable()
    auth.login(make_client())
    add_child(client, full_name="Lara Demir", birth_date="2008-01-10")
    with app.app_context():
        lara = db.session.scalar(select(Guardianship)).dependant_id
    book(client, bookable, tomorrow_slot_token(app, bookable), for_id=str(lara))
    auth.logout()
    with app.app_context():
        day = db.session.scalar(select(Booking)).start_at.date().isoformat()
    form = {"invite-email": "lara@example.org",
            "invite-reason": "Lara hat im Termin um ein eigenes Konto gebeten"}

    for role in ("reception", "admin"):
        auth.login(make_staff(role=role), area="staff")
        assert f"/staff/clients/{lara}#own-account" not in client.get(
            f"/staff/bookings/day?day={day}").get_data(as_text=True)
        refused = submit(client, f"/staff/clients/{lara}/invite", form,
                         form_url=f"/staff/bookings/day?day={day}")
        assert refused.status_code == 403
        auth.logout("staff")

    assign_caseworker(app, lara, bookable.staff)
    auth.login(bookable.staff, area="staff")
    page = client.get(f"/staff/bookings/day?day={day}").get_data(as_text=True)
    assert f"/staff/clients/{lara}#own-account" in page
    assert f"/staff/clients/{lara}/invite" in client.get(f"/staff/clients/{lara}").get_data(
        as_text=True)
    sent = submit(client, f"/staff/clients/{lara}/invite", form,
                  form_url=f"/staff/clients/{lara}")
    assert sent.headers["Location"] == f"/staff/clients/{lara}#own-account"
    assert "/confirm/" in outbox.last_to("lara@example.org").get_content()


def test_reception_pages_through_every_calendar_a_caseworker_only_their_own(
        app, client, auth, make_staff, make_bookable):
    colleague = make_bookable()
    colleague_id = str(colleague.staff_member_id)
    caseworker = make_staff(role="caseworker")
    for view in ("day", "week"):
        auth.login(make_staff(role="reception"), area="staff")
        page = client.get(f"/staff/bookings/{view}?staff={colleague_id}").get_data(as_text=True)
        assert f'<option value="{colleague_id}" selected>' in page
        assert f"&amp;staff={colleague_id}" in page
        auth.logout("staff")
        auth.login(caseworker, area="staff")
        page = client.get(f"/staff/bookings/{view}?staff={colleague_id}").get_data(as_text=True)
        # Their own calendar (its links name them), with no picker.
        assert f'<option value="{colleague_id}"' not in page
        assert f"&amp;staff={colleague_id}" not in page
        assert f"&amp;staff={staff_member_id(app, caseworker)}" in page
        auth.logout("staff")
