"""Changing appointments: cancel after one confirmation page; move to another time (the old
appointment stays until staff confirm the new one); the cut-off said before booking; the
client told once when a request expires unanswered; confirmation emails with the place or
the video link, the cancellation rule and the .ics; the video link of online services."""

import io
import re
import zipfile
from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select, update

from shared.extensions import db
from shared.models import Booking, Service
from shared.models.base import utcnow
from shared.services import availability
from tests.conftest import csrf_token, submit, tomorrow_slot_token

VIDEO = "https://video.example.org/raum/elternberatung"


def request_slot(client, bookable, slot: str) -> None:
    url = f"/bookings/new/{bookable.service_id}/{slot}"
    html = client.get(url).get_data(as_text=True)
    chosen = re.search(r'name="client"[^>]*value="([^"]+)"', html).group(1)
    assert submit(client, url, {"client": chosen, "note": ""}).status_code == 302


def staff_decides(client, auth, bookable, booking_id, action: str = "confirm",
                  data: dict | None = None):
    auth.login(bookable.staff, area="staff")
    response = submit(client, f"/staff/bookings/{booking_id}/{action}", data or {},
                      form_url="/staff/bookings")
    auth.logout("staff")
    return response


def move_start(app, booking_id, *, hours: float) -> None:
    """Put a booking ``hours`` from now (the cut-off is about the distance to now)."""
    with app.app_context():
        start = utcnow() + timedelta(hours=hours)
        db.session.execute(update(Booking).where(Booking.id == booking_id)
                           .values(start_at=start, end_at=start + timedelta(minutes=45)))
        db.session.commit()


@pytest.fixture
def confirmed(app, client, auth, make_client, make_bookable):
    """Mia Demir has a confirmed appointment three days ahead; she is signed in."""
    bookable = make_bookable()
    person = make_client(full_name="Mia Demir")
    auth.login(person)
    request_slot(client, bookable, tomorrow_slot_token(app, bookable, index=-1))
    auth.logout()
    with app.app_context():
        booking_id = db.session.scalar(select(Booking.id))
    assert staff_decides(client, auth, bookable, booking_id).status_code == 302
    move_start(app, booking_id, hours=72)
    auth.login(person)
    return bookable, person, booking_id


def status_of(app, booking_id) -> str:
    with app.app_context():
        return db.session.get(Booking, booking_id).status


# -- cancel -------------------------------------------------------------------------------
def test_cancel_shows_what_goes_then_cancels_on_the_second_tap(app, client, confirmed):
    bookable, _person, booking_id = confirmed
    listing = client.get("/bookings").get_data(as_text=True)
    # The list links to a page; nothing is cancelled by one tap.
    assert f'href="/bookings/{booking_id}/cancel"' in listing
    assert f'action="/bookings/{booking_id}/cancel"' not in listing
    page = client.get(f"/bookings/{booking_id}/cancel")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Termin absagen?" in html
    assert "Elternberatung" in html
    with app.app_context():
        from shared.models import StaffMember

        staff_name = db.session.get(StaffMember, bookable.staff_member_id).name
    assert staff_name
    assert staff_name in html
    assert "bis 24 Stunden vorher online absagen" in html
    assert 'href="tel:+49301234567"' in html
    assert status_of(app, booking_id) == "confirmed"  # looking changes nothing
    response = submit(client, f"/bookings/{booking_id}/cancel", {})
    assert response.status_code == 302
    assert response.headers["Location"] == "/bookings"
    assert status_of(app, booking_id) == "cancelled"
    assert "Der Termin ist abgesagt." in client.get("/bookings").get_data(as_text=True)


def test_inside_the_cut_off_the_page_offers_the_phone_and_refuses_the_post(app, client,
                                                                           confirmed):
    _bookable, _person, booking_id = confirmed
    move_start(app, booking_id, hours=5)
    listing = client.get("/bookings").get_data(as_text=True)
    assert f'href="/bookings/{booking_id}/cancel"' not in listing
    assert ('<a class="kern-link nowrap" href="tel:+49301234567">'
            '<bdi dir="ltr">+49 30 1234567</bdi></a>') in listing
    html = client.get(f"/bookings/{booking_id}/cancel").get_data(as_text=True)
    assert 'id="cancel-booking"' not in html
    assert 'href="tel:+49301234567"' in html
    refused = submit(client, f"/bookings/{booking_id}/cancel", {}, follow_redirects=True)
    assert "Bitte rufen Sie uns an" in refused.get_data(as_text=True)
    assert status_of(app, booking_id) == "confirmed"


def test_a_request_is_withdrawn_with_its_own_words(app, client, auth, make_client,
                                                   make_bookable):
    bookable = make_bookable()
    auth.login(make_client())
    request_slot(client, bookable, tomorrow_slot_token(app, bookable))
    with app.app_context():
        booking_id = db.session.scalar(select(Booking.id))
    html = client.get(f"/bookings/{booking_id}/cancel").get_data(as_text=True)
    assert "Anfrage zurückziehen?" in html
    assert "Ja, Anfrage zurückziehen" in html
    done = submit(client, f"/bookings/{booking_id}/cancel", {}, follow_redirects=True)
    assert "Die Anfrage ist zurückgezogen." in done.get_data(as_text=True)
    assert status_of(app, booking_id) == "cancelled"


# -- who may -------------------------------------------------------------------------------
def change_urls(booking_id, slot) -> list[tuple[str, str]]:
    return [("GET", f"/bookings/{booking_id}/cancel"), ("POST", f"/bookings/{booking_id}/cancel"),
            ("GET", f"/bookings/{booking_id}/move"),
            ("GET", f"/bookings/{booking_id}/move/{slot}"),
            ("POST", f"/bookings/{booking_id}/move/{slot}")]


def test_every_change_route_is_the_booking_clients_own(app, client, auth, make_client,
                                                       make_staff, confirmed):
    bookable, _person, booking_id = confirmed
    slot = tomorrow_slot_token(app, bookable, index=1)
    auth.logout()
    # Signed out: pages lead to the sign-in page; a post without a session is refused.
    for method, url in change_urls(booking_id, slot):
        response = client.open(url, method=method)
        if method == "GET":
            assert response.status_code == 302, url
            assert "/login" in response.headers["Location"], url
        else:
            assert response.status_code == 400, url
    # Another client: not found, and nothing changes.
    auth.login(make_client())
    other_token = csrf_token(client.get("/bookings").get_data(as_text=True))
    for method, url in change_urls(booking_id, slot):
        response = client.open(url, method=method, data={"csrf_token": other_token})
        assert response.status_code == 404, url
    auth.logout()
    # Staff are not clients: sent to their own area (even with their session's token).
    auth.login(make_staff(role="admin"), area="staff")
    token = csrf_token(client.get("/staff/security").get_data(as_text=True))
    for method, url in change_urls(booking_id, slot):
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 302, url
        assert "/staff" in response.headers["Location"], url
    auth.logout("staff")
    with app.app_context():
        assert db.session.scalar(select(Booking.status)) == "confirmed"
        assert len(db.session.scalars(select(Booking)).all()) == 1


# -- move -----------------------------------------------------------------------------------
def test_move_keeps_the_old_appointment_until_staff_confirm_the_new_one(
        app, client, auth, confirmed, outbox):
    bookable, person, old_id = confirmed
    listing = client.get("/bookings").get_data(as_text=True)
    assert f'href="/bookings/{old_id}/move"' in listing
    page = client.get(f"/bookings/{old_id}/move").get_data(as_text=True)
    assert "Andere Zeit wählen" in page
    first = re.search(rf'href="(/bookings/{old_id}/move/[^"]+)"', page).group(1)
    confirm_page = client.get(first).get_data(as_text=True)
    assert "Ihr bisheriger Termin bleibt bestehen" in confirm_page
    assert "cutoff-notice" in confirm_page
    assert submit(client, first, {}).status_code == 302
    with app.app_context():
        new = db.session.scalar(select(Booking).where(Booking.id != old_id))
        new_id = new.id
        assert new.status == "requested"
        assert new.replaces_booking_id == old_id
        assert new.service_id == bookable.service_id
    assert status_of(app, old_id) == "confirmed"
    listing = client.get("/bookings").get_data(as_text=True)
    assert "data-moving-to" in listing
    assert "data-moves-from" in listing
    # One move at a time: the old appointment offers no second one.
    assert f'href="/bookings/{old_id}/move"' not in listing
    assert f'href="/bookings/{new_id}/move"' not in listing
    second = client.get(f"/bookings/{old_id}/move", follow_redirects=True)
    assert "bereits gebeten" in second.get_data(as_text=True)
    auth.logout()

    auth.login(bookable.staff, area="staff")
    queue = client.get("/staff/bookings").get_data(as_text=True)
    assert "Möchte verschieben vom" in queue
    assert submit(client, f"/staff/bookings/{new_id}/confirm", {},
                  form_url="/staff/bookings").status_code == 302
    auth.logout("staff")
    assert status_of(app, new_id) == "confirmed"
    assert status_of(app, old_id) == "cancelled"
    mail = outbox.last_to(person.email)
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "ist, wie gewünscht, abgesagt" in body
    # The staff member learns the old time is free again.
    assert "Elternberatung" in outbox.last_to(bookable.staff.email).get_content()


def test_a_declined_move_leaves_the_appointment(app, client, auth, confirmed):
    bookable, _person, old_id = confirmed
    page = client.get(f"/bookings/{old_id}/move").get_data(as_text=True)
    first = re.search(rf'href="(/bookings/{old_id}/move/[^"]+)"', page).group(1)
    submit(client, first, {})
    auth.logout()
    with app.app_context():
        new_id = db.session.scalar(select(Booking.id).where(Booking.id != old_id))
    staff_decides(client, auth, bookable, new_id, "decline", {"message": ""})
    assert status_of(app, new_id) == "declined"
    assert status_of(app, old_id) == "confirmed"


def test_no_move_inside_the_cut_off(app, client, confirmed):
    bookable, _person, old_id = confirmed
    slot = tomorrow_slot_token(app, bookable, index=2)
    move_start(app, old_id, hours=3)
    assert f'href="/bookings/{old_id}/move"' not in client.get("/bookings").get_data(
        as_text=True)
    assert client.get(f"/bookings/{old_id}/move").status_code == 302
    response = submit(client, f"/bookings/{old_id}/move/{slot}", {})
    assert response.status_code == 409
    with app.app_context():
        assert len(db.session.scalars(select(Booking)).all()) == 1


# -- the cut-off before booking -------------------------------------------------------------
def test_a_time_inside_the_cut_off_says_so_before_it_is_booked(app, client, auth,
                                                               make_client, make_bookable):
    bookable = make_bookable()
    auth.login(make_client())
    slot = tomorrow_slot_token(app, bookable)
    url = f"/bookings/new/{bookable.service_id}/{slot}"
    state = app.extensions["einblick"].config
    # Tomorrow is more or less than a day away depending on the hour: set the rule.
    app.extensions["einblick"].config = state.with_(cancel_cutoff_hours=1)
    try:
        far = client.get(url).get_data(as_text=True)
        app.extensions["einblick"].config = state.with_(cancel_cutoff_hours=24 * 5)
        near = client.get(url).get_data(as_text=True)
    finally:
        app.extensions["einblick"].config = state
    assert "bis 1 Stunde vor dem Termin online absagen" in far
    assert "kern-alert--warning cutoff-notice" not in far
    assert "kern-alert--warning cutoff-notice" in near
    assert "Weniger als 120 Stunden vor dem Termin" in near
    assert "nicht mehr online abgesagt werden" in near
    assert 'href="tel:+49301234567"' in near


# -- expiry notice --------------------------------------------------------------------------
def test_an_unanswered_request_that_expires_is_told_once(app, client, auth, make_client,
                                                         make_bookable, outbox, runner):
    bookable = make_bookable()
    person = make_client(full_name="Mia Demir")
    auth.login(person)
    request_slot(client, bookable, tomorrow_slot_token(app, bookable))
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        booking.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        booking_id = booking.id
    before = len(outbox.to(person.email))
    first = runner.invoke(args=["bookings", "remind"])
    assert first.exit_code == 0, first.output
    assert "Sent 1 notices of expired requests." in first.output
    assert person.email not in first.output
    assert "Mia" not in first.output
    second = runner.invoke(args=["bookings", "remind"])
    assert "Sent 0 notices of expired requests." in second.output
    mails = outbox.to(person.email)[before:]
    assert len(mails) == 1
    assert mails[0]["Subject"] == "Ihre Terminanfrage wurde nicht rechtzeitig beantwortet"
    body = mails[0].get_content()
    assert "nicht rechtzeitig beantworten" in body
    assert f"/bookings/new/{bookable.service_id}" in body
    with app.app_context():
        row = db.session.get(Booking, booking_id)
        assert row.status == "expired"
        assert row.expiry_notice_sent_at is not None


def test_a_declined_request_gets_no_expiry_notice(app, client, auth, make_client,
                                                  make_bookable, outbox, runner):
    bookable = make_bookable()
    person = make_client()
    auth.login(person)
    request_slot(client, bookable, tomorrow_slot_token(app, bookable))
    auth.logout()
    with app.app_context():
        booking_id = db.session.scalar(select(Booking.id))
    staff_decides(client, auth, bookable, booking_id, "decline", {"message": ""})
    before = len(outbox.to(person.email))
    assert "Sent 0 notices" in runner.invoke(args=["bookings", "remind"]).output
    assert len(outbox.to(person.email)) == before


# -- video link, confirmation email, .ics ---------------------------------------------------
def save_online_service(client, bookable, video_url: str):
    return submit(client, f"/staff/services/{bookable.service_id}", {
        "name": "Online-Beratung", "description": "", "duration_minutes": "45",
        "location": "", "online": "y", "active": "y", "video_url": video_url,
        "staff": str(bookable.staff_member_id)})


def test_only_https_video_links_are_kept(app, client, auth, make_staff, make_bookable):
    bookable = make_bookable()
    auth.login(make_staff(role="admin"), area="staff")
    form = client.get(f"/staff/services/{bookable.service_id}").get_data(as_text=True)
    assert 'name="video_url"' in form
    for bad in ("http://video.example.org/raum", "javascript:alert(1)", "video.example.org",
                "https://", "https://video.example.org/a b",
                "https://video.example.org/raum?id=1", "https://video.example.org/raum#x"):
        response = save_online_service(client, bookable, bad)
        assert response.status_code == 200, bad
        assert "https://" in response.get_data(as_text=True)
        with app.app_context():
            assert db.session.get(Service, bookable.service_id).video_url is None, bad
    assert save_online_service(client, bookable, VIDEO).status_code == 302
    with app.app_context():
        assert db.session.get(Service, bookable.service_id).video_url == VIDEO


def test_an_online_confirmation_carries_the_link_the_rule_and_the_ics(
        app, client, auth, make_client, make_staff, make_bookable, outbox):
    """Each confirmed online appointment gets a video room of its own under the
    service's base address; the base itself is never given to clients."""
    bookable = make_bookable()
    auth.login(make_staff(role="admin"), area="staff")
    assert save_online_service(client, bookable, VIDEO).status_code == 302
    auth.logout("staff")
    person = make_client()
    auth.login(person)
    request_slot(client, bookable, tomorrow_slot_token(app, bookable, index=-1))
    # Not before it is confirmed.
    assert VIDEO not in client.get("/bookings").get_data(as_text=True)
    auth.logout()
    with app.app_context():
        booking_id = db.session.scalar(select(Booking.id))
        assert db.session.get(Booking, booking_id).video_room is None
    staff_decides(client, auth, bookable, booking_id)
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        room = booking.video_room
        # Stored encrypted with the client's data key, never in plain text.
        assert room.encode() not in booking.video_room_ciphertext
    assert re.fullmatch(re.escape(VIDEO) + r"/[A-Za-z0-9_-]{20,}", room)
    mail = outbox.last_to(person.email)
    assert mail["Subject"] == "Ihr Termin ist bestätigt"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert room in body
    assert f"{VIDEO}\n" not in body
    assert "bis 24 Stunden vor dem Termin online absagen" in body
    assert "+49 30 1234567" in body
    attachments = list(mail.iter_attachments())
    assert [a.get_content_type() for a in attachments] == ["text/calendar"]
    assert attachments[0].get_filename() == "termin.ics"
    event = Calendar.from_ical(attachments[0].get_content()).walk("VEVENT")[0]
    assert str(event["LOCATION"]) == room
    assert str(event["URL"]) == room
    assert str(event["SUMMARY"]) == "Online-Beratung"

    auth.login(person)
    for page in ("/bookings", "/home"):
        html = client.get(page).get_data(as_text=True)
        assert f'href="{room}"' in html, page
        assert f'href="{VIDEO}"' not in html, page
    download = client.get(f"/bookings/{booking_id}/appointment.ics")
    event = Calendar.from_ical(download.data).walk("VEVENT")[0]
    assert str(event["URL"]) == room
    # The client reads the link among their data and in the copy of it.
    assert room in client.get("/my-data").get_data(as_text=True)
    archive = zipfile.ZipFile(io.BytesIO(submit(client, "/my-data/export", {}).data))
    data = next(archive.read(n) for n in archive.namelist() if n.endswith("data.json"))
    assert room in data.decode()
    auth.logout()

    # Another client's online appointment gets another room.
    other = make_client(email="zweite@example.org")
    auth.login(other)
    request_slot(client, bookable, tomorrow_slot_token(app, bookable, index=0))
    auth.logout()
    with app.app_context():
        other_id = db.session.scalar(select(Booking.id).where(Booking.id != booking_id))
    staff_decides(client, auth, bookable, other_id)
    with app.app_context():
        other_room = db.session.get(Booking, other_id).video_room
    assert other_room.startswith(VIDEO + "/")
    assert other_room != room
    auth.login(other)
    assert room not in client.get("/bookings").get_data(as_text=True)
    auth.logout()

    # The staff member of the appointments finds each room in the day view.
    with app.app_context():
        start = db.session.get(Booking, booking_id).start_at
        day = start.astimezone(availability.local_zone()).date().isoformat()
    auth.login(bookable.staff, area="staff")
    html = client.get(f"/staff/bookings/day?day={day}").get_data(as_text=True)
    assert f'href="{room}"' in html
    assert f'href="{other_room}"' in html
    assert f'href="{VIDEO}"' not in html
    auth.logout("staff")
    # Another staff member who sees all bookings does not get the rooms.
    auth.login(make_staff(role="admin"), area="staff")
    html = client.get(f"/staff/bookings/day?day={day}&staff={bookable.staff_member_id}") \
        .get_data(as_text=True)
    assert "Online-Beratung" in html
    assert room not in html


def test_an_in_person_confirmation_names_the_address(app, client, auth, make_client,
                                                     make_bookable, outbox):
    bookable = make_bookable()
    person = make_client()
    auth.login(person)
    request_slot(client, bookable, tomorrow_slot_token(app, bookable))
    auth.logout()
    with app.app_context():
        booking_id = db.session.scalar(select(Booking.id))
    staff_decides(client, auth, bookable, booking_id)
    mail = outbox.last_to(person.email)
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Wo:" in body
    assert "Raum 2" in body
    assert "Lindenstraße 12" in body
    event = Calendar.from_ical(next(mail.iter_attachments()).get_content()).walk("VEVENT")[0]
    assert str(event["LOCATION"]) == "Raum 2"
    assert "URL" not in event


def test_cancelling_the_old_appointment_leaves_the_move_a_plain_request(app, client, auth,
                                                                        confirmed):
    bookable, _person, old_id = confirmed
    page = client.get(f"/bookings/{old_id}/move").get_data(as_text=True)
    submit(client, re.search(rf'href="(/bookings/{old_id}/move/[^"]+)"', page).group(1), {})
    with app.app_context():
        new_id = db.session.scalar(select(Booking.id).where(Booking.id != old_id))
    html = client.get(f"/bookings/{old_id}/cancel").get_data(as_text=True)
    assert "bleibt offen" in html  # the move request is named, and stays
    submit(client, f"/bookings/{old_id}/cancel", {})
    assert status_of(app, old_id) == "cancelled"
    assert status_of(app, new_id) == "requested"
    listing = client.get("/bookings").get_data(as_text=True)
    assert "data-moves-from" not in listing
    auth.logout()
    auth.login(bookable.staff, area="staff")
    assert "Möchte verschieben" not in client.get("/staff/bookings").get_data(as_text=True)
    auth.logout("staff")
    staff_decides(client, auth, bookable, new_id)
    assert status_of(app, new_id) == "confirmed"
    assert status_of(app, old_id) == "cancelled"


def test_accepting_a_time_staff_proposed_for_a_move_cancels_the_old_appointment(
        app, client, auth, confirmed):
    bookable, person, old_id = confirmed
    page = client.get(f"/bookings/{old_id}/move").get_data(as_text=True)
    submit(client, re.search(rf'href="(/bookings/{old_id}/move/[^"]+)"', page).group(1), {})
    auth.logout()
    with app.app_context():
        new_id = db.session.scalar(select(Booking.id).where(Booking.id != old_id))
    other_slot = tomorrow_slot_token(app, bookable, index=3)
    auth.login(bookable.staff, area="staff")
    assert submit(client, f"/staff/bookings/{new_id}/propose", {"slot": other_slot},
                  form_url=f"/staff/bookings/{new_id}/propose").status_code == 302
    auth.logout("staff")
    assert status_of(app, new_id) == "proposed"
    assert status_of(app, old_id) == "confirmed"
    auth.login(person)
    assert submit(client, f"/bookings/{new_id}/proposal/accept", {},
                  form_url="/bookings").status_code == 302
    assert status_of(app, new_id) == "confirmed"
    assert status_of(app, old_id) == "cancelled"


# -- a move keeps the appointment confidential; one open move at a time --------------------
def _lara_with_a_confidential_appointment(app, client, auth, make_young_person,
                                          make_bookable, make_staff, outbox):
    """Lara (16) has her own account; staff kept her appointment from her parent."""
    from shared.models import Client
    from tests.conftest import Auth, assign_caseworker, claim_invitation, confirm_in_person

    bookable = make_bookable(name="Schwangerschaftsberatung")
    worker = bookable.staff
    young = make_young_person(note_by=None)
    assign_caseworker(app, young.client_id, worker)
    staff_browser = app.test_client()
    Auth(staff_browser, auth.clock).login(worker, area="staff")
    submit(staff_browser, f"/staff/clients/{young.client_id}/invite",
           {"invite-email": "lara@example.org", "invite-reason": "Lara hat darum gebeten"},
           form_url=f"/staff/clients/{young.client_id}")
    lara = claim_invitation(app, outbox, "lara@example.org")
    confirm_in_person(app, auth, make_staff(role="caseworker"), young.client_id)
    with app.app_context():
        person = db.session.get(Client, young.client_id)
        start = utcnow().replace(microsecond=0) + timedelta(days=5)
        old = Booking(client_id=person.id, data_key=person.data_key,
                      service_id=bookable.service_id,
                      staff_member_id=bookable.staff_member_id, start_at=start,
                      end_at=start + timedelta(minutes=45), status="confirmed",
                      confidential_from_guardians=True)
        db.session.add(old)
        db.session.commit()
        old_id = old.id
    parent = app.test_client()
    Auth(parent, auth.clock).login(young.parent)
    return bookable, young, lara, parent, old_id


def test_moving_a_confidential_appointment_keeps_it_from_the_guardian(
        app, client, auth, make_young_person, make_bookable, make_staff, outbox):
    bookable, young, lara, parent, old_id = _lara_with_a_confidential_appointment(
        app, client, auth, make_young_person, make_bookable, make_staff, outbox)
    for page in ("/bookings", "/home"):
        assert "Schwangerschaftsberatung" not in parent.get(page).get_data(as_text=True)
    url = f"/bookings/{old_id}/move/{tomorrow_slot_token(app, bookable, index=-1)}"
    assert submit(lara, url, {}, form_url=url).status_code == 302
    with app.app_context():
        new = db.session.scalar(select(Booking).where(Booking.replaces_booking_id == old_id))
        new_id = new.id
        assert new.confidential_from_guardians is True
    assert "Schwangerschaftsberatung" in lara.get("/bookings").get_data(as_text=True)
    # Staff still handle the request in their queue; the new time stays Lara's alone.
    auth.login(bookable.staff, area="staff")
    assert "Möchte verschieben vom" in client.get("/staff/bookings").get_data(as_text=True)
    assert submit(client, f"/staff/bookings/{new_id}/confirm", {},
                  form_url="/staff/bookings").status_code == 302
    auth.logout("staff")
    assert status_of(app, new_id) == "confirmed"
    assert status_of(app, old_id) == "cancelled"
    # Even once the old appointment is gone (retention), nothing leads the parent to it.
    with app.app_context():
        db.session.delete(db.session.get(Booking, old_id))
        db.session.commit()
    for page in ("/bookings", "/home"):
        html = parent.get(page).get_data(as_text=True)
        assert "Schwangerschaftsberatung" not in html, page
        assert str(new_id) not in html, page
    assert parent.get(f"/bookings/{new_id}/cancel").status_code in (302, 404)
    access = parent.get("/my-data/access").get_data(as_text=True)
    # The child's access log keeps staff's work on the appointment from the parent.
    assert "Terminanfrage beantwortet" in lara.get("/my-data/access").get_data(as_text=True)
    assert "Terminanfrage beantwortet" not in access
    assert "(Termine)" not in access
    assert status_of(app, new_id) == "confirmed"


def test_a_second_move_request_for_the_same_appointment_is_refused_by_the_database(
        app, client, auth, confirmed, monkeypatch):
    """Two requests at once both pass the check for a pending move before either holds
    a lock: the database keeps the second out."""
    from shared.services import bookings as service

    bookable, _person, old_id = confirmed
    monkeypatch.setattr(service, "pending_move", lambda booking: None)
    first = f"/bookings/{old_id}/move/{tomorrow_slot_token(app, bookable, index=1)}"
    second = f"/bookings/{old_id}/move/{tomorrow_slot_token(app, bookable, index=2)}"
    assert submit(client, first, {}, form_url=first).status_code == 302
    response = submit(client, second, {}, form_url=second)
    assert response.status_code in (302, 409)
    with app.app_context():
        moves = db.session.scalars(select(Booking)
                                   .where(Booking.replaces_booking_id == old_id)).all()
        assert [m.status for m in moves] == ["requested"]
    page = client.get("/bookings", follow_redirects=True).get_data(as_text=True)
    assert "data-moving-to" in page


def test_a_move_that_ran_out_unanswered_makes_way_for_a_new_one(app, client, confirmed):
    bookable, _person, old_id = confirmed
    first = f"/bookings/{old_id}/move/{tomorrow_slot_token(app, bookable, index=1)}"
    assert submit(client, first, {}, form_url=first).status_code == 302
    with app.app_context():
        db.session.execute(update(Booking).where(Booking.replaces_booking_id == old_id)
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    second = f"/bookings/{old_id}/move/{tomorrow_slot_token(app, bookable, index=2)}"
    assert submit(client, second, {}, form_url=second).status_code == 302
    with app.app_context():
        statuses = sorted(db.session.scalars(select(Booking.status).where(
            Booking.replaces_booking_id == old_id)))
        assert statuses == ["expired", "requested"]


def test_erasure_shreds_the_video_room_with_the_key(app, client, auth, make_client,
                                                    make_staff, make_bookable):
    from tests.portal.test_erasure import (
        ciphertexts_of,
        confirm_delete,
        opened_by_any_key,
        own_client_id,
        raw_database_bytes,
    )

    bookable = make_bookable()
    auth.login(make_staff(role="admin"), area="staff")
    assert save_online_service(client, bookable, VIDEO).status_code == 302
    auth.logout("staff")
    person = make_client()
    auth.login(person)
    request_slot(client, bookable, tomorrow_slot_token(app, bookable, index=-1))
    auth.logout()
    with app.app_context():
        booking_id = db.session.scalar(select(Booking.id))
    staff_decides(client, auth, bookable, booking_id)
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        room, blob = booking.video_room, booking.video_room_ciphertext
        blobs = [b for b in ciphertexts_of([own_client_id(person.account_id)])
                 if b[0] == blob]
        assert len(blobs) == 1  # declared in the catalogue, found like every other field
        assert opened_by_any_key(blobs) == [blob]
    auth.login(person)
    assert confirm_delete(client).status_code == 302
    with app.app_context():
        assert opened_by_any_key(blobs) == []
        assert room.encode() not in raw_database_bytes(app)
