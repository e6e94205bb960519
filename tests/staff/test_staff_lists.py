"""Staff lists at organisation scale: each shows a page of 25 at a time for the same number
of SQL statements with 3 or 30 rows, pages link to each other in words, and only the
clients on the page shown are written to their access logs. A client search shows at most
25 and asks to narrow it down."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from shared.extensions import db
from shared.models import (
    AccessEvent,
    Booking,
    BreakGlassGrant,
    CorrectionRequest,
    StaffMember,
)
from shared.models.base import utcnow
from shared.services import staff as staff_service
from tests.conftest import counting_statements, csrf_token, get_counting_statements, submit
from tests.staff import test_statement_counts
from tests.staff.test_statement_counts import add_requests, new_client

PAGE = 25
team = test_statement_counts.team  # the fixture: three caseworkers with a service each


def logged_clients(app, client_ids) -> set:
    """The clients among ``client_ids`` whose access log has an entry."""
    with app.app_context():
        return set(db.session.scalars(select(AccessEvent.client_id).distinct()
                                      .where(AccessEvent.client_id.in_(client_ids))))


def events_of(app, client_ids) -> int:
    """How many access events the clients' logs hold (one per visit)."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AccessEvent)
                                 .where(AccessEvent.client_id.in_(client_ids)))


def shown(html: str, pattern: str) -> list[str]:
    return re.findall(pattern, html, re.S)


# -- the booking queue ---------------------------------------------------------------------
def test_the_queue_pages_25_requests_and_logs_only_those_shown(app, client, auth, team,
                                                               make_staff):
    auth.login(make_staff(role="admin"), area="staff")
    add_requests(app, team, 0, 3)
    few_page, few = get_counting_statements(app, client, "/staff/bookings")
    add_requests(app, team, 3, 30)
    many_page, many = get_counting_statements(app, client, "/staff/bookings")
    assert few_page.status_code == many_page.status_code == 200
    assert many == few, f"3 requests: {few} statements, 30: {many}"
    assert 'data-testid="pager"' not in few_page.get_data(as_text=True)

    html = many_page.get_data(as_text=True)
    rows = shown(html, r'<li class="kern-card card-list__item booking".*?</li>')
    assert len(rows) == PAGE
    assert "30 Anfragen warten, die ältesten zuerst." in html
    assert "Seite 1 von 2" in html
    assert 'href="/staff/bookings?page=2"' in html
    assert ">Neuere<" in html
    # Only the clients of the first page were logged: the five newest requests were not.
    with app.app_context():
        everyone = list(db.session.scalars(select(Booking.client_id).order_by(
            Booking.created_at.desc(), Booking.id.desc())))
    newest = everyone[:5]
    assert logged_clients(app, newest) == set()
    assert len(logged_clients(app, everyone)) == PAGE

    second = client.get("/staff/bookings?page=2").get_data(as_text=True)
    assert len(shown(second, r'<li class="kern-card card-list__item booking".*?</li>')) == 5
    assert "Seite 2 von 2" in second
    assert ">Ältere<" in second
    assert 'href="/staff/bookings"' in second
    assert logged_clients(app, newest) == set(newest)
    # A decision taken on page 2 comes back to page 2.
    booking_id = re.search(r'data-booking="([^"]+)"', second).group(1)
    action = f"/staff/bookings/{booking_id}/confirm?page=2"
    assert f'action="{action}"' in second
    answer = client.post(action, data={"csrf_token": csrf_token(second)})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/staff/bookings?page=2")
    with app.app_context():
        assert db.session.get(Booking, uuid.UUID(booking_id)).status == "confirmed"
    # A page past the end shows the last one; nonsense shows the first.
    assert "Seite 2 von 2" in client.get("/staff/bookings?page=9").get_data(as_text=True)
    assert "Seite 1 von 2" in client.get("/staff/bookings?page=x").get_data(as_text=True)


def test_a_long_queue_is_counted_up_to_a_limit_and_says_more_than(app, client, auth, team,
                                                                 make_staff, monkeypatch):
    # Counting reads every waiting request; past the limit the pages say "more than".
    from shared.services import bookings

    monkeypatch.setattr(bookings, "QUEUE_COUNTED", 20)
    auth.login(make_staff(role="admin"), area="staff")
    add_requests(app, team, 0, 30)
    html = client.get("/staff/bookings").get_data(as_text=True)
    assert "Mehr als 20 Anfragen warten, die ältesten zuerst." in html
    assert "30 Anfragen" not in html
    assert len(shown(html, r'<li class="kern-card card-list__item booking".*?</li>')) == PAGE
    # Counted from the page's start: what lies past the count is still reached.
    assert "Seite 1 von mehr als 1" in html
    following = re.search(r'rel="next" href="([^"]+)"', html).group(1)
    assert following == "/staff/bookings?page=2"
    second = client.get(following).get_data(as_text=True)
    assert len(shown(second, r'<li class="kern-card card-list__item booking".*?</li>')) == 5
    assert "Seite 2 von 2" in second
    assert 'rel="next"' not in second
    assert "Mehr als" not in second
    home = client.get("/staff/").get_data(as_text=True)
    assert "Mehr als 20 Anfragen warten auf Antwort." in home
    monkeypatch.setattr(bookings, "QUEUE_COUNTED", 1000)
    home = client.get("/staff/").get_data(as_text=True)
    assert "30 Anfragen warten auf Antwort." in home


# -- the client search ---------------------------------------------------------------------
def post_counting(app, client, url: str, data: dict):
    """Post a form (its CSRF token read first); returns the response and its statements."""
    page = client.get(url)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True)).group(1)
    with counting_statements(app) as statements:
        response = client.post(url, data={"csrf_token": token, **data})
    return response, len(statements)


def add_marias(app, start: int, stop: int) -> list:
    with app.app_context():
        ids = [new_client(f"Maria Muster{number:02d}").id for number in range(start, stop)]
        db.session.commit()
    return ids


def test_a_common_name_shows_25_asks_to_narrow_and_logs_only_those(app, client, auth,
                                                                    make_staff):
    auth.login(make_staff(role="admin"), area="staff")
    marias = add_marias(app, 0, 3)
    few_page, few = post_counting(app, client, "/staff/clients", {"q": "Maria"})
    few_html = few_page.get_data(as_text=True)
    assert "3 Klientinnen und Klienten gefunden" in few_html
    assert 'data-testid="refine"' not in few_html
    marias += add_marias(app, 3, 30)
    many_page, many = post_counting(app, client, "/staff/clients", {"q": "Maria"})
    assert many == few, f"3 found: {few} statements, 30 found: {many}"

    html = many_page.get_data(as_text=True)
    assert "Mehr als 25 Klientinnen und Klienten gefunden" in html
    assert "Bitte ergänzen Sie einen Nachnamen oder das Geburtsdatum" in html
    names = shown(html, r'href="/staff/clients/[^"]+">(Maria Muster\d\d)</a>')
    assert len(names) == PAGE
    assert names == sorted(names)
    # 25 shown, 25 logged by that search: not all 30.
    assert events_of(app, marias) == 3 + PAGE

    # A surname finds the one person, without the prompt.
    one = submit(client, "/staff/clients", {"q": "Maria Muster29"}).get_data(as_text=True)
    assert "1 Klientin oder Klient gefunden" in one
    assert shown(one, r'">(Maria Muster\d\d)</a>') == ["Maria Muster29"]
    assert 'data-testid="refine"' not in one
    assert marias[29] in logged_clients(app, marias)


# -- corrections, break-glass review, team --------------------------------------------------
def add_corrections(app, start: int, stop: int) -> list:
    with app.app_context():
        ids = []
        for number in range(start, stop):
            person = new_client(f"Korrektur{number:02d} Muster")
            db.session.flush()  # no relationship orders the client first
            request = CorrectionRequest(client_id=person.id, data_key=person.data_key,
                                        about="other")
            request.message = f"Bitte korrigieren {number:02d}"
            db.session.add(request)
            ids.append(person.id)
        db.session.commit()
    return ids


def test_the_correction_queue_pages_and_logs_only_the_page(app, client, auth, make_staff):
    auth.login(make_staff(role="admin"), area="staff")
    people = add_corrections(app, 0, 3)
    few_page, few = get_counting_statements(app, client, "/staff/corrections")
    people += add_corrections(app, 3, 30)
    many_page, many = get_counting_statements(app, client, "/staff/corrections")
    assert few_page.status_code == many_page.status_code == 200
    assert many == few, f"3 requests: {few} statements, 30: {many}"
    html = many_page.get_data(as_text=True)
    assert len(shown(html, r"Bitte korrigieren \d\d")) == PAGE
    assert "Korrektur00 Muster" in html
    assert "Korrektur29 Muster" not in html
    assert "Seite 1 von 2" in html
    assert len(logged_clients(app, people)) == PAGE
    second = client.get("/staff/corrections?page=2").get_data(as_text=True)
    assert len(shown(second, r"Bitte korrigieren \d\d")) == 5
    assert "Korrektur29 Muster" in second
    assert len(logged_clients(app, people)) == 30


def add_grants(app, member_email: str, start: int, stop: int) -> list:
    from shared.models import Account

    with app.app_context():
        member_id = db.session.scalar(select(StaffMember.id).join(Account)
                                      .where(Account.email_bidx.is_not(None))
                                      .order_by(StaffMember.created_at).limit(1))
        ids = []
        for number in range(start, stop):
            person = new_client(f"Notfall{number:02d} Muster")
            db.session.flush()
            grant = BreakGlassGrant(client_id=person.id, data_key=person.data_key,
                                    staff_member_id=member_id,
                                    created_at=utcnow() + timedelta(seconds=number))
            grant.reason = f"Dringender Anruf Nummer {number:02d}"
            db.session.add(grant)
            ids.append(person.id)
        db.session.commit()
    return ids


def test_the_break_glass_review_pages_and_logs_only_the_page(app, client, auth, make_staff):
    admin = make_staff(role="admin")
    auth.login(admin, area="staff")
    people = add_grants(app, admin.email, 0, 3)
    few_page, few = get_counting_statements(app, client, "/staff/break-glass")
    people += add_grants(app, admin.email, 3, 30)
    many_page, many = get_counting_statements(app, client, "/staff/break-glass")
    assert few_page.status_code == many_page.status_code == 200
    assert many == few, f"3 grants: {few} statements, 30: {many}"
    html = many_page.get_data(as_text=True)
    assert len(shown(html, r"Dringender Anruf Nummer \d\d")) == PAGE
    assert "Notfall00 Muster" in html
    assert "Seite 1 von 2" in html
    assert len(logged_clients(app, people)) == PAGE
    second = client.get("/staff/break-glass?page=2").get_data(as_text=True)
    assert "Notfall29 Muster" in second
    assert "Seite 2 von 2" in second


def test_the_team_pages(app, client, auth, make_staff):
    auth.login(make_staff(role="admin"), area="staff")

    def add_staff(start: int, stop: int) -> None:
        with app.app_context():
            for number in range(start, stop):
                staff_service.create_staff(email=f"team{number:02d}@example.org",
                                           role="caseworker", name=f"Team{number:02d}",
                                           invite=False)
            db.session.commit()

    add_staff(0, 2)
    few_page, few = get_counting_statements(app, client, "/staff/team")
    add_staff(2, 29)
    many_page, many = get_counting_statements(app, client, "/staff/team")
    assert many == few, f"3 members: {few} statements, 30: {many}"
    html = many_page.get_data(as_text=True)
    assert "Seite 1 von 2" in html
    assert ">Nächste Seite<" in html
    second = client.get("/staff/team?page=2").get_data(as_text=True)
    assert ">Vorherige Seite<" in second
    assert "Team28" in second
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StaffMember)) == 30


def test_the_lists_stay_closed_to_roles_without_them(app, client, auth, make_staff):
    auth.login(make_staff(role="caseworker"), area="staff")
    for url in ("/staff/team?page=2", "/staff/break-glass?page=2"):
        assert client.get(url).status_code == 403, url
    assert client.get("/staff/corrections?page=2").status_code == 200
