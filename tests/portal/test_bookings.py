"""Clients book slots (for themselves or a child), see the status, cancel, answer proposals,
download .ics and subscribe to a calendar feed; bad input changes nothing."""

import re
from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select

from shared.extensions import db
from shared.models import Booking, Guardianship
from shared.models.base import utcnow
from tests.conftest import csrf_token, submit, tomorrow_slot_token


def book(client, bookable, slot, *, for_id=None, note="", expect_form=True):
    url = f"/bookings/new/{bookable.service_id}/{slot}"
    page = client.get(url)
    if page.status_code != 200:
        return page
    html = page.get_data(as_text=True)
    chosen = for_id or re.search(r'name="client"[^>]*value="([^"]+)"', html).group(1)
    return submit(client, url, {"client": chosen, "note": note})


def test_two_taps_from_service_to_slot_then_request(app, client, auth, make_client,
                                                    make_bookable, outbox):
    bookable = make_bookable()
    person = make_client(full_name="Mia Demir")
    auth.login(person)
    services = client.get("/bookings/new").get_data(as_text=True)
    assert f"/bookings/new/{bookable.service_id}" in services
    slots = client.get(f"/bookings/new/{bookable.service_id}").get_data(as_text=True)
    first = re.search(rf'href="(/bookings/new/{bookable.service_id}/[^"?]+)', slots).group(1)
    response = book(client, bookable, first.rsplit("/", 1)[1], note="Bitte mit Dolmetscherin")
    assert response.headers["Location"] == "/bookings"
    listing = client.get("/bookings").get_data(as_text=True)
    assert 'data-status="requested"' in listing
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        assert booking.note == "Bitte mit Dolmetscherin"
        assert b"Dolmetscherin" not in booking.note_ciphertext
        # Held 48 h, but never past the appointment itself.
        assert booking.expires_at <= booking.start_at
        assert booking.expires_at >= min(booking.created_at + timedelta(hours=47),
                                         booking.start_at)
    mail = outbox.last_to(person.email)
    assert "Dolmetscherin" not in mail.get_content()
    assert "/bookings" in mail.get_content()


def test_a_pending_request_holds_its_slot(app, client, auth, make_client, make_bookable):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    auth.login(make_client())
    assert book(client, bookable, slot).status_code == 302
    auth.logout()
    auth.login(make_client())
    slots = client.get(f"/bookings/new/{bookable.service_id}").get_data(as_text=True)
    assert slot not in slots
    taken = book(client, bookable, slot)
    assert taken.status_code == 409
    assert ("Diese Zeit wurde leider gerade vergeben. Bitte wählen Sie eine andere."
            in taken.get_data(as_text=True))
    with app.app_context():
        assert len(db.session.scalars(select(Booking)).all()) == 1


def test_an_expired_request_frees_the_slot(app, client, auth, make_client, make_bookable):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    auth.login(make_client())
    book(client, bookable, slot)
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        booking.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    auth.logout()
    auth.login(make_client())
    assert book(client, bookable, slot).status_code == 302
    with app.app_context():
        statuses = sorted(b.status for b in db.session.scalars(select(Booking)))
    assert statuses == ["expired", "requested"]


def test_bad_input_gets_a_clear_message_and_changes_nothing(app, client, auth, make_client,
                                                            make_bookable):
    bookable = make_bookable()
    other_service = make_bookable(name="Anderes Angebot")
    person = make_client()
    auth.login(person)
    slot = tomorrow_slot_token(app, bookable)
    staff_part, stamp = slot.split("_")
    cases = [
        f"{staff_part}_{int(stamp) - 3 * 86400}",  # in the past
        f"{staff_part}_{int(stamp) - int(stamp) % 86400 + 3 * 3600}",  # outside hours
        f"{staff_part}_{int(stamp) + 7}",  # tampered: not on the slot grid
        tomorrow_slot_token(app, other_service).split("_")[0] + "_" + stamp,  # not offered
    ]
    for token in cases:
        response = book(client, bookable, token)
        assert response.status_code == 400, token
        assert ("Diese Zeit kann nicht (mehr) gebucht werden. Bitte wählen Sie eine andere."
                in response.get_data(as_text=True)), token
    assert client.get(f"/bookings/new/{bookable.service_id}/garbage").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Booking)) is None


def test_booking_for_another_parents_child_is_refused(app, client, auth, make_client,
                                                      make_bookable):
    from tests.portal.test_household import add_child

    bookable = make_bookable()
    auth.login(make_client())
    add_child(client)
    with app.app_context():
        child_id = db.session.scalar(select(Guardianship)).dependant_id
    auth.logout()
    auth.login(make_client())
    response = book(client, bookable, tomorrow_slot_token(app, bookable), for_id=str(child_id))
    assert response.status_code == 200  # the choice is not even offered: the form again
    with app.app_context():
        assert db.session.scalar(select(Booking)) is None


def test_parent_books_for_a_child_and_sees_for_whom(app, client, auth, make_client,
                                                    make_bookable):
    from tests.portal.test_household import add_child

    bookable = make_bookable()
    auth.login(make_client())
    add_child(client, full_name="Emil Demir")
    with app.app_context():
        child_id = db.session.scalar(select(Guardianship)).dependant_id
    response = book(client, bookable, tomorrow_slot_token(app, bookable), for_id=str(child_id))
    assert response.status_code == 302
    assert "Emil Demir" in client.get("/bookings").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Booking)).client_id == child_id


def test_cancel_before_the_cut_off_and_call_after_it(app, client, auth, make_client,
                                                     make_bookable):
    bookable = make_bookable()
    auth.login(make_client())
    book(client, bookable, tomorrow_slot_token(app, bookable, index=-1))
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        booking.start_at = utcnow() + timedelta(hours=30)
        booking.end_at = booking.start_at + timedelta(minutes=45)
        db.session.commit()
        booking_id = booking.id
    ok = submit(client, f"/bookings/{booking_id}/cancel", {}, form_url="/bookings")
    assert ok.status_code == 302
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "cancelled"

    book(client, bookable, tomorrow_slot_token(app, bookable, index=0))
    with app.app_context():
        late = db.session.scalar(select(Booking).where(Booking.status == "requested"))
        late.status = "confirmed"  # a request can always be withdrawn; the cut-off is for
        late.start_at = utcnow() + timedelta(hours=5)  # confirmed appointments
        late.end_at = late.start_at + timedelta(minutes=45)
        db.session.commit()
        late_id = late.id
    page = client.get("/bookings").get_data(as_text=True)
    assert "+49 30 1234567" in page
    refused = submit(client, f"/bookings/{late_id}/cancel", {}, form_url="/bookings",
                     follow_redirects=True)
    assert "+49 30 1234567" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Booking, late_id).status == "confirmed"


def test_staff_hear_when_a_confirmed_appointment_is_cancelled(app, client, auth, make_client,
                                                              make_bookable, outbox):
    bookable = make_bookable()
    auth.login(make_client(full_name="Mia Demir"))
    book(client, bookable, tomorrow_slot_token(app, bookable), note="Bitte Dolmetscherin")
    with app.app_context():
        request_id = db.session.scalar(select(Booking.id))
    submit(client, f"/bookings/{request_id}/cancel", {}, form_url="/bookings")
    assert outbox.to(bookable.staff.email) == []  # a withdrawn request: the queue shows it
    book(client, bookable, tomorrow_slot_token(app, bookable))
    with app.app_context():
        booking = db.session.scalar(select(Booking).where(Booking.status == "requested"))
        booking.status = "confirmed"
        booking.start_at = utcnow() + timedelta(hours=30)  # before the cancellation cut-off
        booking.end_at = booking.start_at + timedelta(minutes=45)
        db.session.commit()
        booking_id = booking.id
    assert submit(client, f"/bookings/{booking_id}/cancel", {},
                  form_url="/bookings").status_code == 302
    mail = outbox.last_to(bookable.staff.email).get_content()
    assert "Elternberatung" in mail
    assert "/staff/bookings/day?day=" in mail
    assert "Mia Demir" not in mail
    assert "Dolmetscherin" not in mail


def test_confirmed_appointment_ics_and_revocable_feed(app, client, auth, make_client,
                                                     make_bookable):
    from shared.services import bookings as booking_service

    bookable = make_bookable()
    auth.login(make_client())
    book(client, bookable, tomorrow_slot_token(app, bookable))
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        booking.status = "confirmed"
        db.session.commit()
        booking_id, start = booking.id, booking.start_at
    ics = client.get(f"/bookings/{booking_id}/appointment.ics")
    assert ics.status_code == 200
    assert ics.mimetype == "text/calendar"
    assert "attachment" in ics.headers["Content-Disposition"]
    event = next(c for c in Calendar.from_ical(ics.data).walk("VEVENT"))
    assert event.get("dtstart").dt == start
    assert str(event.get("summary")) == "Elternberatung"

    created = submit(client, "/bookings/calendar-feed", {}, form_url="/bookings")
    feed_path = re.search(r'id="feed-url">https?://[^/]+(/calendar/[^<]+)<',
                          created.get_data(as_text=True)).group(1)
    anonymous = app.test_client()
    feed = anonymous.get(feed_path)
    assert feed.status_code == 200
    assert str(booking_id) in feed.get_data(as_text=True)
    submit(client, "/bookings/calendar-feed/revoke", {}, form_url="/bookings")
    assert anonymous.get(feed_path).status_code == 404
    assert booking_service is not None


def test_reminders_are_sent_once_even_when_run_twice(app, client, auth, make_client,
                                                     make_bookable, runner, outbox):
    bookable = make_bookable()
    person = make_client()
    auth.login(person)
    book(client, bookable, tomorrow_slot_token(app, bookable))
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        booking.status = "confirmed"
        booking.start_at = utcnow() + timedelta(hours=20)
        booking.end_at = booking.start_at + timedelta(minutes=45)
        db.session.commit()
    before = len(outbox.to(person.email))
    assert "Sent 1" in runner.invoke(args=["bookings", "remind"]).output
    assert "Sent 0" in runner.invoke(args=["bookings", "remind"]).output
    assert len(outbox.to(person.email)) == before + 1


def test_a_young_persons_choice_also_stops_emails_to_the_guardian(app, client, auth,
                                                                  make_client, make_bookable,
                                                                  make_staff, outbox):
    from shared.models import Guardianship
    from shared.services import bookings as booking_service
    from tests.conftest import confirm_in_person
    from tests.portal.test_household import add_child

    bookable = make_bookable()
    parent = make_client()
    auth.login(parent)
    add_child(client, full_name="Lara Demir", birth_date="2008-01-10")
    with app.app_context():
        link = db.session.scalar(select(Guardianship))
        lara = link.dependant_id
    book(client, bookable, tomorrow_slot_token(app, bookable), for_id=str(lara))
    submit(client, f"/household/{lara}/invite", {"email": "lara@example.org"},
           form_url="/household")
    lara_browser = app.test_client()
    submit(lara_browser, outbox.link("lara@example.org", "/confirm/"),
           {"password": "lara-eigenes-passwort-16", "submit": "1"})
    confirm_in_person(app, auth, make_staff(role="caseworker"), lara)
    submit(lara_browser, f"/household/guardians/{link.id}", {"access": "none"})
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        emails = [a.email for a in booking_service.recipients(booking)]
    assert emails == ["lara@example.org"]
    assert "Elternberatung" not in client.get("/bookings").get_data(as_text=True)


def test_an_expired_hold_cannot_be_confirmed_and_shows_as_expired(app, client, auth,
                                                                  make_client, make_bookable):
    bookable = make_bookable()
    person = make_client()
    auth.login(person)
    book(client, bookable, tomorrow_slot_token(app, bookable))
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        booking.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        booking_id = booking.id
    assert 'data-status="expired"' in client.get("/bookings").get_data(as_text=True)
    auth.logout()
    auth.login(bookable.staff, area="staff")
    response = submit(client, f"/staff/bookings/{booking_id}/confirm", {},
                      form_url="/staff/bookings/day")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "requested"


@pytest.mark.parametrize("config_overrides", [{"base_url": "https://portal.example.org"}])
def test_the_feed_link_uses_the_configured_address_not_the_host_header(app, client, auth,
                                                                       make_client):
    """A forged Host header (a poisoned proxy, a phishing page posting here) must not put
    another site's address into the secret link the client copies into a calendar app."""
    auth.login(make_client())
    # The browser's cookie, sent to a server that answers under the forged name.
    name = app.config["SESSION_COOKIE_NAME"]
    client.set_cookie(name, client.get_cookie(name).value, domain="evil.example")
    forged = {"Host": "evil.example"}
    page = client.get("/bookings", headers=forged).get_data(as_text=True)
    created = client.post("/bookings/calendar-feed", headers=forged,
                          data={"csrf_token": csrf_token(page)})
    assert created.status_code == 200
    link = re.search(r'id="feed-url">([^<]+)<', created.get_data(as_text=True)).group(1)
    assert link.startswith("https://portal.example.org/calendar/")
    assert "evil.example" not in created.get_data(as_text=True)
    assert client.get(link.removeprefix("https://portal.example.org")).status_code == 200


def test_at_most_three_open_requests_per_person(app, client, auth, make_client,
                                                make_bookable):
    """Holds are free to make: without a cap one account could block a whole calendar."""
    bookable = make_bookable()
    auth.login(make_client())
    for _ in range(3):
        assert book(client, bookable, tomorrow_slot_token(app, bookable)).status_code == 302
    refused = book(client, bookable, tomorrow_slot_token(app, bookable),
                   note="Bitte nachmittags")
    assert refused.status_code == 409
    page = refused.get_data(as_text=True)
    assert "bereits 3 offene Anfragen" in page
    assert "Warten Sie bitte, bis wir eine beantworten, oder ziehen Sie eine zurück" in page
    assert "Meine offenen Anfragen ansehen" in page  # the way there, on the same page
    assert "Bitte nachmittags" in page  # nothing typed is lost
    assert client.get("/bookings").get_data(as_text=True).count("Anfrage zurückziehen") == 3
    with app.app_context():
        held = db.session.scalars(select(Booking)).all()
        assert len(held) == 3
        first = min(held, key=lambda b: b.start_at).id
    # Withdrawing one makes room again.
    submit(client, f"/bookings/{first}/cancel", {}, form_url="/bookings")
    assert book(client, bookable, tomorrow_slot_token(app, bookable)).status_code == 302


def test_expired_and_answered_requests_do_not_count(app, client, auth, make_client,
                                                    make_bookable):
    bookable = make_bookable()
    auth.login(make_client())
    for _ in range(3):
        book(client, bookable, tomorrow_slot_token(app, bookable))
    with app.app_context():
        expired, confirmed, _open = db.session.scalars(
            select(Booking).order_by(Booking.start_at)).all()
        expired.expires_at = utcnow() - timedelta(minutes=1)
        confirmed.status = "confirmed"
        db.session.commit()
    assert book(client, bookable, tomorrow_slot_token(app, bookable)).status_code == 302
    assert book(client, bookable, tomorrow_slot_token(app, bookable)).status_code == 302
    assert book(client, bookable, tomorrow_slot_token(app, bookable)).status_code == 409


@pytest.mark.parametrize("config_overrides", [{"max_open_requests": 2}])
def test_the_cap_counts_per_child_and_comes_from_the_config(app, client, auth, make_client,
                                                            make_bookable):
    from tests.portal.test_household import add_child

    bookable = make_bookable()
    parent = make_client()
    auth.login(parent)
    add_child(client, full_name="Emil Demir")
    with app.app_context():
        emil = db.session.scalar(select(Guardianship)).dependant_id
    for _ in range(2):
        response = book(client, bookable, tomorrow_slot_token(app, bookable), for_id=str(emil))
        assert response.status_code == 302
    refused = book(client, bookable, tomorrow_slot_token(app, bookable), for_id=str(emil))
    assert refused.status_code == 409
    assert "bereits 2 offene Anfragen" in refused.get_data(as_text=True)
    # The parent's own requests are counted apart from the child's.
    own = book(client, bookable, tomorrow_slot_token(app, bookable))
    assert own.status_code == 302
    with app.app_context():
        by_client = {}
        for booking in db.session.scalars(select(Booking)):
            by_client[booking.client_id] = by_client.get(booking.client_id, 0) + 1
        assert by_client[emil] == 2
        assert sorted(by_client.values()) == [1, 2]


@pytest.mark.parametrize("config_overrides", [{"max_open_requests_per_account": 4}])
def test_one_account_holds_no_more_than_its_cap_across_everyone_it_books_for(
        app, client, auth, make_client, make_bookable):
    """Children cost nothing to add: without a cap per account, one account with made-up
    children held three slots per child."""
    from tests.portal.test_household import add_child

    bookable = make_bookable()
    auth.login(make_client())
    for name in ("Emil Demir", "Kemal Demir", "Lara Demir"):
        add_child(client, full_name=name)
    with app.app_context():
        children = [str(g.dependant_id) for g in db.session.scalars(select(Guardianship))]
    for child in (children[0], children[0], children[0], children[1]):
        response = book(client, bookable, tomorrow_slot_token(app, bookable), for_id=child)
        assert response.status_code == 302
    refused = book(client, bookable, tomorrow_slot_token(app, bookable), for_id=children[2],
                   note="Bitte vormittags")
    assert refused.status_code == 409
    page = refused.get_data(as_text=True)
    assert "bereits 4 offene Anfragen für sich und die Personen, für die Sie buchen" in page
    assert "Meine offenen Anfragen ansehen" in page
    assert "Bitte vormittags" in page
    # Not for the parent either: the cap counts every request the account made.
    assert book(client, bookable, tomorrow_slot_token(app, bookable)).status_code == 409
    with app.app_context():
        held = db.session.scalars(select(Booking)).all()
        assert len(held) == 4
        first = min(held, key=lambda b: b.start_at).id
    submit(client, f"/bookings/{first}/cancel", {}, form_url="/bookings")
    assert book(client, bookable, tomorrow_slot_token(app, bookable),
                for_id=children[2]).status_code == 302


def test_the_cap_per_account_is_six_by_default(app):
    assert app.extensions["einblick"].config.max_open_requests_per_account == 6
