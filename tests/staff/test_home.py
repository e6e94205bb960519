"""The staff start page answers "what do I need to do now?" for each role: today's own
appointments (names link to the files one may open), the booking requests waiting, the
correction requests and, for admins, erasure checks and emergency openings with the dates
they are due. Names shown are logged as a look at the booking lists; the page costs the
same number of statements for 3 or 30 rows of everything."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from shared.extensions import db
from shared.i18n import format_day
from shared.models import AccessEvent, Booking, Client, DataKey
from shared.models.base import utcnow
from shared.models.casefile import BreakGlassGrant, CorrectionRequest
from shared.services import availability
from tests.conftest import assign_caseworker, get_counting_statements, staff_member_id


def new_client(full_name: str) -> Client:
    """A client without an account (a person staff registered), inside an app context."""
    from shared.services.accounts import set_client_name

    data_key = DataKey.generate()
    client = Client(data_key=data_key)
    db.session.add_all([data_key, client])
    set_client_name(client=client, full_name=full_name)
    return client


def today_at(app, hour: int, minute: int = 0) -> datetime:
    """A moment of today in the organisation's zone."""
    with app.app_context():
        zone = availability.local_zone()
        day = utcnow().astimezone(zone).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def add_booking(app, bookable, name: str, start: datetime, status: str = "confirmed",
                created_at: datetime | None = None):
    """A booking of a new client ``name`` with the bookable's caseworker; its client id."""
    with app.app_context():
        client = new_client(name)
        db.session.add(Booking(client_id=client.id, data_key=client.data_key,
                               service_id=bookable.service_id,
                               staff_member_id=bookable.staff_member_id, start_at=start,
                               end_at=start + timedelta(minutes=45), status=status,
                               created_at=created_at or utcnow()))
        db.session.commit()
        return client.id


def add_correction(app, client_id, received: datetime) -> None:
    with app.app_context():
        client = db.session.get(Client, client_id)
        request = CorrectionRequest(client_id=client.id, data_key=client.data_key,
                                    about="other", created_at=received)
        request.message = "Meine Telefonnummer ist falsch."
        db.session.add(request)
        db.session.commit()


def add_restricted(app, name: str, since: datetime) -> None:
    """A client who asked for erasure: the file is restricted and waits for its check."""
    with app.app_context():
        client = new_client(name)
        client.restricted_at = since
        db.session.commit()


def add_opening(app, person, name: str, at: datetime) -> None:
    """A file opened by break-glass that no admin has reviewed yet."""
    member_id = staff_member_id(app, person)
    with app.app_context():
        client = new_client(name)
        db.session.flush()  # the grant names the client by id only
        grant = BreakGlassGrant(client_id=client.id, data_key=client.data_key,
                                staff_member_id=member_id, created_at=at)
        grant.reason = "Notfall am Telefon, Akte dringend gebraucht"
        db.session.add(grant)
        db.session.commit()


def german_day(app, moment) -> str:
    with app.test_request_context("/"), force_locale("de"):
        return format_day(moment, "medium")


def section(html: str, name: str) -> str:
    found = re.search(rf'<section[^>]*data-section="{name}".*?</section>', html, re.S)
    return found.group(0) if found else ""


@pytest.fixture
def two_caseworkers(make_bookable):
    return make_bookable(name="Elternberatung"), make_bookable(name="Familienhilfe")


def test_a_caseworker_sees_only_their_own_appointments_of_today(app, client, auth,
                                                               two_caseworkers):
    mine, theirs = two_caseworkers
    mia = add_booking(app, mine, "Mia Demir", today_at(app, 9))
    add_booking(app, mine, "Jonas Weber", today_at(app, 14, 30), status="requested")
    add_booking(app, theirs, "Lea Fischer", today_at(app, 10))  # a colleague's
    add_booking(app, mine, "Tom Morgen", today_at(app, 9) + timedelta(days=1))
    assign_caseworker(app, mia, mine.staff)

    auth.login(mine.staff, area="staff")
    html = client.get("/staff/").get_data(as_text=True)
    today = section(html, "today")
    assert "Ihre Termine heute" in today
    assert "09:00–09:45" in today
    assert "14:30–15:15" in today
    assert "Elternberatung" in today
    assert "Lea Fischer" not in html
    assert "Tom Morgen" not in today
    # Mia's file opens without a reason (assigned): her name links to it.
    assert f'href="/staff/clients/{mia}"' in today
    assert today.index("Mia Demir") < today.index("Jonas Weber")
    # Jonas' request waits for this caseworker; the colleague's requests are not theirs.
    requests = section(html, "requests")
    assert "1 Anfrage wartet auf Antwort." in requests
    assert "Jonas Weber" in requests
    assert 'href="/staff/bookings"' in requests
    # Caseworkers answer corrections of their clients; erasures and reviews are for admins.
    assert section(html, "corrections")
    assert not section(html, "erasures")
    assert not section(html, "break-glass")
    with app.app_context():
        shown = {e.client_id: e for e in db.session.scalars(select(AccessEvent))}
    assert mia in shown
    assert shown[mia].purpose == "booking-lists"
    assert shown[mia].category == "bookings"


def test_reception_sees_requests_by_name_without_links_to_files(app, client, auth,
                                                                 two_caseworkers, make_staff):
    mine, _theirs = two_caseworkers
    add_booking(app, mine, "Mia Demir", today_at(app, 9) + timedelta(days=2),
                status="requested")
    auth.login(make_staff(role="reception"), area="staff")
    html = client.get("/staff/").get_data(as_text=True)
    assert not section(html, "today")  # reception holds no appointments
    requests = section(html, "requests")
    assert "Mia Demir" in requests
    assert "/staff/clients/" not in html
    assert not section(html, "corrections")
    assert not section(html, "erasures")
    assert not section(html, "break-glass")


def test_an_admin_sees_what_is_due_with_its_dates(app, client, auth, two_caseworkers,
                                                   make_staff):
    mine, _theirs = two_caseworkers
    now = utcnow()
    mia = add_booking(app, mine, "Mia Demir", now - timedelta(days=40))
    add_correction(app, mia, now - timedelta(days=35))  # answer-by date passed
    add_correction(app, mia, now - timedelta(days=2))
    add_restricted(app, "Alt Gelöscht", now - timedelta(days=3))
    add_opening(app, mine.staff, "Notfall Kind", now - timedelta(days=1))
    admin = make_staff(role="admin")
    auth.login(admin, area="staff")
    html = client.get("/staff/").get_data(as_text=True)

    corrections = section(html, "corrections")
    assert "2 Berichtigungsanfragen sind offen." in corrections
    due = german_day(app, now - timedelta(days=35) + timedelta(days=30))
    assert f"Die älteste bis {due} beantworten" in corrections
    assert "1 überfällig" in corrections
    erasures = section(html, "erasures")
    assert "1 eingeschränkte Akte wartet auf Ihre Prüfung." in erasures
    assert german_day(app, now - timedelta(days=3) + timedelta(days=30)) in erasures
    assert "überfällig" not in erasures
    assert 'href="/staff/erasures"' in erasures
    opening = section(html, "break-glass")
    assert "1 im Notfall geöffnete Akte wartet auf Ihre Prüfung." in opening
    assert german_day(app, now - timedelta(days=1)) in opening
    assert 'href="/staff/break-glass"' in opening
    # Counts and dates only: nobody's name, no reason, no request text.
    for secret in ("Alt Gelöscht", "Notfall Kind", "Notfall am Telefon", "Telefonnummer"):
        assert secret not in html
    with app.app_context():
        assert db.session.scalar(select(AccessEvent)) is None  # no name shown, none logged


def fill(app, bookable, start: int, stop: int) -> None:
    """Rows ``start`` to ``stop - 1`` of everything the start page sums up."""
    now = utcnow()
    for number in range(start, stop):
        name = f"Klientin{number:03d} Muster"
        client_id = add_booking(app, bookable, name, today_at(app, 0) + timedelta(
            minutes=20 * number))
        add_booking(app, bookable, f"Anfrage{number:03d}", now + timedelta(days=2, hours=number),
                    status="requested", created_at=now - timedelta(minutes=100 - number))
        add_correction(app, client_id, now - timedelta(days=number))
        # The caseworker answers the corrections of the clients assigned to them.
        assign_caseworker(app, client_id, bookable.staff)
        add_restricted(app, f"Gelöscht{number:03d}", now - timedelta(days=number))
        add_opening(app, bookable.staff, f"Notfall{number:03d}", now - timedelta(hours=number))


@pytest.mark.parametrize("role", ["caseworker", "admin"])
def test_the_start_page_costs_the_same_statements_for_3_and_30_rows(app, client, auth,
                                                                     make_bookable, make_staff,
                                                                     role):
    bookable = make_bookable(name="Elternberatung")
    person = bookable.staff if role == "caseworker" else make_staff(role="admin")
    fill(app, bookable, 0, 3)
    auth.login(person, area="staff")
    client.get("/staff/")  # the first request warms caches that are not the page's cost
    few, few_count = get_counting_statements(app, client, "/staff/")
    fill(app, bookable, 3, 30)
    many, many_count = get_counting_statements(app, client, "/staff/")
    assert few.status_code == many.status_code == 200
    assert many_count == few_count
    html = many.get_data(as_text=True)
    # Bounded lists, counted in SQL: the first five requests by name, all thirty counted.
    assert "30 Anfragen warten auf Antwort." in html
    assert len(re.findall(r"Anfrage\d{3}", html)) == 5
    assert "30 Berichtigungsanfragen sind offen." in html
    if role == "caseworker":
        assert len(re.findall(r"Klientin\d{3} Muster", section(html, "today"))) == 30
    else:
        assert "30 eingeschränkte Akten warten auf Ihre Prüfung." in html
        assert "30 im Notfall geöffnete Akten warten auf Ihre Prüfung." in html


# Pages reached by being sent there, not by a link: the step-up before a sensitive action
# and the second factor's set-up (before it exists, every page leads there).
SENT_THERE = {"staff.reauth", "staff.setup_second_factor"}


@pytest.mark.parametrize("role", ["reception", "caseworker", "admin"])
def test_every_page_a_role_may_open_is_linked_from_the_menu_or_one_step_further(
        app, client, auth, make_staff, role):
    """Nothing is reachable only by typing its address: each GET page without parameters
    that the policy opens to the role is in the menu or linked from a page the menu names."""
    from shared import policy

    auth.login(make_staff(role=role), area="staff")
    with app.test_request_context():
        from flask import url_for

        wanted = {rule.endpoint: url_for(rule.endpoint) for rule in app.url_map.iter_rules()
                  if rule.endpoint.startswith("staff.") and "GET" in rule.methods
                  and not rule.arguments and rule.endpoint not in policy.OPEN_ENDPOINTS
                  and rule.endpoint not in SENT_THERE
                  and policy.may_use(role, rule.endpoint)}
    home = client.get("/staff/").get_data(as_text=True)
    nav = re.search(r'<nav class="site-nav".*?</nav>', home, re.S).group(0)
    menu = set(re.findall(r'href="([^"#?]+)', nav))
    linked = set(menu)
    for address in menu:
        linked |= set(re.findall(r'href="([^"#?]+)', client.get(address).get_data(as_text=True)))
    assert {endpoint for endpoint, address in wanted.items() if address not in linked} == set()
