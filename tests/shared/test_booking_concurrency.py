"""50 clients press "request" for the same slot at the same moment, against a real
threaded server: exactly one booking, 49 clear "just taken" answers."""

import http.cookiejar
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from sqlalchemy import func, select, text

from shared.extensions import db
from shared.models import Account, Booking
from shared.services import availability, bookings
from tests.conftest import postgres_requested, tomorrow_slot_token
from tests.shared.test_availability import _tomorrow_token, _two_services_of_one_member

CLIENTS = 50


@pytest.fixture
def config_overrides():
    # 50 sign-ins from one address would trip the per-address limit; not what this tests.
    # urllib does not send Secure cookies over http://localhost (browsers do).
    return {"ratelimit_enabled": False, "secure_cookies": False}


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            _NoRedirect(),
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=60) as response:
            return response.read().decode()

    def post(self, path: str, data: dict) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_fifty_concurrent_requests_for_one_slot(app, live_server, make_client, make_bookable):
    bookable = make_bookable()
    slot = tomorrow_slot_token(app, bookable)
    path = f"/bookings/new/{bookable.service_id}/{slot}"
    people = [make_client() for _ in range(CLIENTS)]
    browsers, forms = [], []
    for person in people:
        browser = Browser(live_server)
        status, _ = browser.post("/login", {"csrf_token": token(browser.get("/login")),
                                            "email": person.email,
                                            "password": person.password})
        assert status == 302
        page = browser.get(path)
        forms.append({"csrf_token": token(page),
                      "client": re.search(r'name="client" value="([^"]+)"', page).group(1),
                      "note": ""})
        browsers.append(browser)

    start = threading.Barrier(CLIENTS)
    results: list[tuple[int, str]] = [None] * CLIENTS

    def press(i: int) -> None:
        start.wait()
        results[i] = browsers[i].post(path, forms[i])

    threads = [threading.Thread(target=press, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    statuses = sorted(status for status, _ in results)
    assert statuses == [302] + [409] * (CLIENTS - 1)
    for status, body in results:
        if status == 409:
            assert ("Diese Zeit wurde leider gerade vergeben. Bitte wählen Sie eine andere."
                    in body)
    with app.app_context():
        assert len(db.session.scalars(select(Booking)).all()) == 1


def test_one_person_pressing_request_with_six_staff_members_at_once_gets_three(
        app, live_server, make_client, make_bookable):
    """Different staff members mean different staff locks: the cap on open requests must
    still hold when one person's requests race each other."""
    person = make_client()
    offers = [make_bookable() for _ in range(6)]
    browsers, posts = [], []
    for bookable in offers:
        browser = Browser(live_server)
        status, _ = browser.post("/login", {"csrf_token": token(browser.get("/login")),
                                            "email": person.email,
                                            "password": person.password})
        assert status == 302
        path = f"/bookings/new/{bookable.service_id}/{tomorrow_slot_token(app, bookable)}"
        page = browser.get(path)
        posts.append((path, {"csrf_token": token(page), "note": "",
                             "client": re.search(r'name="client" value="([^"]+)"',
                                                 page).group(1)}))
        browsers.append(browser)

    start = threading.Barrier(len(offers))
    results: list[tuple[int, str]] = [None] * len(offers)

    def press(i: int) -> None:
        start.wait()
        results[i] = browsers[i].post(*posts[i])

    threads = [threading.Thread(target=press, args=(i,)) for i in range(len(offers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(status for status, _ in results) == [302] * 3 + [409] * 3
    with app.app_context():
        assert len(db.session.scalars(select(Booking)).all()) == 3


@pytest.mark.parametrize("config_overrides", [{
    "ratelimit_enabled": False, "secure_cookies": False, "max_open_requests_per_account": 2}])
def test_one_account_pressing_request_for_three_children_at_once_gets_its_cap(
        app, live_server, make_client, make_bookable):
    """Requests of one account for different children take different staff and person
    locks: the cap per account must still hold when they race each other."""
    from datetime import date

    from shared.models import Account
    from shared.services import household

    parent = make_client()
    with app.app_context():
        account = db.session.get(Account, parent.account_id)
        children = [str(household.add_dependant(
            guardian=account, data=household.DependantInput(
                full_name=name, birth_date=date(2019, 5, 4))).id)
            for name in ("Emil Demir", "Kemal Demir", "Lara Demir")]
    offers = [make_bookable() for _ in range(6)]
    browsers, posts = [], []
    for i, bookable in enumerate(offers):
        browser = Browser(live_server)
        status, _ = browser.post("/login", {"csrf_token": token(browser.get("/login")),
                                            "email": parent.email,
                                            "password": parent.password})
        assert status == 302
        path = f"/bookings/new/{bookable.service_id}/{tomorrow_slot_token(app, bookable)}"
        posts.append((path, {"csrf_token": token(browser.get(path)), "note": "",
                             "client": children[i % 3]}))
        browsers.append(browser)

    start = threading.Barrier(len(offers))
    results: list[tuple[int, str]] = [None] * len(offers)

    def press(i: int) -> None:
        start.wait()
        results[i] = browsers[i].post(*posts[i])

    threads = [threading.Thread(target=press, args=(i,)) for i in range(len(offers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(status for status, _ in results) == [302] * 2 + [409] * 4
    with app.app_context():
        assert len(db.session.scalars(select(Booking)).all()) == 2


def _someone_waits_for_a_lock(app) -> bool:
    with app.app_context(), db.engine.connect() as conn:
        return conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'")) > 0


@pytest.mark.skipif(not postgres_requested(),
                    reason="row locks are PostgreSQL's; on SQLite a writing transaction "
                           "runs alone anyway")
def test_overlapping_requests_for_two_services_of_one_staff_member_at_once_get_one(
        app, make_client, make_bookable, monkeypatch):
    """Two people, two services of one caseworker, two slots that overlap but start at
    different times (the hour 09:10–10:10 and 08:55–09:40): no unique index stops the
    second, only the staff member's lock does. The first request is held just after it
    computed the free slots until the second one waits for a lock (or, without that lock,
    has computed its own free slots too)."""
    services, member_id = _two_services_of_one_member(app, make_bookable)
    people = {"first": make_client(), "second": make_client()}
    wanted = {"first": (services[60], _tomorrow_token(app, member_id, 9, 10)),
              "second": (services[45], _tomorrow_token(app, member_id, 8, 55))}
    computed = {name: threading.Event() for name in people}
    release_first = threading.Event()
    original_free_slots = availability.free_slots

    def free_slots(**kwargs):
        slots = original_free_slots(**kwargs)
        name = threading.current_thread().name
        computed[name].set()
        if name == "first":
            release_first.wait(60)
        return slots

    monkeypatch.setattr(availability, "free_slots", free_slots)
    outcomes: dict[str, str] = {}

    def request(name: str) -> None:
        with app.app_context():
            account = db.session.get(Account, people[name].account_id)
            service_id, token = wanted[name]
            try:
                bookings.request_booking(account=account, client_id=account.client.id,
                                         service_id=service_id, slot_token=token, note=None)
                outcomes[name] = "booked"
            except bookings.BookingError as exc:
                outcomes[name] = type(exc).__name__

    threads = {name: threading.Thread(target=request, args=(name,), name=name)
               for name in people}
    threads["first"].start()
    assert computed["first"].wait(60)
    threads["second"].start()
    deadline = time.monotonic() + 60
    while not (computed["second"].is_set() or _someone_waits_for_a_lock(app)):
        assert time.monotonic() < deadline, "the second request neither waited nor went on"
        time.sleep(0.01)
    release_first.set()
    for thread in threads.values():
        thread.join(timeout=60)

    assert outcomes == {"first": "booked", "second": "SlotUnavailable"}
    with app.app_context():
        assert db.session.scalar(select(func.count(Booking.id))) == 1
