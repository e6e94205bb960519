"""The slot picker: one week at a time, the next free time first, a filter by day; visitors
see free times before registering and keep the one they chose while they register."""

import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from shared.extensions import db
from shared.models import Account, AvailabilityException, Booking
from shared.models.base import utcnow
from shared.models.bookings import SlotHold
from shared.services import availability
from tests.conftest import get_counting_statements, submit, tomorrow_slot_token

PASSWORD = "harbour-violet-lantern-92"


def picker(client, service_id, **args) -> str:
    query = "&".join(f"{k}={v}" for k, v in args.items())
    response = client.get(f"/bookings/new/{service_id}" + (f"?{query}" if query else ""))
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def slot_tokens(html: str, service_id) -> list[str]:
    return re.findall(rf'href="/bookings/new/{service_id}/([^"?/]+)', html)


def hold_as_visitor(client, service_id, slot: str):
    url = f"/bookings/new/{service_id}/{slot}"
    return submit(client, url + "/hold", {}, form_url=url)


def today(app) -> date:
    with app.app_context():
        return datetime.now(availability.local_zone()).date()


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def test_a_visitor_sees_services_and_one_week_of_free_times_without_an_account(
        app, client, make_bookable):
    bookable = make_bookable()
    welcome = client.get("/").get_data(as_text=True)  # the way in for a visitor
    assert re.search(r'href="/bookings/new"[^>]*><span class="kern-label">Termin buchen<', welcome)
    services = client.get("/bookings/new")
    assert services.status_code == 200
    assert f"/bookings/new/{bookable.service_id}" in services.get_data(as_text=True)
    html = picker(client, bookable.service_id)
    assert "Nächster freier Termin" in html
    assert "Vorherige Woche" not in html  # nothing before this week
    assert "Nächste Woche" in html
    tokens = slot_tokens(html, bookable.service_id)
    first = today(app)
    with app.app_context():
        zone = availability.local_zone()
        days = {availability.parse_slot_token(t)[1].astimezone(zone).date() for t in tokens}
    # Only this week (from today on): 08:00–20:00 every day has 13 times a day.
    assert days <= {monday(first) + timedelta(days=i) for i in range(7)}
    assert min(days) >= first
    assert len(tokens) <= 13 * 7 + 1  # the next free time is shown twice
    # The next free appointment is the first choice on the page, written as words.
    assert tokens[0] == tomorrow_slot_token(app, bookable) or min(days) == first
    assert not re.search(r"\d{4}-\d{2}-\d{2}", re.sub(r'href="[^"]*"', "", html))


def test_weeks_page_forward_to_the_horizon_and_never_before_this_week(app, client,
                                                                      make_bookable):
    bookable = make_bookable()
    this_monday = monday(today(app))
    html = picker(client, bookable.service_id)
    following = re.search(r'href="[^"]*week=([\d-]+)"[^>]*>Nächste Woche', html).group(1)
    assert following == (this_monday + timedelta(days=7)).isoformat()
    html = picker(client, bookable.service_id, week=following)
    assert f"week={this_monday.isoformat()}" in html
    assert "Vorherige Woche" in html
    # Far beyond the horizon (42 days) or in the past: the nearest week that can be booked.
    last_day = today(app) + timedelta(days=41)
    late = picker(client, bookable.service_id, week="2099-01-05")
    assert "Nächste Woche" not in late
    with app.app_context():
        zone = availability.local_zone()
        late_days = {availability.parse_slot_token(t)[1].astimezone(zone).date()
                     for t in slot_tokens(late, bookable.service_id)[1:]}
    assert max(late_days) <= last_day
    assert min(late_days) >= monday(last_day)
    early = picker(client, bookable.service_id, week="2001-01-01")
    assert "Vorherige Woche" not in early
    # Not a date at all: a broken link.
    for args in ({"week": "next"}, {"week": "2026-13-40"}, {"day": "monday"}):
        query = "&".join(f"{k}={v}" for k, v in args.items())
        assert client.get(f"/bookings/new/{bookable.service_id}?{query}").status_code == 404


def test_the_day_filter_shows_one_day_and_offers_the_days_with_free_times(app, client,
                                                                          make_bookable):
    bookable = make_bookable()
    next_monday = monday(today(app)) + timedelta(days=7)
    week = next_monday.isoformat()
    html = picker(client, bookable.service_id, week=week)
    assert "Alle Tage" in html
    day_links = re.findall(rf'href="[^"]*week={week}&amp;day=([\d-]+)"', html)
    assert day_links == [(next_monday + timedelta(days=i)).isoformat() for i in range(7)]
    wednesday = day_links[2]
    one_day = picker(client, bookable.service_id, week=week, day=wednesday)
    assert one_day.count('class="kern-heading-small day-heading"') == 1
    assert "Mittwoch" in one_day
    with app.app_context():
        zone = availability.local_zone()
        shown = {availability.parse_slot_token(t)[1].astimezone(zone).date().isoformat()
                 for t in slot_tokens(one_day, bookable.service_id)[1:]}
    assert shown == {wednesday}
    # A day outside the week shows the whole week.
    other = picker(client, bookable.service_id, week=week, day="2001-01-01")
    assert other.count('class="kern-heading-small day-heading"') == 7


def test_a_week_without_free_times_says_so_and_offers_the_next_week_with_some(
        app, client, make_bookable):
    bookable = make_bookable()
    next_monday = monday(today(app)) + timedelta(days=7)
    with app.app_context():
        for i in range(14):  # absent the whole of next week and the one after
            db.session.add(AvailabilityException(staff_member_id=bookable.staff_member_id,
                                                 day=next_monday + timedelta(days=i)))
        db.session.commit()
    html = picker(client, bookable.service_id, week=next_monday.isoformat())
    assert "In dieser Woche ist keine Zeit frei." in html
    third = (next_monday + timedelta(days=14)).isoformat()
    assert re.search(rf'href="[^"]*week={third}"[^>]*><span class="kern-label">'
                     r"Nächste Woche mit freien Zeiten", html)
    assert "Nächster freier Termin" in html  # still this week's


def test_a_held_time_is_busy_for_everyone_else(app, client, make_bookable, make_client):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    response = hold_as_visitor(client, bookable.service_id, slot)
    assert response.headers["Location"] == "/register"
    notice = client.get("/register").get_data(as_text=True)
    assert re.search(r"Ihre Zeit \w+, \d+\. \w+ \d{4}, \d\d:\d\d ist bis \d\d:\d\d Uhr für Sie "
                     r"reserviert", notice)
    # The visitor still sees their own time; another visitor does not.
    assert slot in slot_tokens(picker(client, bookable.service_id), bookable.service_id)
    other = app.test_client()
    assert slot not in slot_tokens(picker(other, bookable.service_id), bookable.service_id)
    assert hold_as_visitor(other, bookable.service_id, slot).headers["Location"].startswith(
        f"/bookings/new/{bookable.service_id}?week=")
    # A client signed in on another device cannot request it either.
    person, third = make_client(), app.test_client()
    submit(third, "/login", {"email": person.email, "password": person.password})
    url = f"/bookings/new/{bookable.service_id}/{slot}"
    page = third.get(url).get_data(as_text=True)
    own = re.search(r'name="client"[^>]*value="([^"]+)"', page).group(1)
    assert submit(third, url, {"client": own, "note": ""}).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count(Booking.id))) == 0
        hold = db.session.scalar(select(SlotHold))
        # 30 minutes, and the token is stored only as a hash.
        assert timedelta(minutes=29) < hold.expires_at - utcnow() <= timedelta(minutes=30)
        assert len(hold.token_hash) == 32


def test_an_expired_hold_frees_the_time_and_is_cleaned_up_by_the_next_hold(
        app, client, make_bookable):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    hold_as_visitor(client, bookable.service_id, slot)
    with app.app_context():
        hold = db.session.scalar(select(SlotHold))
        hold.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    other = app.test_client()
    assert slot in slot_tokens(picker(other, bookable.service_id), bookable.service_id)
    assert hold_as_visitor(other, bookable.service_id, slot).headers["Location"] == "/register"
    with app.app_context():
        assert db.session.scalar(select(func.count(SlotHold.id))) == 1  # the old one went


def test_choosing_another_time_lets_the_first_one_go(app, client, make_bookable):
    bookable = make_bookable()
    first, second = (tomorrow_slot_token(app, bookable, i) for i in (0, 1))
    hold_as_visitor(client, bookable.service_id, first)
    hold_as_visitor(client, bookable.service_id, second)
    with app.app_context():
        holds = db.session.scalars(select(SlotHold)).all()
        assert [availability.Slot(h.staff_member_id, h.start_at, h.end_at).token
                for h in holds] == [second]


def register_and_confirm(client, outbox, email: str):
    assert submit(client, "/register", {"email": email}).status_code == 200
    confirm = outbox.link(email, "/confirm/")
    return submit(client, confirm, {"password": PASSWORD})


def test_a_visitor_registers_and_requests_the_held_time(app, client, make_bookable, outbox):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable, 2)
    hold_as_visitor(client, bookable.service_id, slot)
    done = register_and_confirm(client, outbox, "neu@example.org")
    url = f"/bookings/new/{bookable.service_id}/{slot}"
    assert done.headers["Location"] == url
    page = client.get(url).get_data(as_text=True)
    assert "Willkommen" in page
    sent = submit(client, url, {"client": re.search(
        r'name="client"[^>]*value="([^"]+)"', page).group(1), "note": ""})
    assert sent.headers["Location"] == "/bookings"
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        assert booking.status == "requested"
        assert availability.Slot(booking.staff_member_id, booking.start_at,
                                 booking.end_at).token == slot
        assert db.session.scalar(select(func.count(SlotHold.id))) == 0


def test_a_hold_that_ran_out_and_was_taken_says_so_and_shows_the_picker(
        app, client, make_bookable, make_client, outbox):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    hold_as_visitor(client, bookable.service_id, slot)
    with app.app_context():
        db.session.scalar(select(SlotHold)).expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    rival = app.test_client()  # a client in another browser takes the time meanwhile
    person = make_client()
    assert submit(rival, "/login", {"email": person.email,
                                    "password": person.password}).status_code == 302
    url = f"/bookings/new/{bookable.service_id}/{slot}"
    page = rival.get(url).get_data(as_text=True)
    own = re.search(r'name="client"[^>]*value="([^"]+)"', page).group(1)
    assert submit(rival, url, {"client": own, "note": ""}).status_code == 302

    done = register_and_confirm(client, outbox, "spaet@example.org")
    assert done.headers["Location"].startswith(f"/bookings/new/{bookable.service_id}?week=")
    html = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "inzwischen leider vergeben" in html
    assert slot not in slot_tokens(html, bookable.service_id)


def test_a_hold_that_ran_out_but_is_still_free_goes_on_to_the_request(
        app, client, make_bookable, outbox):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    hold_as_visitor(client, bookable.service_id, slot)
    with app.app_context():
        db.session.scalar(select(SlotHold)).expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    done = register_and_confirm(client, outbox, "langsam@example.org")
    assert done.headers["Location"] == f"/bookings/new/{bookable.service_id}/{slot}"
    assert "noch frei" in client.get(done.headers["Location"]).get_data(as_text=True)


def test_signing_in_with_a_held_time_continues_to_it(app, client, make_bookable,
                                                     make_client):
    bookable = make_bookable()
    person = make_client()
    slot = tomorrow_slot_token(app, bookable)
    hold_as_visitor(client, bookable.service_id, slot)
    signed_in = submit(client, "/login", {"email": person.email, "password": person.password})
    assert signed_in.headers["Location"] == f"/bookings/new/{bookable.service_id}/{slot}"


def test_visitors_cannot_request_without_an_account(app, client, make_bookable):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    url = f"/bookings/new/{bookable.service_id}/{slot}"
    page = client.get(url).get_data(as_text=True)
    assert "Zeit reservieren und registrieren" in page
    assert 'name="client"' not in page
    assert client.post(url, data={"client": "x"}).status_code in (400, 405)
    with app.app_context():
        assert db.session.scalar(select(func.count(Booking.id))) == 0


def test_staff_accounts_are_sent_to_the_staff_area(app, client, auth, make_staff,
                                                   make_bookable):
    bookable = make_bookable()
    auth.login(make_staff(), area="staff")
    response = client.get(f"/bookings/new/{bookable.service_id}")
    assert response.headers["Location"].startswith("/staff")


@pytest.mark.parametrize("signed_in", [False, True])
def test_the_picker_runs_the_same_statements_however_full_the_calendar(
        app, client, auth, make_bookable, make_client, signed_in):
    bookable = make_bookable()
    tokens = [tomorrow_slot_token(app, bookable, i) for i in range(12)]
    if signed_in:
        auth.login(make_client())
    url = f"/bookings/new/{bookable.service_id}"
    # Warm-up: the first request of a session may set things up once.
    client.get(url)
    _page, empty = get_counting_statements(app, client, url)
    start = monday(today(app)) + timedelta(days=7)
    person = make_client()
    with app.app_context():
        owner = db.session.get(Account, person.account_id).client
        for slot_token in tokens[:10]:
            _staff, at = availability.parse_slot_token(slot_token)
            db.session.add(Booking(client_id=owner.id, data_key=owner.data_key,
                                   service_id=bookable.service_id,
                                   staff_member_id=bookable.staff_member_id,
                                   start_at=at, end_at=at + timedelta(minutes=45),
                                   status="confirmed"))
        for i in range(5):
            db.session.add(AvailabilityException(staff_member_id=bookable.staff_member_id,
                                                 day=start + timedelta(days=i)))
        db.session.commit()
    hold_as_visitor(app.test_client(), bookable.service_id, tokens[11])
    _page, full = get_counting_statements(app, client, url)
    _page, later = get_counting_statements(app, client, url + f"?week={start.isoformat()}")
    assert empty == full == later
    assert full <= 12


def test_the_services_page_offers_to_continue_with_a_held_time(app, client, make_bookable,
                                                               make_client):
    """Also where a sign-up with a passkey ends (on the recovery codes, then security)."""
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    assert "Ihre reservierte Zeit" not in client.get("/bookings/new").get_data(as_text=True)
    hold_as_visitor(client, bookable.service_id, slot)
    page = client.get("/bookings/new").get_data(as_text=True)
    assert "Ihre reservierte Zeit" in page
    assert re.search(r'href="/register"><span class="kern-label">Mit dieser Zeit', page)
    person = make_client()
    submit(client, "/login", {"email": person.email, "password": person.password})
    page = client.get("/bookings/new").get_data(as_text=True)
    assert f'href="/bookings/new/{bookable.service_id}/{slot}"' in page
    with app.app_context():
        db.session.scalar(select(SlotHold)).expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    assert "Ihre reservierte Zeit" not in client.get("/bookings/new").get_data(as_text=True)


def test_one_address_holds_at_most_ten_times_an_hour(app, client, make_bookable):
    bookable = make_bookable()
    tokens = [tomorrow_slot_token(app, bookable, i) for i in range(11)]
    for token in tokens[:10]:
        assert hold_as_visitor(app.test_client(), bookable.service_id, token).status_code == 302
    assert hold_as_visitor(client, bookable.service_id, tokens[10]).status_code == 429
    with app.app_context():
        assert db.session.scalar(select(func.count(SlotHold.id))) == 10


def test_the_cap_counts_an_ipv6_line_as_one_address(app, make_bookable):
    """A home line or phone gets a whole IPv6 /64: new addresses from it share one cap
    (found in review: 13 addresses of one /64 held a whole day)."""
    bookable = make_bookable()
    tokens = [tomorrow_slot_token(app, bookable, i) for i in range(12)]

    def visitor(address: str):
        browser = app.test_client()
        browser.environ_base["REMOTE_ADDR"] = address
        return browser

    for number, token in enumerate(tokens[:10], start=1):
        browser = visitor(f"2001:db8:1:2::{number:x}")
        assert hold_as_visitor(browser, bookable.service_id, token).status_code == 302
    same_line = visitor("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert hold_as_visitor(same_line, bookable.service_id, tokens[10]).status_code == 429
    next_line = visitor("2001:db8:1:3::1")  # another household
    assert hold_as_visitor(next_line, bookable.service_id, tokens[11]).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count(SlotHold.id))) == 11


def test_a_hold_whose_time_has_passed_is_forgotten_at_sign_in(app, client, make_bookable,
                                                              make_client):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    hold_as_visitor(client, bookable.service_id, slot)
    staff_part, stamp = slot.split("_")
    with client.session_transaction() as browser_session:
        held = browser_session["slot_hold"]
        held["slot"] = f"{staff_part}_{int(stamp) - 3 * 86400}"  # days ago
        browser_session["slot_hold"] = held
    with app.app_context():
        db.session.scalar(select(SlotHold)).expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    person = make_client()
    signed_in = submit(client, "/login", {"email": person.email, "password": person.password})
    assert signed_in.headers["Location"] == "/home"
    assert "vergeben" not in client.get("/home").get_data(as_text=True)
