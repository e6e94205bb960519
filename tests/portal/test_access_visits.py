"""The access log as visits: one event per staff request and client, written in a constant
number of statements, read by the client (and by staff in the case file) in words, a page
at a time; chains written before the change still verify."""

import hashlib
import hmac
import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event as sql_event
from sqlalchemy import select, text

from shared import audit
from shared.extensions import db
from shared.models import AccessEvent, Client, Guardianship, StaffMember
from shared.models.base import utcnow
from tests.conftest import get_counting_statements, search_clients, submit
from tests.staff.test_casefile import case  # noqa: F401  (fixture)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def visible_text(page: str) -> str:
    """What a reader sees: the page without tags, attributes and scripts."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"</?bdi\b[^>]*>", "", page)  # names isolated for either direction
    return re.sub(r"<[^>]+>", " ", page)


def the_events(app, client_id) -> list[AccessEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AccessEvent).where(
            AccessEvent.client_id == client_id).order_by(AccessEvent.seq)))


def test_opening_a_file_once_is_one_visit_the_client_reads_in_words(app, client, auth, case):  # noqa: F811
    person, worker, client_id = case
    auth.login(worker, area="staff")
    client.get(f"/staff/clients/{client_id}")
    auth.logout("staff")

    (visit,) = the_events(app, client_id)
    assert visit.staff_member_id is not None
    assert visit.role == "caseworker"
    assert visit.purpose == audit.OPEN_FILE
    assert set(visit.category.split(",")) >= {"contact", "bookings", "notes", "documents"}

    auth.login(person)
    german = client.get("/my-data/access").get_data(as_text=True)
    assert german.count('class="access-log__item"') == 1
    words = " ".join(visible_text(german).split())
    assert "T. Tester, Fachkraft · " in words  # who and the day, then each visit
    assert re.search(r"\d{2}:\d{2}: hat die Akte geöffnet \([^)]*Kontaktdaten[^)]*Notizen",
                     words)
    assert "1 Besuch" in words
    submit(client, "/language/en", {"next": "/my-data/access"}, form_url="/my-data/access")
    english = " ".join(visible_text(client.get("/my-data/access").get_data(as_text=True))
                       .split())
    assert "T. Tester, caseworker · " in english
    assert re.search(r"\d{1,2}:\d{2}( [AP]M)?: opened the file \([^)]*contact data", english)
    for page in (german, english):
        assert not UUID.search(visible_text(page))
        assert not ISO.search(page)
        assert "open-file" not in page
    assert "caseworker ·" not in visible_text(german)


def test_the_time_shown_is_the_organisations_local_time(app, client, auth, case):  # noqa: F811
    person, worker, client_id = case
    auth.login(worker, area="staff")
    client.get(f"/staff/clients/{client_id}")
    auth.logout("staff")
    (visit,) = the_events(app, client_id)
    with app.test_request_context():
        from flask_babel import format_time

        local = format_time(visit.created_at, "short")  # Europe/Berlin, not UTC
    assert visit.created_at.utcoffset() == timedelta(0)
    auth.login(person)
    assert f"{local}: hat die Akte geöffnet" in client.get("/my-data/access").get_data(
        as_text=True)


def test_staff_read_the_same_log_in_words_in_the_case_file(app, client, auth, case):  # noqa: F811
    _person, worker, client_id = case
    auth.login(worker, area="staff")
    client.get(f"/staff/clients/{client_id}")
    page = client.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    log = visible_text(page[page.index('id="log-heading"'):])
    assert "hat die Akte geöffnet" in log
    assert "Kontaktdaten" in log
    for code in ("caseworker ·", "view", "contact", "open-file"):
        assert code not in log
    assert not ISO.search(page[page.index('id="log-heading"'):])


def test_a_search_is_one_visit_per_search_and_client_found(app, client, auth, case,  # noqa: F811
                                                           make_client):
    _person, worker, client_id = case
    other = make_client(email="mia.weber@example.org", full_name="Mia Weber")
    with app.app_context():
        other_id = db.session.scalar(select(Client.id).where(
            Client.account_id == other.account_id))
    auth.login(worker, area="staff")
    search_clients(client, "Mia")
    search_clients(client, "Mia")
    for found in (client_id, other_id):
        searches = the_events(app, found)
        assert [(e.action, e.purpose) for e in searches] == [("search", "search")] * 2
    auth.logout("staff")
    auth.login(other)
    page = client.get("/my-data/access").get_data(as_text=True)
    assert page.count("wurde bei einer Suche der Fachkräfte gefunden") == 2


def test_a_long_history_is_paged_small_and_in_constant_statements(app, client, auth, case):  # noqa: F811
    person, worker, client_id = case
    auth.login(worker, area="staff")
    client.get(f"/staff/clients/{client_id}")
    auth.logout("staff")
    add_visits(app, client_id, 30)
    auth.login(person)
    few_page, few = get_counting_statements(app, client, "/my-data/access")
    add_visits(app, client_id, 970)
    many_page, many = get_counting_statements(app, client, "/my-data/access")
    assert few_page.status_code == many_page.status_code == 200
    assert many == few, f"31 events: {few} statements, 1001 events: {many}"
    body = many_page.get_data()
    assert len(body) < 100_000, len(body)
    html = body.decode()
    # Counted up to a thousand, then said in words; paged by "Older" from the page's end.
    assert "Mehr als 1.000 Besuche" in html
    assert html.count('class="access-log__item"') == audit_page_size()
    pages, seen, page = 1, audit_page_size(), html
    while (older := re.search(r'href="(/my-data/access\?older=[^"#]+)', page)):
        page = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
        seen += page.count('class="access-log__item"')
        pages += 1
    assert seen == 1001
    assert pages == 41
    assert "hat die Akte geöffnet" in page  # the oldest visit, on the last page
    assert client.get("/my-data/access?older=nonsense").status_code == 200  # not an error


def audit_page_size() -> int:
    from shared.services.transparency import VISITS_PER_PAGE

    return VISITS_PER_PAGE


def add_visits(app, client_id, count: int) -> None:
    """``count`` bookings-list visits by another caseworker, one request each."""
    with app.app_context():
        member = db.session.scalar(select(StaffMember).where(StaffMember.role == "caseworker"))
        audit.set_purpose(audit.BOOKING_LISTS)
        for _ in range(count):
            audit.record_access(client_id=client_id, staff_member=member,
                                category=audit.BOOKINGS)
            db.session.commit()


def test_a_request_writes_its_visits_in_the_same_statements_for_3_or_30_clients(
        app, make_staff):
    make_staff(role="caseworker")

    def statements_to_log(clients: int) -> int:
        ids = [uuid.uuid4() for _ in range(clients)]
        with app.app_context():
            member = db.session.scalar(select(StaffMember))
            for client_id in ids:  # every client already has a chain to continue
                audit.record_access(client_id=client_id, staff_member=member,
                                    category=audit.CONTACT)
            db.session.commit()
            seen = []

            def count(*_args) -> None:
                seen.append(1)

            sql_event.listen(db.engine, "before_cursor_execute", count)
            try:
                for client_id in ids:
                    for category in (audit.CONTACT, audit.BOOKINGS, audit.NOTES):
                        audit.record_access(client_id=client_id, staff_member=member,
                                            category=category)
                db.session.commit()
            finally:
                sql_event.remove(db.engine, "before_cursor_execute", count)
            for client_id in ids:
                events = audit.events_for(client_id)
                assert [e.category for e in events] == ["bookings,contact,notes", "contact"]
                assert audit.verify_chain(client_id) is None
            return len(seen)

    assert statements_to_log(3) == statements_to_log(30)


def test_a_rolled_back_request_leaves_no_visit(app, make_staff):
    make_staff(role="caseworker")
    client_id = uuid.uuid4()
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        audit.record_access(client_id=client_id, staff_member=member, category=audit.NOTES)
        db.session.rollback()
        db.session.commit()
        assert audit.events_for(client_id) == []
        audit.record_access(client_id=client_id, staff_member=member, category=audit.CONTACT)
        db.session.commit()
        assert [e.category for e in audit.events_for(client_id)] == ["contact"]


def test_the_purpose_is_covered_by_the_chain(app, make_staff, runner):
    make_staff(role="caseworker")
    client_id = uuid.uuid4()
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        audit.set_purpose(audit.FIND)
        audit.record_access(client_id=client_id, staff_member=member, category=audit.CONTACT,
                            action=audit.SEARCH)
        db.session.commit()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    with app.app_context():
        db.session.execute(text("UPDATE access_events SET purpose = 'open-file'"))
        db.session.commit()
    assert runner.invoke(args=["audit", "verify"]).exit_code != 0


def test_chains_from_before_the_change_verify_and_stay_anchored(app, make_staff, runner):
    """Events written by the old code (one per category, no purpose, hashed without one)
    continue with visits; chain and anchor verify, and the page shows the old request's
    events as one visit."""
    make_staff(role="caseworker")
    client_id = uuid.uuid4()
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        key = audit._chain_key()
        previous, at = audit.GENESIS, utcnow().replace(microsecond=0) - timedelta(days=1)
        for seq, category in enumerate(("contact", "bookings", "notes"), start=1):
            payload = json.dumps({"client": str(client_id), "seq": seq, "staff": str(member.id),
                                  "role": "caseworker", "category": category, "action": "view",
                                  "grant": None, "at": at.isoformat()},
                                 sort_keys=True, separators=(",", ":")).encode()
            digest = hmac.new(key, previous + payload, hashlib.sha256).digest()
            db.session.add(AccessEvent(client_id=client_id, seq=seq, staff_member_id=member.id,
                                       role="caseworker", category=category, action="view",
                                       created_at=at, prev_hash=previous, hash=digest))
            previous = digest
        db.session.commit()
    assert runner.invoke(args=["audit", "anchor"]).exit_code == 0
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        audit.set_purpose(audit.OPEN_FILE)
        audit.record_access(client_id=client_id, staff_member=member, category=audit.CONTACT)
        db.session.commit()
        assert audit.verify_chain(client_id) is None
        assert audit.verify_anchor() == []
        from shared.models import DataKey
        from shared.services import transparency

        data_key = DataKey.generate()
        person = Client(id=client_id, data_key=data_key)
        db.session.add_all([data_key, person])
        db.session.flush()
        with app.test_request_context():
            page = transparency.file_visits_page(person)
        assert page.total == 4
        assert [len(v.categories) for v in page.visits] == [1, 3]  # the old request, merged
        db.session.rollback()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def family(app, client, auth, make_client):
    """A parent (a client) with a child, both assigned to no one."""
    from tests.portal.test_household import add_child

    parent = make_client(full_name="Ayse Demir")
    auth.login(parent)
    add_child(client, full_name="Emil Demir", birth_date="2012-05-05")
    auth.logout()
    with app.app_context():
        child = db.session.scalar(select(Guardianship)).dependant_id
        parent_id = db.session.scalar(select(Client.id).where(
            Client.account_id == parent.account_id))
    return parent, parent_id, child


def test_an_emergency_opening_is_marked_on_the_children_it_touched_without_the_reason(
        app, client, auth, family, make_staff):
    """The parent's file opened in an emergency names the child: the child's entry says it
    was an emergency opening of a household member's file. The reason typed was about the
    parent: only the parent's own entry shows it (neither the child nor a caseworker who
    reads only the child's file learns the parent's emergency)."""
    parent, parent_id, child = family
    auth.login(make_staff(role="caseworker"), area="staff")
    submit(client, f"/staff/clients/{parent_id}/break-glass",
           {"reason": "Mutter ruft aus dem Krankenhaus an"})
    client.get(f"/staff/clients/{parent_id}")
    (child_visit,) = the_events(app, child)
    assert child_visit.grant_id is not None
    with app.app_context():
        from shared.services import transparency

        with app.test_request_context():
            page = transparency.file_visits_page(db.session.get(Client, child))
            assert page.visits[0].reason is None
            assert page.visits[0].emergency
            assert str(page.visits[0].summary) == "hat den Namen bei einer Notfall-Öffnung " \
                "der Akte eines Haushaltsmitglieds gesehen"
    # The parent reads the reason in their own log.
    auth.logout("staff")
    auth.login(parent)
    assert "Mutter ruft aus dem Krankenhaus an" in client.get("/my-data/access").get_data(
        as_text=True)


def test_a_childs_break_glass_reason_is_not_put_on_the_guardians_entry(app, client, auth,
                                                                       family, make_staff):
    parent, parent_id, child = family
    auth.login(make_staff(role="caseworker"), area="staff")
    submit(client, f"/staff/clients/{child}/break-glass",
           {"reason": "Emil meldet sich allein, ohne Eltern"})
    client.get(f"/staff/clients/{child}")
    (parent_visit,) = the_events(app, parent_id)
    assert parent_visit.grant_id is None
    auth.logout("staff")
    auth.login(parent)
    page = client.get("/my-data/access").get_data(as_text=True)
    assert "ohne Eltern" not in page
    assert "im Notfall" not in page
    # The parent's own entry: their name was read in a household member's file.
    assert ": hat den Namen in der Akte eines Haushaltsmitglieds gesehen (Kontaktdaten)" in page


def test_an_access_noted_in_the_transaction_that_erases_the_client_is_not_written(
        app, make_client, make_staff):
    from shared.services import erasure

    make_staff(role="admin")
    person = make_client()
    with app.app_context():
        client_id = db.session.scalar(select(Client.id).where(
            Client.account_id == person.account_id))
        member = db.session.scalar(select(StaffMember))
        audit.record_access(client_id=client_id, staff_member=member, category=audit.CONTACT)
        erasure.journal_append([client_id], at=utcnow())
        erasure.erase_client(client_id, at=utcnow(), shred=True)
        db.session.commit()
        assert db.session.get(Client, client_id) is None
        assert audit.events_for(client_id) == []


def test_every_staff_page_says_what_its_visits_are_for_or_that_it_reads_no_client():
    """A new staff page must be named in staff.PURPOSES (its visits read as a sentence)
    or in staff.WITHOUT_CLIENT_DATA; otherwise a client would read "looked at data"."""
    from shared import policy
    from staff import PURPOSES, WITHOUT_CLIENT_DATA

    pages = {name for name in policy.ENDPOINT_ROLES if name.startswith("staff.")}
    assert pages - set(PURPOSES) - WITHOUT_CLIENT_DATA == set()
    assert set(PURPOSES) & WITHOUT_CLIENT_DATA == set()
    assert set(PURPOSES.values()) <= set(audit.PURPOSES)


def test_the_case_files_log_pages_too(app, client, auth, case):  # noqa: F811
    _person, worker, client_id = case
    add_visits(app, client_id, 30)
    auth.login(worker, area="staff")
    first = client.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    log = first[first.index('id="log-heading"'):]
    assert log.count('class="access-log__item"') == audit_page_size()
    assert "Seite 1 von 2" in log
    assert f'href="/staff/clients/{client_id}?page=2#log-heading"' in log
    second = client.get(f"/staff/clients/{client_id}?page=2").get_data(as_text=True)
    older = second[second.index('id="log-heading"'):]
    # 30 visits, the first opening and this one (logged before the page is read)
    assert older.count('class="access-log__item"') == 32 - audit_page_size()
    assert "hat die Terminlisten angesehen" in older
