"""A confirmed appointment opens the client's file to its caseworker without break-glass,
from the confirmation until some days after the appointment; names in the booking lists
link to the files that open."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from shared.extensions import db
from shared.models import AccessEvent, Booking, BreakGlassGrant, Client
from shared.models.base import utcnow
from tests.conftest import (
    assign_caseworker,
    submit,
    tomorrow_slot_token,
)


def request_appointment(client, bookable, slot: str, *, for_id=None) -> None:
    """The signed-in client asks for ``slot`` (for themselves or a child)."""
    url = f"/bookings/new/{bookable.service_id}/{slot}"
    html = client.get(url).get_data(as_text=True)
    chosen = for_id or re.search(r'name="client"[^>]*value="([^"]+)"', html).group(1)
    assert submit(client, url, {"client": str(chosen), "note": ""}).status_code == 302


@pytest.fixture
def requested(app, client, auth, make_client, make_bookable):
    """Mia Demir asked a caseworker for an appointment tomorrow."""
    bookable = make_bookable()
    person = make_client(full_name="Mia Demir")
    auth.login(person)
    request_appointment(client, bookable, tomorrow_slot_token(app, bookable))
    auth.logout()
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        return bookable, person, booking.id, booking.client_id


def confirm(client, booking_id) -> None:
    response = submit(client, f"/staff/bookings/{booking_id}/confirm", {},
                      form_url="/staff/bookings")
    assert response.status_code == 302


def day_of(app, booking_id) -> str:
    from shared.services import availability

    with app.app_context():
        start = db.session.get(Booking, booking_id).start_at
        return start.astimezone(availability.local_zone()).date().isoformat()


def file_link(client_id) -> str:
    return f'href="/staff/clients/{client_id}"'


def move_appointment(app, booking_id, *, ended_days_ago: float) -> None:
    """Time passes: the appointment ended this many days ago."""
    end = utcnow() - timedelta(days=ended_days_ago)
    with app.app_context():
        db.session.execute(update(Booking).where(Booking.id == booking_id)
                           .values(start_at=end - timedelta(minutes=45), end_at=end))
        db.session.commit()


def test_the_caseworker_who_confirms_opens_the_file_without_an_emergency(
        app, client, auth, requested):
    bookable, person, booking_id, client_id = requested
    auth.login(bookable.staff, area="staff")
    # Before the decision the request alone opens nothing.
    assert client.get(f"/staff/clients/{client_id}").headers["Location"] \
        == f"/staff/clients/{client_id}/break-glass"
    confirm(client, booking_id)
    # The appointment is tomorrow: 30 days after it, in words.
    from shared.i18n import format_day

    with app.test_request_context(headers={"Accept-Language": "de"}):
        until = format_day(utcnow() + timedelta(days=31), "long")
    queue = client.get("/staff/bookings").get_data(as_text=True)
    assert f"Die Akte können Sie bis zum {until} ohne Begründung öffnen." in queue

    # The day's list links Mia's name to her file, which opens without a reason.
    day = client.get(f"/staff/bookings/day?day={day_of(app, booking_id)}").get_data(as_text=True)
    assert f'{file_link(client_id)} data-client-file><bdi>Mia Demir</bdi></a>' in day
    week = client.get(f"/staff/bookings/week?day={day_of(app, booking_id)}")
    assert file_link(client_id) in week.get_data(as_text=True)
    opened = client.get(f"/staff/clients/{client_id}")
    assert opened.status_code == 200
    assert "Mia Demir" in opened.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(BreakGlassGrant.id)) is None
        opening = db.session.scalars(select(AccessEvent).where(
            AccessEvent.client_id == client_id).where(AccessEvent.purpose == "open-file")).all()
        assert opening
        assert all(event.grant_id is None for event in opening)
    auth.logout("staff")

    # Mia reads that her caseworker opened the file: not "in an emergency".
    auth.login(person)
    log = client.get("/my-data/access").get_data(as_text=True)
    assert "hat die Akte geöffnet" in log
    assert "Notfall" not in log


def test_after_the_window_break_glass_is_needed_again(app, client, auth, requested):
    bookable, _person, booking_id, client_id = requested
    auth.login(bookable.staff, area="staff")
    confirm(client, booking_id)
    # 30 days after the appointment (the default) the file still opens ...
    move_appointment(app, booking_id, ended_days_ago=29)
    assert client.get(f"/staff/clients/{client_id}").status_code == 200
    # ... afterwards only with a reason again, and the lists no longer link to it.
    move_appointment(app, booking_id, ended_days_ago=31)
    assert client.get(f"/staff/clients/{client_id}").headers["Location"] \
        == f"/staff/clients/{client_id}/break-glass"
    day = client.get(f"/staff/bookings/day?day={day_of(app, booking_id)}")
    assert file_link(client_id) not in day.get_data(as_text=True)


@pytest.mark.parametrize("config_overrides", [{"appointment_file_days": 0}])
def test_the_time_after_an_appointment_is_configurable(app, client, auth, requested):
    bookable, _person, booking_id, client_id = requested
    auth.login(bookable.staff, area="staff")
    confirm(client, booking_id)
    assert client.get(f"/staff/clients/{client_id}").status_code == 200  # until its end
    move_appointment(app, booking_id, ended_days_ago=0.01)
    assert client.get(f"/staff/clients/{client_id}").status_code == 302


def test_a_cancelled_appointment_opens_nothing(app, client, auth, requested):
    bookable, person, booking_id, client_id = requested
    auth.login(bookable.staff, area="staff")
    confirm(client, booking_id)
    auth.logout("staff")
    auth.login(person)
    # Tomorrow's appointment may lie inside the cut-off: the client cancels one further
    # ahead (written directly, the cancellation is the client's own page).
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        booking.start_at += timedelta(days=5)
        booking.end_at += timedelta(days=5)
        db.session.commit()
    page = client.get("/bookings").get_data(as_text=True)
    cancel_url = re.search(rf'href="(/bookings/{booking_id}/cancel[^"]*)"', page).group(1)
    assert submit(client, cancel_url, {}).status_code == 302
    auth.logout()
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "cancelled"
    auth.login(bookable.staff, area="staff")
    assert client.get(f"/staff/clients/{client_id}").status_code == 302


def test_another_caseworker_still_needs_break_glass(app, client, auth, requested, make_staff):
    bookable, _person, booking_id, client_id = requested
    other = make_staff(role="caseworker")
    # Reception confirms for the caseworker: the booking's caseworker may open the file.
    auth.login(make_staff(role="reception"), area="staff")
    queue = client.get("/staff/bookings").get_data(as_text=True)
    assert "Mia Demir" in queue
    assert file_link(client_id) not in queue  # reception: unchanged, no link to a file
    confirm(client, booking_id)
    day = client.get(f"/staff/bookings/day?day={day_of(app, booking_id)}"
                     f"&staff={bookable.staff_member_id}").get_data(as_text=True)
    assert "Mia Demir" in day
    assert file_link(client_id) not in day
    auth.logout("staff")

    auth.login(other, area="staff")
    assert client.get(f"/staff/clients/{client_id}").headers["Location"] \
        == f"/staff/clients/{client_id}/break-glass"
    auth.logout("staff")
    auth.login(bookable.staff, area="staff")
    assert client.get(f"/staff/clients/{client_id}").status_code == 200


def test_queue_names_link_to_files_that_open(app, client, auth, requested, make_staff):
    bookable, _person, booking_id, client_id = requested
    auth.login(bookable.staff, area="staff")
    # A request is no appointment yet: the name is plain text ...
    assert file_link(client_id) not in client.get("/staff/bookings").get_data(as_text=True)
    auth.logout("staff")
    # ... unless the file opens anyway: the assigned caseworker, an admin (their part).
    assign_caseworker(app, client_id, bookable.staff)
    auth.login(bookable.staff, area="staff")
    queue = client.get("/staff/bookings").get_data(as_text=True)
    assert f'{file_link(client_id)} data-client-file><bdi>Mia Demir</bdi></a>' in queue
    assert client.get(f"/staff/clients/{client_id}").status_code == 200
    auth.logout("staff")
    auth.login(make_staff(role="admin"), area="staff")
    assert file_link(client_id) in client.get("/staff/bookings").get_data(as_text=True)
    assert client.get(f"/staff/clients/{client_id}").status_code == 200


def test_a_child_booked_by_a_guardian_opens_the_childs_file(app, client, auth,
                                                            make_young_person, make_bookable):
    bookable = make_bookable()
    family = make_young_person("Lara Demir")
    auth.login(family.parent)
    request_appointment(client, bookable, tomorrow_slot_token(app, bookable),
                        for_id=family.client_id)
    auth.logout()
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        assert booking.client_id == family.client_id
        parent_id = db.session.scalar(select(Client.id).where(
            Client.account_id == family.parent.account_id))
    auth.login(bookable.staff, area="staff")
    confirm(client, booking.id)
    day = client.get(f"/staff/bookings/day?day={day_of(app, booking.id)}").get_data(as_text=True)
    assert f'{file_link(family.client_id)} data-client-file><bdi>Lara Demir</bdi></a>' in day
    assert client.get(f"/staff/clients/{family.client_id}").status_code == 200
    # The parent's own file is not part of the child's appointment.
    assert client.get(f"/staff/clients/{parent_id}").headers["Location"] \
        == f"/staff/clients/{parent_id}/break-glass"
