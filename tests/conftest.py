"""Fixtures: an app per test on a database migrated once per run (SQLite or PostgreSQL),
an outbox reader, factories for clients and staff, and an ``auth`` helper that signs in
through the real forms."""

from __future__ import annotations

import email
import os
import re
import shutil
import tempfile
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pyotp
import pytest
from jinja2 import BytecodeCache
from sqlalchemy import create_engine, text
from werkzeug.routing.rules import Rule
from werkzeug.serving import make_server

from shared import crypto
from shared.app import create_app
from shared.config import Config
from shared.extensions import db

TEST_KEYS = {
    "master_keys": "test1:" + crypto.b64encode(b"\x01" * 32),
    "index_key": crypto.b64encode(b"\x02" * 32),
    "secret_key": "test-secret-key-not-for-production",
}


def _reuse_compiled_url_builders() -> None:
    """Every test makes its own app, and Werkzeug compiles two URL builders per route for
    each (about 0.55 s of the 0.58 s an app costs, ~8 minutes of a run). A builder is a
    pure function of the rule's parsed parts and defaults, so the run compiles each once
    and later apps reuse it. Tests only: production builds its app once per process."""
    compiled: dict = {}
    original = Rule._compile_builder

    def cached(self, append_unknown: bool = True):
        key = (self.rule, tuple(self._trace), repr(sorted((self.defaults or {}).items())),
               tuple((name, type(conv)) for name, conv in self._converters.items()),
               append_unknown)
        if key not in compiled:
            compiled[key] = original(self, append_unknown)
        return compiled[key]

    Rule._compile_builder = cached


_reuse_compiled_url_builders()


class _RunBytecodeCache(BytecodeCache):
    """Jinja compiles each template once per environment, and every test's app has its
    own: about a seventh of a run. The run keeps the compiled code in memory and every app
    loads it from here; Jinja checks the source's checksum, so an edited template is
    compiled anew."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = _RunBytecodeCache()

# Argon2 at production cost (19 MiB, 2 passes) is 0.1 s a hash, and the suite signs in and
# creates accounts thousands of times. Tests hash at the lowest cost; the cost production
# uses is tested in tests/portal/test_registration.py with PRODUCTION_ARGON2.
CHEAP_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}
PRODUCTION_ARGON2 = {"argon2_time_cost": Config.argon2_time_cost,
                     "argon2_memory_kib": Config.argon2_memory_kib}


def postgres_requested() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith("postgres")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``markup`` judge what the pages are made of (accessibility, layout on a
    phone, ids, catalogues, script size): the same whichever database holds the rows.
    They run in the SQLite run; the PostgreSQL run of CI, on the same two cores beside
    it, skips them (the axe sweep alone takes minutes)."""
    if not postgres_requested():
        return
    skip = pytest.mark.skip(reason="markup only, the same on every database: checked in the "
                                   "SQLite run")
    for item in items:
        if item.get_closest_marker("markup"):
            item.add_marker(skip)


def create_postgres_database(base_url: str) -> str:
    """A fresh database on the server in DATABASE_URL, so runs never collide."""
    name = "einblick_test_" + uuid.uuid4().hex[:12]
    url = Config(database_url=base_url).sqlalchemy_url
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # a test database need not wait for the disk at each commit
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    engine = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def fresh_database_url(tmp_path_factory):
    """Factory: a new empty database URL (a file for SQLite, a database for PostgreSQL)."""
    created: list[str] = []

    def make() -> str:
        if postgres_requested():
            url = create_postgres_database(os.environ["DATABASE_URL"])
            created.append(url)
            return url
        return "sqlite:///" + str(Path(tempfile.mkdtemp(dir=memory)) / "einblick.sqlite3")

    # SQLite files in memory where the machine has a tmpfs: each commit waited ~8 ms for
    # the disk, and a run commits tens of thousands of times.
    shm = "/dev/shm"  # noqa: S108 (mkdtemp makes a directory only this user may open)
    memory = tempfile.mkdtemp(prefix="einblick-test-", dir=shm if os.path.isdir(shm) else None)
    yield make
    shutil.rmtree(memory, ignore_errors=True)
    for url in created:
        drop_postgres_database(url)


def make_config(instance_path: Path, database_url: str, **overrides) -> Config:
    return Config(
        env="test",
        instance_path=str(instance_path),
        database_url=database_url,
        base_url="http://localhost",
        rp_id="localhost",
        origin="http://localhost",
        **TEST_KEYS,
    ).with_(**{**CHEAP_ARGON2, **overrides})


@pytest.fixture(scope="session")
def database_url(fresh_database_url, tmp_path_factory):
    """The run's shared database, migrated once with Alembic."""
    from shared.cli import upgrade_database

    url = fresh_database_url()
    app = create_app(make_config(tmp_path_factory.mktemp("migrate"), url))
    with app.app_context():
        upgrade_database()
        db.engine.dispose()
    return url


@pytest.fixture
def config_overrides() -> dict:
    """Override in a test module to change the app's configuration."""
    return {}


@pytest.fixture
def app(database_url, tmp_path, config_overrides):
    app = create_app(make_config(tmp_path / "instance", database_url, **config_overrides))
    app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
    yield app
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# -- outbox ------------------------------------------------------------------------------
class Outbox:
    def __init__(self, app) -> None:
        self.folder = Path(app.instance_path) / "outbox"

    def messages(self) -> list[EmailMessage]:
        if not self.folder.exists():
            return []
        return [
            email.message_from_bytes(path.read_bytes(), policy=default_policy)
            for path in sorted(self.folder.glob("*.eml"))
        ]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if m["To"] == address]

    def last_to(self, address: str) -> EmailMessage:
        messages = self.to(address)
        assert messages, f"no email to {address}"
        return messages[-1]

    def link(self, address: str, path_prefix: str) -> str:
        """The path of the link starting with ``path_prefix`` in the last email to address."""
        body = self.last_to(address).get_content()
        match = re.search(r"https?://[^/\s]+(" + re.escape(path_prefix) + r"[^\s]*)", body)
        assert match, f"no {path_prefix} link in: {body}"
        return match.group(1)


@pytest.fixture
def outbox(app) -> Outbox:
    return Outbox(app)


# -- forms -------------------------------------------------------------------------------
CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


def submit(client, url: str, data: dict, *, form_url: str | None = None, **kwargs):
    """Open the page with the form, then post it with its CSRF token and the hidden fields
    of the form that posts to ``url`` (as a browser would); ``data`` is what a person
    types or overrides."""
    page = client.get(form_url or url)
    assert page.status_code == 200, (form_url or url, page.status_code)
    html = page.get_data(as_text=True)
    payload = {**hidden_fields(html, url, page_url=form_url or url),
               "csrf_token": csrf_token(html), **data}
    return client.post(url, data=payload, **kwargs)


def consent_begin_url(client, page: str) -> str:
    """The address a consent page's script asks for a passkey challenge (it carries the
    language and the text the page showed)."""
    import html as html_module

    shown = client.get(page).get_data(as_text=True)
    return html_module.unescape(
        re.search(r'data-begin="([^"]+/passkey/begin[^"]*)"', shown).group(1))


def hidden_fields(html: str, url: str, *, page_url: str) -> dict[str, str]:
    """The hidden inputs of the first form on the page whose action is ``url`` (a form
    without an action posts to its own page)."""
    from html.parser import HTMLParser
    from urllib.parse import urlsplit

    def path(address: str) -> str:
        return urlsplit(address).path

    class Forms(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.current: dict | None = None
            self.found: dict | None = None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "form" and self.found is None:
                action = attrs.get("action") or page_url
                self.current = {} if path(action) == path(url) else None
            elif (tag == "input" and self.current is not None
                  and (attrs.get("type") or "").lower() == "hidden" and attrs.get("name")):
                self.current.setdefault(attrs["name"], attrs.get("value") or "")

        def handle_endtag(self, tag):
            if tag == "form":
                if self.current is not None and self.found is None:
                    self.found = self.current
                self.current = None

    forms = Forms()
    forms.feed(html)
    return forms.found or {}


@pytest.fixture
def totp_clock(monkeypatch):
    """Move the TOTP clock forward one step at a time instead of waiting 30 s."""
    import time

    from shared.auth import totp

    class Clock:
        def __init__(self) -> None:
            self.now = time.time()

        def advance(self, seconds: float = totp.STEP_SECONDS) -> None:
            self.now += seconds

        def code(self, secret: str) -> str:
            return pyotp.TOTP(secret).at(self.now)

        def wrong_code(self, secret: str) -> str:
            """Six digits that are neither the current nor the previous step's code."""
            valid = {self.code(secret), pyotp.TOTP(secret).at(self.now - totp.STEP_SECONDS)}
            return next(f"{n:06d}" for n in range(123456, 10**6) if f"{n:06d}" not in valid)

    clock = Clock()
    monkeypatch.setattr(totp, "clock", lambda: clock.now)
    return clock


@pytest.fixture
def sign_in_clock(monkeypatch, totp_clock):
    """The TOTP clock, which now also times the step between password and code
    (login_flow.clock): a test lets its five minutes pass instead of waiting."""
    from shared.auth import login_flow

    monkeypatch.setattr(login_flow, "clock", lambda: totp_clock.now)
    return totp_clock


# -- factories ---------------------------------------------------------------------------
STRONG_PASSWORD = "violet-harbour-lantern-92"


@dataclass
class Person:
    email: str
    password: str
    totp_secret: str | None
    account_id: uuid.UUID


@pytest.fixture
def make_client(app):
    """Create a confirmed client account directly (for tests that are not about signing up)."""
    from shared.auth import passwords
    from shared.models import Account, Client, DataKey
    from shared.models.base import utcnow

    def make(email: str | None = None, password: str = STRONG_PASSWORD, totp: bool = False,
             full_name: str | None = None) -> Person:
        email = email or f"client-{uuid.uuid4().hex[:8]}@example.org"
        with app.app_context():
            data_key = DataKey.generate()
            account = Account(kind="client", data_key=data_key, locale="de")
            account.email = email
            account.password_hash = passwords.hash_password(password)
            account.email_confirmed_at = utcnow()
            secret = None
            if totp:
                secret = pyotp.random_base32()
                account.totp_secret = secret
                account.totp_enabled_at = utcnow()
            client = Client(data_key=data_key, account=account)
            db.session.add_all([data_key, account, client])
            from shared.services.accounts import set_client_name

            set_client_name(client=client, full_name=full_name)  # with its search tokens
            db.session.commit()
            return Person(email, password, secret, account.id)

    return make


@pytest.fixture
def make_staff(app):
    """Create an active staff member with TOTP set up; returns their secret."""
    from shared.auth import passwords
    from shared.models.base import utcnow
    from shared.services import staff

    def make(role: str = "caseworker", email: str | None = None, totp: bool = True) -> Person:
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.org"
        with app.app_context():
            member, _ = staff.create_staff(email=email, role=role, name="T. Tester", invite=False)
            account = member.account
            account.password_hash = passwords.hash_password(STRONG_PASSWORD)
            account.email_confirmed_at = utcnow()
            secret = None
            if totp:
                secret = pyotp.random_base32()
                account.totp_secret = secret
                account.totp_enabled_at = utcnow()
            db.session.commit()
            return Person(email, STRONG_PASSWORD, secret, account.id)

    return make


class Auth:
    def __init__(self, client, clock) -> None:
        self.client = client
        self.clock = clock

    def login(self, person: Person, *, area: str = "portal"):
        prefix = "/staff" if area == "staff" else ""
        response = submit(
            self.client, f"{prefix}/login", {"email": person.email, "password": person.password}
        )
        if person.totp_secret and response.status_code == 302 and "/login/code" in (
            response.headers["Location"]
        ):
            self.clock.advance()
            response = submit(
                self.client, f"{prefix}/login/code", {"code": self.clock.code(person.totp_secret)}
            )
        return response

    def logout(self, area: str = "portal"):
        prefix = "/staff" if area == "staff" else ""
        return submit(self.client, f"{prefix}/logout", {})


@pytest.fixture
def auth(client, totp_clock) -> Auth:
    return Auth(client, totp_clock)


# -- bookings ----------------------------------------------------------------------------
@dataclass
class Bookable:
    service_id: uuid.UUID
    staff: Person
    staff_member_id: uuid.UUID


@pytest.fixture
def make_bookable(app, make_staff):
    """A service offered by a caseworker who works 08:00–20:00 every day."""
    from datetime import time as clock_time

    from shared.models import AvailabilityRule, Service, StaffMember

    def make(name: str = "Elternberatung", minutes: int = 45, role: str = "caseworker"
             ) -> Bookable:
        person = make_staff(role=role)
        with app.app_context():
            member = db.session.scalar(
                __import__("sqlalchemy").select(StaffMember)
                .where(StaffMember.account_id == person.account_id))
            service = Service(name=name, description="", duration_minutes=minutes,
                              location="Raum 2", online=False)
            service.staff = [member]
            db.session.add(service)
            for weekday in range(7):
                db.session.add(AvailabilityRule(staff_member_id=member.id, weekday=weekday,
                                                start_time=clock_time(8),
                                                end_time=clock_time(20)))
            db.session.commit()
            return Bookable(service.id, person, member.id)

    return make


def add_booking(client, bookable: Bookable, *, end, status: str = "confirmed",
                minutes: int = 60):
    """A booking written directly (inside an app context), e.g. one that took place."""
    from datetime import timedelta

    from shared.models import Booking

    booking = Booking(client_id=client.id, data_key=client.data_key,
                      service_id=bookable.service_id, staff_member_id=bookable.staff_member_id,
                      start_at=end - timedelta(minutes=minutes), end_at=end, status=status)
    db.session.add(booking)
    return booking


def tomorrow_slot_token(app, bookable: Bookable, index: int = 0) -> str:
    """The token of a free slot tomorrow (local time)."""
    from datetime import datetime, timedelta

    from shared.models import Service, StaffMember
    from shared.services import availability

    with app.app_context():
        service = db.session.get(Service, bookable.service_id)
        member = db.session.get(StaffMember, bookable.staff_member_id)
        day = datetime.now(availability.local_zone()).date() + timedelta(days=1)
        return availability.free_slots(service=service, staff_member=member, day=day)[index].token


@pytest.fixture
def live_server(app):
    server = make_server("localhost", 0, app, threaded=True)
    address = f"http://localhost:{server.server_port}"
    state = app.extensions["einblick"]
    # The port is known only now: passkeys check the exact origin, emails link to it.
    state.config = state.config.with_(origin=address, base_url=address)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield address
    server.shutdown()
    thread.join(timeout=5)


# -- passkeys and step-up ----------------------------------------------------------------
def post_json(client, url: str, body: dict | None = None, *, page: str = "/"):
    """POST JSON as static/js/passkeys.js does, with the CSRF token of a page's meta tag."""
    html = client.get(page, follow_redirects=True).get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
    return client.post(url, json=body or {}, headers={"X-CSRFToken": token})


def register_passkey(client, *, name: str = "Mein Handy", prefix: str = ""):
    """Add a passkey of a new software authenticator to the signed-in account; returns
    the authenticator."""
    from tests.soft_authenticator import SoftAuthenticator

    authenticator = SoftAuthenticator(origin="http://localhost")
    begin = post_json(client, f"{prefix}/account/passkeys/begin", page=f"{prefix}/")
    assert begin.status_code == 200, begin.get_data(as_text=True)
    credential = authenticator.create(begin.get_data(as_text=True))
    finish = post_json(client, f"{prefix}/account/passkeys/finish",
                       {"credential": credential, "name": name}, page=f"{prefix}/")
    assert finish.status_code == 200, finish.get_data(as_text=True)
    return authenticator


def age_sign_ins(app, *, minutes: int = 10) -> None:
    """Make every session's last confirmation ``minutes`` old, so a change needs a step-up."""
    from datetime import timedelta

    from sqlalchemy import select

    from shared.models import UserSession

    with app.app_context():
        for row in db.session.scalars(select(UserSession)):
            row.authenticated_at -= timedelta(minutes=minutes)
        db.session.commit()


def search_clients(client, query: str, birth_date: str = "") -> str:
    """The staff client search, posted as the form does; returns the result page."""
    response = submit(client, "/staff/clients", {"q": query, "birth_date": birth_date})
    assert response.status_code == 200
    return response.get_data(as_text=True)


# -- young people and their own accounts -------------------------------------------------
@dataclass
class YoungPerson:
    parent: Person
    client_id: uuid.UUID
    guardianship_id: uuid.UUID


@pytest.fixture
def make_young_person(app, make_client):
    """A dependant old enough for an own account (17), with a parent who sees everything,
    and a caseworker's note for them that is confidential from guardians but visible to
    the young person (written directly)."""
    from datetime import date

    from shared.models import Client, DataKey, Guardianship, Note
    from shared.services.accounts import set_client_name

    def make(full_name: str = "Lara Demir", *, note_by: uuid.UUID | None = None,
             confidential_note: str = "Beratung ohne Eltern") -> YoungPerson:
        parent = make_client(full_name="Mia Demir")
        with app.app_context():
            today = date.today()
            data_key = DataKey.generate()
            child = Client(data_key=data_key)
            child.birth_date = today.replace(year=today.year - 17, day=1)
            db.session.add_all([data_key, child])
            set_client_name(client=child, full_name=full_name)
            link = Guardianship(guardian_account_id=parent.account_id, dependant_id=child.id,
                                access="full")
            db.session.add(link)
            db.session.flush()
            if note_by is not None:
                note = Note(client_id=child.id, data_key=child.data_key, author_id=note_by,
                            visible_to_client=True, confidential_from_guardians=True)
                note.body = confidential_note
                db.session.add(note)
            db.session.commit()
            return YoungPerson(parent, child.id, link.id)

    return make


def staff_member_id(app, person: Person) -> uuid.UUID:
    from shared.models import StaffMember

    with app.app_context():
        return db.session.scalar(__import__("sqlalchemy").select(StaffMember.id)
                                 .where(StaffMember.account_id == person.account_id))


@contextmanager
def counting_statements(app):
    """Inside the block, every SQL statement the app's engine runs is appended to the list
    it yields."""
    from sqlalchemy import event as sql_event

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sql_event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sql_event.remove(engine, "before_cursor_execute", count)


def get_counting_statements(app, client, url: str):
    """GET ``url``; returns the response and how many SQL statements the request ran.

    The session's "last seen" is written at most once a minute (shared.auth.sessions): on
    a loaded machine a test that seeds for a minute would meet that write (and the reload
    after its commit) in one request and not in another. It is no work per row shown, so
    the counted request does not make it."""
    from datetime import timedelta

    from shared.auth import sessions

    touch_interval, sessions._TOUCH_INTERVAL = sessions._TOUCH_INTERVAL, timedelta.max
    try:
        with counting_statements(app) as statements:
            response = client.get(url)
    finally:
        sessions._TOUCH_INTERVAL = touch_interval
    return response, len(statements)


def sign_with_code_and_name(app, client, auth, make_client, template_id: uuid.UUID,
                            totp_clock) -> tuple[uuid.UUID, uuid.UUID]:
    """Jonas Weber signs a published template for himself with a code and his typed name
    (the weaker method) and stays signed in; returns his client id and the consent's id."""
    from sqlalchemy import select

    from shared.models import Client, Consent

    person = make_client(totp=True, full_name="Jonas Weber")
    auth.login(person)
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
    totp_clock.advance()
    submit(client, f"/consents/{template_id}/{own}",
           {"code": totp_clock.code(person.totp_secret), "typed_name": "Jonas Weber"})
    with app.app_context():
        return own, db.session.scalar(select(Consent.id))


def assign_caseworker(app, client_id: uuid.UUID, person: Person) -> None:
    from shared.models import Assignment

    with app.app_context():
        db.session.add(Assignment(client_id=client_id,
                                  staff_member_id=staff_member_id(app, person)))
        db.session.commit()


YOUNG_PASSWORD = "lara-eigenes-passwort-16"


def claim_invitation(app, outbox, address: str, password: str = YOUNG_PASSWORD):
    """Open the invitation link mailed to ``address`` in a new browser and choose a
    password; returns that browser, signed in."""
    browser = app.test_client()
    response = submit(browser, outbox.link(address, "/confirm/"),
                      {"password": password, "submit": "1"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def confirm_in_person(app, auth, caseworker: Person, client_id: uuid.UUID) -> None:
    """An assigned caseworker (not the one who sent a staff invitation) confirms in the case
    file that they met the young person, who holds their own account."""
    assign_caseworker(app, client_id, caseworker)
    browser = app.test_client()
    Auth(browser, auth.clock).login(caseworker, area="staff")
    response = submit(browser, f"/staff/clients/{client_id}/handover", {},
                      form_url=f"/staff/clients/{client_id}")
    assert response.status_code == 302
    with app.app_context():
        from shared.models import Client

        assert db.session.get(Client, client_id).account.handover_confirmed_at is not None


def security_events(app, name: str) -> list[tuple[str, str | None]]:
    """The stored security events called ``name``, oldest first: (outcome, account pseudonym)."""
    from sqlalchemy import select

    from shared.models import SecurityEvent

    with app.app_context():
        return [(row.outcome, row.account_ref) for row in db.session.scalars(
            select(SecurityEvent).where(SecurityEvent.event == name)
            .order_by(SecurityEvent.at))]


# -- field formats -----------------------------------------------------------------------
def store_in_field_format_1(row) -> None:
    """Re-store each encrypted value of ``row`` as code before migration 0009 wrote it:
    field format 1, bound to table, column and row but not to the owner."""
    from shared.models.base import encrypted_fields

    key = row.data_key
    for name, field in encrypted_fields(type(row)).items():
        blob = getattr(row, field.attr)
        if blob is None or blob[0] == crypto.LEGACY_FIELD_FORMAT_VERSION:
            continue
        plaintext = crypto.decrypt_field(data_key=key.plaintext(), data_key_id=key.id,
                                         blob=blob, aad=field.aad(row))
        setattr(row, field.attr, crypto.encrypt_field(
            data_key=key.plaintext(), data_key_id=key.id, plaintext=plaintext,
            aad=crypto.legacy_field_aad(row.__tablename__, name, row.id),
            version=crypto.LEGACY_FIELD_FORMAT_VERSION))
