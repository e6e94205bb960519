"""Benchmark: SQL statements and time per request of the pages that list rows, at a few
sizes, so that growth with the rows shown is visible at a glance (issue 13: they must
not grow).

    make bench                     (SQLite in a temporary folder)
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test make bench
                                   (a fresh database on that server, dropped afterwards)

Per size N it seeds, through the app's models, one client with N appointments, N notes
and N documents (the caseworker's case file and the client's "my data") and 10 N staff
visits (the client's access log, shown a page at a time), and N requests
of N other clients waiting in the booking queue, then signs in through the real forms and
opens each page a few times. Exit status 1 when a page's statements grow with N.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import time as clock_time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyotp  # noqa: E402
from sqlalchemy import event as sql_event  # noqa: E402
from sqlalchemy import update  # noqa: E402

from shared import crypto  # noqa: E402
from shared.app import create_app  # noqa: E402
from shared.cli import upgrade_database  # noqa: E402
from shared.config import Config  # noqa: E402
from shared.extensions import db  # noqa: E402
from tests.conftest import create_postgres_database, drop_postgres_database  # noqa: E402

SIZES = (10, 50, 200)
RUNS = 5  # requests per page and size; the time shown is their median
PASSWORD = "bench-password-not-secret-42"  # noqa: S105
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"0" * 200
STAFF = (("A. Schmidt", "Elternberatung"), ("B. Yilmaz", "Schuldnerberatung"),
         ("C. Nowak", "Familienhilfe"))


class BenchFailed(Exception):
    """A page did not answer as the benchmark expects (an error, or other rows shown)."""


@dataclass
class Person:
    email: str
    totp_secret: str | None = None


@dataclass
class Team:
    admin: Person
    caseworker: Person
    caseworker_id: uuid.UUID
    offers: list[tuple[uuid.UUID, uuid.UUID]]  # (staff member, service) of each caseworker


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="einblick-statements-"))
    server_url = os.environ.get("DATABASE_URL", "")
    database_url = (create_postgres_database(server_url) if server_url.startswith("postgres")
                    else f"sqlite:///{workdir / 'bench.sqlite3'}")
    config = Config(env="test", instance_path=str(workdir), database_url=database_url,
                    base_url="http://localhost", rp_id="localhost", origin="http://localhost",
                    security_log="none",
                    master_keys="b:" + crypto.b64encode(b"\x05" * 32),
                    index_key=crypto.b64encode(b"\x06" * 32),
                    secret_key="bench-only-not-a-secret")  # noqa: S106
    app = create_app(config)
    try:
        with app.app_context():
            upgrade_database()
            team = seed_team()
        results = measure(app, team)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if server_url.startswith("postgres"):
            drop_postgres_database(database_url)
    return report(results, "PostgreSQL" if server_url.startswith("postgres") else "SQLite")


# -- measuring -----------------------------------------------------------------------------
Result = tuple[int, int, float]  # rows shown, statements, median milliseconds

# What marks one row of each page; the case file and the queue show every row, "my data"
# lists the newest of a kind and pages through the rest.
PAGES = (("staff case file (caseworker)", '<article class="note"', True),
         ("booking queue (admin)", 'class="kern-card card-list__item booking"', True),
         ("my data (client)", "Gesprächsnotiz ", False),
         ("access log (client)", 'class="access-log__item', False))


def measure(app, team: Team) -> dict[str, list[Result]]:
    """Per page, at each size: rows shown, statements, median milliseconds."""
    results: dict[str, list[Result]] = {page: [] for page, _marker, _all in PAGES}
    caseworker, admin = app.test_client(), app.test_client()
    sign_in(caseworker, team.caseworker, area="staff")
    sign_in(admin, team.admin, area="staff")
    for size in SIZES:
        with app.app_context():
            holder, client_id = seed_file(team, size)
            seed_queue(team, size)
        portal = app.test_client()
        sign_in(portal, holder)
        urls = (f"/staff/clients/{client_id}", "/staff/bookings", "/my-data",
                "/my-data/access")
        for (page, marker, shows_all), browser, url in zip(
                PAGES, (caseworker, admin, portal, portal), urls, strict=True):
            statements, millis, html = timed(app, browser, url)
            shown = html.count(marker)
            if shows_all and shown != size:
                raise BenchFailed(f"{page}: {shown} rows shown, {size} expected")
            results[page].append((shown, statements, millis))
    return results


def timed(app, browser, url: str) -> tuple[int, float, str]:
    """Statements of the last of ``RUNS`` requests (the first warms caches), the median
    time of all, and the last page."""
    counted: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        counted.append(statement)

    with app.app_context():
        engine = db.engine
    times = []
    for _ in range(RUNS):
        counted.clear()
        sql_event.listen(engine, "before_cursor_execute", count)
        started = time.perf_counter()
        try:
            response = browser.get(url)
        finally:
            sql_event.remove(engine, "before_cursor_execute", count)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise BenchFailed(f"{url}: status {response.status_code}")
    return len(counted), statistics.median(times), response.get_data(as_text=True)


def report(results: dict[str, list[Result]], database: str) -> int:
    print(f"SQL statements and time per request ({database}; median of {RUNS} requests)")
    print(f"{'page':<30}" + "".join(f"{f'{n} rows each':>28}" for n in SIZES)
          + "   statements")
    growing = []
    for page, rows in results.items():
        cells = "".join(f"{f'{shown} shown: {statements} st {millis:4.0f} ms':>28}"
                        for shown, statements, millis in rows)
        constant = len({statements for _shown, statements, _millis in rows}) == 1
        if not constant:
            growing.append(page)
        print(f"{page:<30}{cells}   {'constant' if constant else 'GROW with the rows'}")
    if growing:
        print("Statements grow with the rows shown on: " + ", ".join(growing))
        return 1
    return 0


# -- signing in through the forms ----------------------------------------------------------
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                  r'name="csrf_token" value="([^"]+)"')


def post_form(browser, url: str, data: dict):
    page = browser.get(url).get_data(as_text=True)
    match = CSRF.search(page)
    return browser.post(url, data={"csrf_token": match.group(1) or match.group(2), **data})


def sign_in(browser, person: Person, *, area: str = "portal") -> None:
    prefix = "/staff" if area == "staff" else ""
    response = post_form(browser, f"{prefix}/login",
                         {"email": person.email, "password": PASSWORD})
    if person.totp_secret and "/login/code" in response.headers.get("Location", ""):
        response = post_form(browser, f"{prefix}/login/code",
                             {"code": pyotp.TOTP(person.totp_secret).now()})
    if response.status_code != 302:
        raise BenchFailed(f"signing in ({area}) failed: status {response.status_code}")


# -- seeding -------------------------------------------------------------------------------
def seed_team() -> Team:
    """An admin and three caseworkers, each offering a service of their own."""
    from shared.auth import passwords
    from shared.models import AvailabilityRule, Service
    from shared.models.base import utcnow
    from shared.services import staff

    def member(role: str, name: str):
        found, _ = staff.create_staff(email=f"{role}-{uuid.uuid4().hex[:6]}@example.org",
                                      role=role, name=name, invite=False)
        account = found.account
        account.password_hash = passwords.hash_password(PASSWORD)
        account.email_confirmed_at = utcnow()
        account.totp_secret = pyotp.random_base32()
        account.totp_enabled_at = utcnow()
        db.session.commit()
        return found, Person(account.email, account.totp_secret)

    _admin, admin = member("admin", "D. Admin")
    offers, caseworker, caseworker_id = [], None, None
    for name, service_name in STAFF:
        found, person = member("caseworker", name)
        service = Service(name=service_name, description="", duration_minutes=45,
                          location="Raum 2", online=False)
        service.staff = [found]
        db.session.add(service)
        db.session.add_all([AvailabilityRule(staff_member_id=found.id, weekday=day,
                                             start_time=clock_time(8), end_time=clock_time(20))
                            for day in range(7)])
        db.session.commit()
        offers.append((found.id, service.id))
        if caseworker is None:
            caseworker, caseworker_id = person, found.id
    return Team(admin, caseworker, caseworker_id, offers)


def new_client(full_name: str, *, email: str | None = None):
    from shared.auth import passwords
    from shared.models import Account, Client, DataKey
    from shared.models.base import utcnow
    from shared.services.accounts import set_client_name

    data_key = DataKey.generate()
    client = Client(data_key=data_key)
    if email:
        account = Account(kind="client", data_key=data_key, locale="de")
        account.email = email
        account.password_hash = passwords.hash_password(PASSWORD)
        account.email_confirmed_at = utcnow()
        client.account = account
        db.session.add(account)
    db.session.add_all([data_key, client])
    set_client_name(client=client, full_name=full_name)
    return client


def seed_file(team: Team, size: int) -> tuple[Person, uuid.UUID]:
    """A client with an account and ``size`` appointments, notes and documents (visible
    to them), by the three caseworkers in turn, assigned to the first."""
    from shared.models import Assignment, Booking, Document, Note
    from shared.models.base import utcnow

    email = f"client-{size}-{uuid.uuid4().hex[:6]}@example.org"
    client = new_client(f"Mia Demir {size}", email=email)
    db.session.flush()  # the assignment names the client, which no relationship tells
    db.session.add(Assignment(client_id=client.id, staff_member_id=team.caseworker_id))
    first = (utcnow() - timedelta(days=size + 30)).replace(minute=0, second=0, microsecond=0)
    for number in range(size):
        staff_id, service_id = team.offers[number % len(team.offers)]
        # Each size at its own minute: one staff member, one start, one active booking.
        begin = first + timedelta(days=number, minutes=size)
        db.session.add(Booking(client_id=client.id, data_key=client.data_key,
                               service_id=service_id, staff_member_id=staff_id,
                               start_at=begin, end_at=begin + timedelta(minutes=45),
                               status="confirmed"))
        note = Note(client_id=client.id, data_key=client.data_key, author_id=staff_id,
                    visible_to_client=True)
        note.body = f"Gesprächsnotiz {number}"
        document = Document(client_id=client.id, data_key=client.data_key, category="report",
                            content_type="application/pdf", size=len(PDF),
                            uploaded_by_id=staff_id, visible_to_client=True)
        document.filename = f"bericht-{number}.pdf"
        document.content = PDF
        db.session.add_all([note, document])
    db.session.commit()
    # Ten staff visits per row (one request each), for the access log's page.
    from shared import audit
    from shared.models import StaffMember

    member = db.session.get(StaffMember, team.caseworker_id)
    audit.set_purpose(audit.BOOKING_LISTS)
    for _ in range(10 * size):
        audit.record_access(client_id=client.id, staff_member=member, category=audit.BOOKINGS)
        db.session.commit()
    return Person(email), client.id


def seed_queue(team: Team, size: int) -> None:
    """Exactly ``size`` requests waiting in the queue, each from a client of their own (the
    previous size's requests are declined first)."""
    from shared.models import Booking
    from shared.models.base import utcnow

    db.session.execute(update(Booking).where(Booking.status == "requested")
                       .values(status="declined"))
    first = (utcnow() + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    for number in range(size):
        staff_id, service_id = team.offers[number % len(team.offers)]
        client = new_client(f"Anfrage{number} Muster{size}")
        begin = first + timedelta(days=size, hours=number)
        db.session.add(Booking(client_id=client.id, data_key=client.data_key,
                               service_id=service_id, staff_member_id=staff_id,
                               start_at=begin, end_at=begin + timedelta(minutes=45),
                               status="requested", expires_at=utcnow() + timedelta(days=2)))
    db.session.commit()




if __name__ == "__main__":
    sys.exit(main())
