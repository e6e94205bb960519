"""Scale benchmark (issue 16): an organisation with 1 k and 10 k clients (100 k on request)
on PostgreSQL; per page and command the time and SQL statements at each size, so growth
is visible at a glance.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make bench-scale
    BENCH_SCALE=100000 ... make bench-scale          (adds 100 k; or: --full)
    .venv/bin/python bench/scale_bench.py --sizes 1000,10000 --runs 3

Each size gets a database of its own on that server (created, dropped afterwards); SQLite
is refused. Seeding goes through the app's models, so every personal field is encrypted
under the client's own data key as in real use. Per client: a data key, the name (with its
search tokens), a birth date; four in five hold an account (one argon2 hash, computed once,
serves every account) with a consent given or declined; two past appointments, every third
a cancelled one, every tenth a request waiting in the queue, every fifth an appointment to
come; five staff visits in the access log. Every tenth client is erased through the erasure
service (journal first), which leaves them restricted: their appointments must be kept. One
client in a hundred is called Maria. One more client has 50,000 access events.

Measured through Flask's test client in this process (signed in through the real forms;
the median of ``--runs`` requests, statements of the last); commands run in a fresh Python
process each, as cron starts them (the time includes the app's start-up; the export's
memory is that process's peak RSS). "bare" is a one-line Flask app served the same way; a
page's "% bare" is its share of the bare route's throughput. The "gunicorn" rows serve the
app and the bare app each in gunicorn (2 sync workers, 4 requests in flight, on this
machine) and count requests per second: item 7's goal (dashboard >= 25 %, /my-data >= 10 %
of bare). Results also go to bench/results/scale-<date>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy import event as sql_event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402
from statements_bench import PASSWORD, BenchFailed, Person, sign_in  # noqa: E402

from shared import crypto  # noqa: E402
from shared.config import Config  # noqa: E402

DEFAULT_SIZES = (1_000, 10_000)
FULL_SIZE = 100_000
HEAVY_EVENTS = 50_000
EVENTS_PER_CLIENT = 5
DAY_OF_VISITS = 1_000  # chains that change between two anchors
ERASURES = 4  # accounts erased per run (the median is reported)
BATCH = 500  # clients per commit
FIRST_NAMES = ("Lena", "Emir", "Sofia", "Jonas", "Aylin", "Noah", "Olena", "Yusuf", "Mila",
               "Paul", "Zeynep", "Ben", "Hanna", "Ali", "Ida", "Finn", "Leyla", "Anton")
LAST_NAMES = ("Demir", "Schmidt", "Kovalenko", "Yilmaz", "Weber", "Haddad", "Nowak",
              "Fischer", "Kaya", "Becker", "Shevchenko", "Wagner", "Aydin", "Hoffmann")
SEARCHED = "Maria"  # one client in a hundred


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="comma-separated client counts (default 1000,10000)")
    parser.add_argument("--full", action="store_true", help="also 100,000 clients")
    parser.add_argument("--runs", type=int, default=3, help="requests per page (median)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a command in its own process
    parser.add_argument("--keep", action="store_true",
                        help="keep each size's database and instance, to measure again later")
    parser.add_argument("--reuse", metavar="DIR",
                        help="measure again on a database kept by --keep (its instance folder)")
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith("postgres"):
        print("The scale benchmark runs on PostgreSQL only (SQLite is not what an "
              "organisation of this size runs on): set DATABASE_URL to a PostgreSQL server, "
              "e.g. DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make bench-scale"
              ". Each size gets a database of its own there, dropped afterwards.",
              file=sys.stderr)
        return 2
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes else list(DEFAULT_SIZES))
    if (args.full or os.environ.get("BENCH_SCALE", "") == str(FULL_SIZE)) \
            and FULL_SIZE not in sizes:
        sizes.append(FULL_SIZE)
    if os.environ.get("BENCH_SCALE", "").isdigit() and int(os.environ["BENCH_SCALE"]) not in sizes:
        sizes.append(int(os.environ["BENCH_SCALE"]))
    results: dict[int, dict] = {}
    if args.reuse:
        # The benchmark's own file, written by --keep into the instance folder it made.
        kept = pickle.loads((Path(args.reuse) / KEPT).read_bytes())  # noqa: S301
        results[kept["size"]] = measure_kept(kept, args.runs)
        report(results, args.runs)
        return 0
    for size in sorted(sizes):
        for attempt in (1, 2):
            try:
                results[size] = run_size(server, size, args.runs, keep=args.keep)
                break
            except OperationalError as error:
                # The server is shared (tests create and drop databases): a transient
                # "out of shared memory" for locks is retried once in a new database.
                if attempt == 2:
                    raise
                print(f"{size} clients: {type(error.orig).__name__}, once more", flush=True)
    report(results, args.runs)
    return 0


# -- one size -------------------------------------------------------------------------------
def bench_config(instance: str, database_url: str) -> Config:
    return Config(env="test", instance_path=instance, database_url=database_url,
                  base_url="http://localhost", rp_id="localhost", origin="http://localhost",
                  security_log="none",
                  master_keys="b:" + crypto.b64encode(b"\x05" * 32),
                  index_key=crypto.b64encode(b"\x06" * 32),
                  secret_key="bench-only-not-a-secret")  # noqa: S106


def create_database(server: str, size: int) -> str:
    url = Config(database_url=server).sqlalchemy_url
    name = f"bench_scale_{size}_{uuid.uuid4().hex[:6]}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    engine = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


KEPT = "scale-bench-world.pickle"  # in a kept instance: the database and who signs in


def measure_kept(kept: dict, runs: int) -> dict:
    """Measure again on a database a run with --keep left (no seeding)."""
    from shared.app import create_app
    from shared.cli import upgrade_database
    from shared.extensions import db

    instance, database_url = kept["instance"], kept["database_url"]
    app = create_app(bench_config(instance, database_url))
    with app.app_context():
        upgrade_database()  # the code may have moved on since the database was kept
    measured: dict = {}
    for label, item in measure(app, kept["world"], runs, instance=instance,
                               database_url=database_url).items():
        if label == "app start-up":
            measured.update(kept["empty"])
        measured[label] = item
    measured["_seed_seconds"] = kept["seed_seconds"]
    measured["_load_average"] = [round(x, 1) for x in os.getloadavg()]
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return measured


def run_size(server: str, size: int, runs: int, *, keep: bool = False) -> dict:
    from shared.app import create_app
    from shared.cli import upgrade_database
    from shared.extensions import db

    instance = tempfile.mkdtemp(prefix=f"einblick-scale-{size}-")
    database_url = create_database(server, size)
    try:
        config = bench_config(instance, database_url)
        app = create_app(config)
        with app.app_context():
            upgrade_database()
        # What a start and a cron run cost before anything is stored: the yardstick for
        # "start-up and bookings remind within 2x of an empty journal".
        empty = {}
        for label, what in (("app start-up (empty database)", "startup"),
                            ("flask bookings remind (empty database)", "remind")):
            samples = [run_child({"instance": instance, "database_url": database_url,
                                  "what": what, "account_id": str(uuid.uuid4())})
                       for _ in range(max(1, runs))]
            empty[label] = {"ms": round(statistics.median(s["ms"] for s in samples), 1),
                            "statements": samples[-1]["statements"],
                            "rss_mb": round(max(s["rss_mb"] for s in samples), 1)}
            print(f"  {label}: {empty[label]['ms']:.0f} ms", flush=True)
        with app.app_context():
            started = time.perf_counter()
            world = seed(size)
            seconds = time.perf_counter() - started
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        print(f"{size:>7} clients seeded in {seconds:.0f} s", flush=True)
        if keep:
            (Path(instance) / KEPT).write_bytes(pickle.dumps({
                "size": size, "instance": instance, "database_url": database_url,
                "world": world, "empty": empty, "seed_seconds": round(seconds, 1)}))
            print(f"kept: measure again with --reuse {instance}", flush=True)
        measured = {}
        for label, item in measure(app, world, runs, instance=instance,
                                   database_url=database_url).items():
            if label == "app start-up":
                measured.update(empty)
            measured[label] = item
        measured["_seed_seconds"] = round(seconds, 1)
        # Other work on the machine slows every row alike: the load says how much.
        measured["_load_average"] = [round(x, 1) for x in os.getloadavg()]
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return measured
    finally:
        if not keep:
            drop_database(database_url)
            shutil.rmtree(instance, ignore_errors=True)


# -- seeding --------------------------------------------------------------------------------
class World:
    """Who signs in and which rows the pages open."""

    def __init__(self) -> None:
        self.admin: Person | None = None
        self.caseworker: Person | None = None
        self.file_client_id: uuid.UUID | None = None
        self.dashboard: Person | None = None
        self.heavy: Person | None = None
        self.heavy_account_id: uuid.UUID | None = None
        self.erasable: list[uuid.UUID] = []  # accounts erased one by one at the end
        self.caseworker_id: uuid.UUID | None = None
        self.visited: list[uuid.UUID] = []  # a day's staff visits after the first anchor


def seed(size: int) -> World:
    import pyotp

    from shared import audit
    from shared.auth import passwords
    from shared.extensions import db
    from shared.models import (
        Account,
        Assignment,
        AvailabilityRule,
        Booking,
        Client,
        Consent,
        DataKey,
        Note,
        Service,
    )
    from shared.models.audit import AccessEvent
    from shared.models.base import utcnow
    from shared.services import consents, erasure, staff
    from shared.services.accounts import set_client_name

    world = World()
    began = time.perf_counter()
    password_hash = passwords.hash_password(PASSWORD)  # once, for every account
    now = utcnow().replace(second=0, microsecond=0)

    def member(role: str, name: str):
        found, _ = staff.create_staff(email=f"{role}-{uuid.uuid4().hex[:6]}@example.org",
                                      role=role, name=name, invite=False)
        account = found.account
        account.password_hash = password_hash
        account.email_confirmed_at = utcnow()
        account.totp_secret = pyotp.random_base32()
        account.totp_enabled_at = utcnow()
        db.session.commit()
        return found, Person(account.email, account.totp_secret)

    _, world.admin = member("admin", "D. Admin")
    offers = []
    for name, service_name in (("A. Schmidt", "Elternberatung"), ("B. Yilmaz",
                               "Schuldnerberatung"), ("C. Nowak", "Familienhilfe")):
        found, person = member("caseworker", name)
        service = Service(name=service_name, description="", duration_minutes=45,
                          location="Raum 2", online=False)
        service.staff = [found]
        db.session.add(service)
        db.session.add_all([AvailabilityRule(staff_member_id=found.id, weekday=day,
                                             start_time=datetime.min.time().replace(hour=8),
                                             end_time=datetime.min.time().replace(hour=20))
                            for day in range(7)])
        db.session.commit()
        offers.append((found.id, service.id))
        if world.caseworker is None:
            world.caseworker, caseworker_id = person, found.id
            world.caseworker_id = caseworker_id
    template = consents.save_template(
        key="fotos", texts={"de": {"title": "Fotos", "text": "Ich bin einverstanden."}},
        purpose="Fotos im Jahresbericht", legal_basis="Art. 6 Abs. 1 lit. a DSGVO",
        audience="Team", guardian_signs=True)
    consents.publish(template.id)
    template_id = template.id

    # Appointments: past ones spread over 600 days, future ones over days 3 to 90; the
    # caseworkers take them in turn, each one's active appointments at distinct minutes (a
    # unique index). At most 2.34 past and 0.3 future appointments per client.
    past_step = max(1, int(600 * 24 * 60 / (0.8 * size + 1)))
    future_step = max(1, int(87 * 24 * 60 / (0.1 * size + 1)))
    past_first = now - timedelta(days=600)
    future_first = now + timedelta(days=3)
    taken = {False: 0, True: 0}  # appointments so far, past and future

    def appointment(client, *, future: bool, status: str) -> Booking:
        number = taken[future]
        taken[future] += 1
        staff_id, service_id = offers[number % 3]
        begin = (future_first + timedelta(minutes=future_step * (number // 3)) if future
                 else past_first + timedelta(minutes=past_step * (number // 3)))
        booking = Booking(client_id=client.id, data_key=client.data_key, service_id=service_id,
                          staff_member_id=staff_id, start_at=begin,
                          end_at=begin + timedelta(minutes=45), status=status,
                          booked_by_account_id=client.account.id if client.account else None,
                          created_at=begin - timedelta(days=7))
        if status == "requested":
            booking.expires_at = now + timedelta(days=2)
            booking.note = "Bitte am Vormittag"
        return booking

    def new_client(i: int, name: str, *, account: bool):
        data_key = DataKey.generate()
        client = Client(data_key=data_key)
        client.birth_date = date(1950 + i % 70, 1 + i % 12, 1 + i % 28)
        if account:
            owner = Account(kind="client", data_key=data_key, locale="de")
            owner.email = f"client-{i}@bench.example"
            owner.password_hash = password_hash
            owner.email_confirmed_at = now
            client.account = owner
            db.session.add(owner)
        db.session.add_all([data_key, client])
        set_client_name(client=client, full_name=name)
        return client

    events: list[dict] = []

    def visits(client_id: uuid.UUID, count: int, start: datetime, *, seq0: int = 0,
               previous: bytes = audit.GENESIS) -> bytes:
        """``count`` events of one chain after ``seq0``; returns the last hash."""
        for seq in range(seq0 + 1, seq0 + count + 1):
            event = AccessEvent(id=uuid.uuid4(), client_id=client_id, seq=seq,
                                staff_member_id=caseworker_id, role="caseworker",
                                category="bookings", action="view", purpose=audit.BOOKING_LISTS,
                                grant_id=None, created_at=start + timedelta(minutes=seq),
                                prev_hash=previous)
            event.hash = audit.event_hash(event)
            previous = event.hash
            events.append({c.key: getattr(event, c.key) for c in AccessEvent.__table__.columns})
        return previous

    def flush_events() -> None:
        if events:
            db.session.execute(insert(AccessEvent), events)
            events.clear()

    restricted: list[uuid.UUID] = []
    later: list = []
    visit_every = max(1, size // DAY_OF_VISITS)
    for i in range(size):
        first = SEARCHED if i % 100 == 7 else FIRST_NAMES[i % len(FIRST_NAMES)]
        name = f"{first} {LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]}"
        has_account = i % 5 != 4
        client = new_client(i, name, account=has_account)
        rows = [appointment(client, future=False, status="confirmed"),
                appointment(client, future=False, status="confirmed")]
        if i % 3 == 0:
            rows.append(appointment(client, future=False, status="cancelled"))
        if i % 10 == 3:
            rows.append(appointment(client, future=True, status="requested"))
        if i % 5 == 1:
            rows.append(appointment(client, future=True, status="confirmed"))
        db.session.add_all(rows)
        if has_account:
            at = now - timedelta(days=i % 300)
            declined = i % 10 == 0
            document = consents.canonical_document(
                template=template, locale="de", subject_id=client.id,
                signer_id=client.account.id, at=at,
                decision="declined" if declined else None)
            consent = Consent(template_id=template_id, subject_id=client.id,
                              data_key=client.data_key, signer_account_id=client.account.id,
                              method="confirmation" if declined else "totp-name",
                              locale="de", status="declined" if declined else "given",
                              document_hash=hashlib.sha256(document).digest(),
                              given_at=at)
            consent.document = document
            consent.evidence = {"method": consent.method, "document": consents.b64(document)}
            later.append(consent)  # no relationship orders it after its client
        visits(client.id, EVENTS_PER_CLIENT, now - timedelta(days=30 + i % 200))
        if i == 0:  # the case file a caseworker opens
            world.file_client_id = client.id
            db.session.flush()  # the assignment names the client, which no relationship tells
            db.session.add(Assignment(client_id=client.id, staff_member_id=caseworker_id))
            for number in range(10):
                note = Note(client_id=client.id, data_key=client.data_key,
                            author_id=caseworker_id, visible_to_client=True)
                note.body = f"Gesprächsnotiz {number}"
                db.session.add(note)
        elif i == 1:
            world.dashboard = Person(client.account.email)
        elif 2 <= i < 40 and i % 10 != 9 and has_account:  # for several runs (--keep)
            world.erasable.append(client.account.id)
        if i % 10 == 9:
            restricted.append(client.id)
        elif i % visit_every == visit_every // 2 and len(world.visited) < DAY_OF_VISITS:
            world.visited.append(client.id)
        if i % BATCH == BATCH - 1 or i == size - 1:
            db.session.flush()
            db.session.add_all(later)
            later.clear()
            flush_events()
            db.session.commit()
            db.session.expunge_all()
            template = db.session.get(type(template), template_id)

    heavy = new_client(size, "Nina Heavy", account=True)
    db.session.add(appointment(heavy, future=True, status="confirmed"))
    db.session.commit()
    world.heavy, world.heavy_account_id = Person(heavy.account.email), heavy.account.id
    last = audit.GENESIS
    for start in range(0, HEAVY_EVENTS, 5_000):  # one chain, written 5,000 at a time
        last = visits(heavy.id, min(5_000, HEAVY_EVENTS - start), now - timedelta(days=400),
                      seq0=start, previous=last)
        flush_events()
        db.session.commit()

    print(f"{size:>7} clients written in {time.perf_counter() - began:.0f} s; erasing "
          f"{len(restricted)}", flush=True)
    # Erasures through the service: journal first, then each client (restricted, as their
    # appointments must be kept).
    for start in range(0, len(restricted), BATCH):
        chunk = restricted[start:start + BATCH]
        at = utcnow()
        erasure.journal_append(chunk, at=at)
        for client_id in chunk:
            erasure.erase_client(client_id, at=at)
        db.session.commit()
        db.session.expunge_all()
    return world


# -- measuring ------------------------------------------------------------------------------
def measure(app, world: World, runs: int, *, instance: str, database_url: str) -> dict:
    from flask import Flask

    from shared.extensions import db

    out: dict[str, dict] = {}
    bare = Flask("bare")
    bare.add_url_rule("/", "bare", lambda: "ok")
    bare_browser = bare.test_client()
    bare_times = []
    for _ in range(max(50, runs)):
        started = time.perf_counter()
        bare_browser.get("/")
        bare_times.append((time.perf_counter() - started) * 1000)
    bare_ms = statistics.median(bare_times)
    out["bare Flask route"] = {"ms": round(bare_ms, 3), "statements": 0,
                               "cpu_ms": round(bare_ms, 3)}

    with app.app_context():
        engine = db.engine
    admin, caseworker = app.test_client(), app.test_client()
    sign_in(admin, world.admin, area="staff")
    sign_in(caseworker, world.caseworker, area="staff")
    dashboard, heavy = app.test_client(), app.test_client()
    sign_in(dashboard, world.dashboard)
    sign_in(heavy, world.heavy)

    def page(label: str, browser, url: str, *, search: str | None = None) -> None:
        counted: list[str] = []

        def count(*_args) -> None:
            counted.append("")

        times, cpu = [], []
        for run in range(runs + 1):  # the first warms templates and caches, untimed
            counted.clear()
            if search is not None:  # the form's token first (not timed)
                form = browser.get(url).get_data(as_text=True)
                from statements_bench import CSRF

                match = CSRF.search(form)
                token = match.group(1) or match.group(2)
            sql_event.listen(engine, "before_cursor_execute", count)
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                if search is None:
                    response = browser.get(url)
                else:
                    response = browser.post(url, data={"csrf_token": token, "q": search,
                                                       "birth_date": ""})
            finally:
                sql_event.remove(engine, "before_cursor_execute", count)
            if run:
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - cpu_started) * 1000)
            if response.status_code != 200:
                raise BenchFailed(f"{label}: {url} answered {response.status_code}")
        millis = statistics.median(times)
        # CPU of this process alone (the app's Python work, not the database's): what a
        # worker spends per request, less swayed by other work on the machine than the time.
        out[label] = {"ms": round(millis, 1), "statements": len(counted),
                      "cpu_ms": round(statistics.median(cpu), 1),
                      "bytes": len(response.get_data()),
                      "pct_bare": round(100 * bare_ms / millis, 2)}
        print(f"  {label}: {millis:.0f} ms, {len(counted)} statements, "
              f"{out[label]['cpu_ms']:.0f} ms CPU", flush=True)

    page("admin booking queue", admin, "/staff/bookings")
    page("/staff/reports (admin)", admin, "/staff/reports")
    page("case file (caseworker)", caseworker, f"/staff/clients/{world.file_client_id}")
    page(f'staff search "{SEARCHED}"', caseworker, "/staff/clients", search=SEARCHED)
    page("imprint (client signed in)", dashboard, "/imprint")
    page("client dashboard", dashboard, "/home")
    page("/my-data (client)", dashboard, "/my-data")
    page("/my-data (50k events)", heavy, "/my-data")

    common = {"instance": instance, "database_url": database_url}

    def command(label: str, what: str, repeat: int) -> None:
        samples = [run_child({**common, "what": what,
                              "account_id": str(world.heavy_account_id)})
                   for _ in range(repeat)]
        out[label] = {"ms": round(statistics.median(s["ms"] for s in samples), 1),
                      "statements": samples[-1]["statements"],
                      "rss_mb": round(max(s["rss_mb"] for s in samples), 1)}
        print(f"  {label}: {out[label]['ms']:.0f} ms, {out[label]['statements']} statements,"
              f" peak RSS {out[label]['rss_mb']:.0f} MB", flush=True)

    # The audit commands as cron runs them: the first anchor reads every chain; then a day
    # of staff visits to DAY_OF_VISITS clients, and the incremental verify and anchor read
    # only the chains that changed.
    command("flask audit anchor (first)", "anchor", 1)
    a_day_of_visits(app, world)
    command(f"flask audit verify ({len(world.visited)} chains changed)", "verify", 1)
    command(f"flask audit anchor ({len(world.visited)} chains changed)", "anchor", 1)
    for label, what, repeat in (("app start-up", "startup", runs),
                                ("flask bookings remind", "remind", runs),
                                ("export (50k events)", "export", 1)):
        command(label, what, repeat)

    out.update(serve_throughput(world, instance=instance, database_url=database_url,
                                warm_up=out["app start-up"]["ms"] / 1000))
    out["erase one client"] = erase_some(app, world)
    print(f"  erase one client: {out['erase one client']['ms']:.0f} ms, "
          f"{out['erase one client']['statements']} statements", flush=True)
    return out


def a_day_of_visits(app, world: World) -> None:
    """A caseworker opens the appointments of ``world.visited`` through the audit service:
    one new access event in each of those chains, written as requests write them."""
    from shared import audit
    from shared.extensions import db
    from shared.models import StaffMember

    for start in range(0, len(world.visited), 100):
        with app.test_request_context("/"):
            member = db.session.get(StaffMember, world.caseworker_id)
            audit.set_purpose(audit.BOOKING_LISTS)
            for client_id in world.visited[start:start + 100]:
                audit.record_access(client_id=client_id, staff_member=member,
                                    category="bookings")
            db.session.commit()
            db.session.remove()


def erase_some(app, world: World) -> dict:
    """A client deletes their account (the erasure service, journal and all); median of
    a few clients."""
    from shared.extensions import db
    from shared.models import Account
    from shared.services import erasure

    counted: list[str] = []

    def count(*_args) -> None:
        counted.append("")

    times, statements = [], []
    for account_id in world.erasable:
        if len(times) == ERASURES:
            break
        with app.test_request_context("/"):
            account = db.session.get(Account, account_id)
            if account is None:  # erased by an earlier run on a kept database
                continue
            engine = db.engine
            counted.clear()
            sql_event.listen(engine, "before_cursor_execute", count)
            started = time.perf_counter()
            try:
                erasure.delete_account(account)
            finally:
                sql_event.remove(engine, "before_cursor_execute", count)
            times.append((time.perf_counter() - started) * 1000)
            statements.append(len(counted))
            db.session.remove()
    return {"ms": round(statistics.median(times), 1), "statements": statements[-1]}


def run_child(spec: dict) -> dict:
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",  # noqa: S603
                             json.dumps(spec)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchFailed(f"{spec['what']} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child(spec: dict) -> int:
    """One command in a fresh process: the app's start-up and the command, as cron runs
    it; prints milliseconds, statements and the process's peak RSS as JSON."""
    counted: list[str] = []

    def count(*_args) -> None:
        counted.append("")

    sql_event.listen(Engine, "before_cursor_execute", count)
    from shared.app import create_app

    config = bench_config(spec["instance"], spec["database_url"])
    started = time.perf_counter()
    app = create_app(config)
    what = spec["what"]
    if what in ("remind", "verify", "anchor"):
        args = {"remind": ["bookings", "remind"], "verify": ["audit", "verify"],
                "anchor": ["audit", "anchor"]}[what]
        result = app.test_cli_runner().invoke(args=args)
        if result.exit_code != 0:
            print(result.output, result.exception, file=sys.stderr)
            return 1
    elif what == "export":
        from shared.services import export

        with app.test_request_context("/"):
            counted.clear()
            started = time.perf_counter()  # the export itself, after the start-up
            size = sum(len(chunk) for chunk in export.stream(uuid.UUID(spec["account_id"])))
            if size == 0:
                return 1
    millis = (time.perf_counter() - started) * 1000
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ms": millis, "statements": len(counted), "rss_mb": rss}))
    return 0


# -- throughput in gunicorn ------------------------------------------------------------------
SERVE_SECONDS = 4.0  # per page, after a warm-up second
SERVE_THREADS = 4  # requests in flight


def bare_app():
    """A one-line Flask app: what gunicorn serves at best (``scale_bench:bare_app()``)."""
    from flask import Flask

    bare = Flask("bare")
    bare.add_url_rule("/", "bare", lambda: "ok")
    return bare


def serve_throughput(world: World, *, instance: str, database_url: str,
                     warm_up: float) -> dict:
    """Requests per second of the client pages and of a bare Flask route, each app in
    gunicorn with 2 sync workers on this machine; {} when gunicorn is not installed."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        return {}
    app_port, bare_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "EINBLICK_ENV": "test",
           "EINBLICK_INSTANCE_PATH": instance, "EINBLICK_SECURITY_LOG": "none",
           "EINBLICK_MASTER_KEYS": "b:" + crypto.b64encode(b"\x05" * 32),
           "EINBLICK_INDEX_KEY": crypto.b64encode(b"\x06" * 32),
           "EINBLICK_SECRET_KEY": "bench-only-not-a-secret",
           "EINBLICK_BASE_URL": f"http://127.0.0.1:{app_port}",
           "EINBLICK_ORIGIN": f"http://127.0.0.1:{app_port}", "EINBLICK_RP_ID": "localhost",
           "EINBLICK_RATELIMIT_ENABLED": "false"}
    servers = [subprocess.Popen(  # noqa: S603
        [str(gunicorn), "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{port}", "--chdir",
         str(folder), "--log-level", "warning", target],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port, folder, target in ((app_port, ROOT, "wsgi:app"),
                                     (bare_port, ROOT / "bench", "scale_bench:bare_app()"))]
    try:
        wait_for(app_port)
        wait_for(bare_port)
        cookie = http_sign_in(app_port, world.dashboard)  # waits for a worker to be up
        # The other worker may still be starting: warm up as long as a start-up takes.
        requests_per_second(app_port, "/home", cookie, seconds=1 + warm_up)
        bare = requests_per_second(bare_port, "/", "")
        out = {"gunicorn bare Flask route": {"rps": round(bare, 1)}}
        # The floor of any signed-in page: the imprint reads nothing but the session (one
        # statement) and draws the layout; no client page can serve more than it.
        for label, path in (("gunicorn imprint (signed in)", "/imprint"),
                            ("gunicorn client dashboard", "/home"),
                            ("gunicorn /my-data (client)", "/my-data")):
            rps = requests_per_second(app_port, path, cookie)
            out[label] = {"rps": round(rps, 1), "pct_bare": round(100 * rps / bare, 2)}
            print(f"  {label}: {rps:.0f} requests/s, {100 * rps / bare:.1f} % of bare "
                  f"({bare:.0f}/s)", flush=True)
        return out
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int) -> None:
    import socket

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)  # a server starting up: nothing to wait on but the port
    raise BenchFailed(f"gunicorn on port {port} did not start")


def http_request(port: int, method: str, path: str, *, cookie: str = "",
                 body: str | None = None):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def http_sign_in(port: int, person: Person) -> str:
    """Sign a client in through the form; returns the Cookie header."""
    from urllib.parse import urlencode

    from statements_bench import CSRF

    jar: dict[str, str] = {}

    def keep(response) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            jar[name] = rest.split(";", 1)[0]

    response, page = http_request(port, "GET", "/login")
    keep(response)
    match = CSRF.search(page.decode())
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    response, _ = http_request(port, "POST", "/login", cookie=cookie, body=urlencode(
        {"csrf_token": match.group(1) or match.group(2), "email": person.email,
         "password": PASSWORD}))
    keep(response)
    if response.status != 302:
        raise BenchFailed(f"signing in through gunicorn: status {response.status}")
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def requests_per_second(port: int, path: str, cookie: str, *,
                        seconds: float = SERVE_SECONDS) -> float:
    """Completed requests per second with ``SERVE_THREADS`` in flight, over ``seconds``
    after a warm-up second."""
    import threading

    done = [0]
    failures: list[int] = []
    lock = threading.Lock()
    warm_until = time.monotonic() + 1
    stop_at = warm_until + seconds

    def work() -> None:
        while (now := time.monotonic()) < stop_at:
            response, _ = http_request(port, "GET", path, cookie=cookie)
            if response.status != 200:
                failures.append(response.status)
                return
            if now >= warm_until:
                with lock:
                    done[0] += 1

    threads = [threading.Thread(target=work) for _ in range(SERVE_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise BenchFailed(f"gunicorn {path}: status {failures[0]}")
    return done[0] / seconds


# -- the table ------------------------------------------------------------------------------
def report(results: dict[int, dict], runs: int) -> None:
    sizes = sorted(results)
    rows = [label for label in results[sizes[0]] if not label.startswith("_")]
    width = 34
    print()
    print(f"Scale benchmark, PostgreSQL; pages through the Flask test client in one process "
          f"(median of {runs}); commands in a fresh process each (start-up included, except "
          f"the export); gunicorn rows: 2 sync workers, requests per second; st = SQL "
          f"statements, % bare = share of a bare Flask route's throughput served the same "
          f"way, MB = the process's peak RSS, cpu = the benchmark process's CPU ms per request")
    print(f"{'':<28}" + "".join(f"{f'{n:,} clients':>{width}}" for n in sizes))
    for label in rows:
        cells = []
        for n in sizes:
            item = results[n].get(label)
            if item is None:
                cells.append("-")
                continue
            if "rps" in item:
                pct = f"{item['pct_bare']:6.2f}%" if "pct_bare" in item else ""
                cells.append(f"{item['rps']:6.0f} req/s {pct:>7}{'':>8}")
                continue
            pct = f"{item['pct_bare']:6.2f}%" if "pct_bare" in item else ""
            rss = f"{item['rss_mb']:5.0f} MB" if "rss_mb" in item else ""
            if "cpu_ms" in item:
                rss = f"{item['cpu_ms']:5.1f} cpu"
            cells.append(f"{format_ms(item['ms'])} {item['statements']:>6} st {pct:>7}{rss:>8}")
        print(f"{label:<28}" + "".join(f"{cell:>{width}}" for cell in cells))
    print(f"{'load average (1, 5, 15 min)':<28}" + "".join(
        f"{' '.join(str(x) for x in results[n]['_load_average']):>{width}}" for n in sizes))
    print(f"{'seeding (clients, erasures)':<28}" + "".join(
        f"{format_ms(results[n]['_seed_seconds'] * 1000):>{width}}" for n in sizes))
    folder = ROOT / "bench" / "results"
    folder.mkdir(exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,  # noqa: S607
                            capture_output=True, text=True, check=False).stdout.strip()
    path = folder / f"scale-{datetime.now(UTC):%Y-%m-%d-%H%M}.json"
    path.write_text(json.dumps({
        "commit": commit, "database": "PostgreSQL", "runs": runs, "cpus": os.cpu_count(),
        "served_by": "Flask test client in the benchmark process; commands in a fresh "
                     "process each (time includes start-up, except the export)",
        "sizes": {str(n): results[n] for n in sizes}}, indent=1) + "\n")
    print(f"written to {path.relative_to(ROOT)}")


def format_ms(millis: float) -> str:
    if millis >= 10_000:
        return f"{millis / 1000:6.1f} s "
    return f"{millis:6.0f} ms" if millis >= 10 else f"{millis:6.2f} ms"


if __name__ == "__main__":
    sys.exit(main())
