"""Pages that list rows cost the same number of SQL statements however many rows they
show: the admin's booking queue (5 or 50 requests from different clients, 25 a page) and
a caseworker's case file (a few or many appointments, notes and documents). Each page still
shows what the database holds: names of clients, staff and services, and local times."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask_babel import force_locale, format_date, format_time
from sqlalchemy import select

from shared.extensions import db
from shared.i18n import format_when
from shared.models import (
    Account,
    Booking,
    Client,
    DataKey,
    Document,
    Message,
    MessageThread,
    Note,
    Service,
    StaffMember,
)
from shared.models.base import utcnow
from shared.services import availability
from tests.conftest import assign_caseworker, get_counting_statements, submit

STAFF_NAMES = ("A. Schmidt", "B. Yilmaz", "C. Nowak")
SERVICE_NAMES = ("Elternberatung", "Schuldnerberatung", "Familienhilfe")
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"0" * 200


@pytest.fixture
def team(app, make_bookable):
    """Three caseworkers, each offering a service of their own, with distinct names."""
    bookables = [make_bookable(name=service) for service in SERVICE_NAMES]
    with app.app_context():
        for bookable, name in zip(bookables, STAFF_NAMES, strict=True):
            db.session.get(StaffMember, bookable.staff_member_id).name = name
        db.session.commit()
    return bookables


def new_client(full_name: str) -> Client:
    """A client without an account (a person staff registered), inside an app context."""
    from shared.services.accounts import set_client_name

    data_key = DataKey.generate()
    client = Client(data_key=data_key)
    db.session.add_all([data_key, client])
    set_client_name(client=client, full_name=full_name)
    return client


def local_time(app, moment) -> str:
    """How the pages write a time: the organisation's zone, German, no seconds."""
    with app.test_request_context("/"), force_locale("de"):
        return format_time(moment, "short")


def local_day(app, moment) -> str:
    with app.test_request_context("/"), force_locale("de"):
        return format_date(moment, "full")


def local_date_time(app, moment) -> str:
    with app.test_request_context("/"), force_locale("de"):
        return format_when(moment)


# -- the admin's booking queue -------------------------------------------------------------
def add_requests(app, team, start: int, stop: int) -> list[tuple[str, str, str, object]]:
    """Requests number ``start`` to ``stop - 1``, each from a client of their own, spread over
    the three caseworkers; returns (client, service, staff name, start) of each."""
    first = (utcnow() + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    shown = []
    with app.app_context():
        for number in range(start, stop):
            bookable = team[number % len(team)]
            name = f"Klientin{number:03d} Muster"
            client = new_client(name)
            begin = first + timedelta(hours=number)
            db.session.add(Booking(client_id=client.id, data_key=client.data_key,
                                   service_id=bookable.service_id,
                                   staff_member_id=bookable.staff_member_id,
                                   start_at=begin, end_at=begin + timedelta(minutes=45),
                                   status="requested", expires_at=utcnow() + timedelta(days=2)))
            shown.append((name, SERVICE_NAMES[number % len(team)], STAFF_NAMES[number % len(team)],
                          begin))
        db.session.commit()
    return shown


def test_the_queue_costs_the_same_statements_for_5_and_50_requests(app, client, auth, team,
                                                                    make_staff):
    admin = make_staff(role="admin")
    auth.login(admin, area="staff")
    requests = add_requests(app, team, 0, 5)
    few_page, few = get_counting_statements(app, client, "/staff/bookings")
    requests += add_requests(app, team, 5, 50)
    many_page, many = get_counting_statements(app, client, "/staff/bookings")

    assert few_page.status_code == many_page.status_code == 200
    assert many == few, f"5 requests: {few} statements, 50 requests: {many}"
    # 25 a page, the oldest first: page 2 holds the rest, at the same cost.
    second_page, second = get_counting_statements(app, client, "/staff/bookings?page=2")
    assert second == few
    rows = [row for page in (many_page, second_page) for row in re.findall(
        r'<li class="kern-card card-list__item booking".*?</li>', page.get_data(as_text=True),
        re.S)]
    assert len(rows) == 50
    for name, service, staff_name, begin in requests:
        row = one_containing(rows, name)
        assert service in row
        assert f"bei {staff_name}" in row
        assert local_day(app, begin) in row
        assert local_time(app, begin) in row


def test_a_request_offers_other_times_when_asked_and_the_proposal_reaches_the_client(
        app, client, auth, team, make_staff):
    """The queue computes no free times for its rows; the "propose another time" link of
    one request opens the choice for that request only, and proposing still works."""
    add_requests(app, team, 0, 3)
    auth.login(make_staff(role="admin"), area="staff")
    queue = client.get("/staff/bookings").get_data(as_text=True)
    assert "<option" not in queue
    with app.app_context():
        booking = db.session.scalar(select(Booking).join(Service)
                                    .where(Service.name == SERVICE_NAMES[1]))
        booking_id, original = booking.id, booking.start_at
    link = f"/staff/bookings/{booking_id}/propose"
    assert f'href="{link}"' in queue
    choice = client.get(link).get_data(as_text=True)
    assert "Klientin001 Muster" in choice
    assert SERVICE_NAMES[1] in choice
    assert "Klientin000" not in choice
    taken, slot = re.findall(r'<option value="([^"]+)"', choice)[:2]
    take_slot(app, taken)
    # A time taken meanwhile leads back to the choice, which says so and no longer offers it.
    refused = submit(client, f"/staff/bookings/{booking_id}/propose", {"slot": taken},
                     form_url=link, follow_redirects=True)
    assert refused.request.path == link
    again = refused.get_data(as_text=True)
    assert "Diese Zeit ist nicht mehr frei." in again
    assert taken not in again
    response = submit(client, f"/staff/bookings/{booking_id}/propose", {"slot": slot},
                      form_url=link)
    assert response.status_code == 302
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert booking.status == "proposed"
        assert booking.original_start_at == original
        assert booking.start_at == availability.parse_slot_token(slot)[1]


def take_slot(app, token: str) -> None:
    """Another client's appointment at the time of a slot token."""
    staff_id, begin = availability.parse_slot_token(token)
    with app.app_context():
        member = db.session.get(StaffMember, staff_id)
        service = db.session.scalar(select(Service).where(Service.staff.contains(member)))
        other = new_client("Jemand Anderes")
        db.session.add(Booking(client_id=other.id, data_key=other.data_key,
                               service_id=service.id, staff_member_id=staff_id,
                               start_at=begin, end_at=begin + timedelta(minutes=45),
                               status="confirmed"))
        db.session.commit()


# -- the case file -------------------------------------------------------------------------
def fill_file(app, client_id, team, start: int, stop: int) -> list[tuple[str, str, str]]:
    """Appointments, notes and documents number ``start`` to ``stop - 1`` in a client's
    file, by the three caseworkers in turn; returns what the page should show of them."""
    past = (utcnow() - timedelta(days=400)).replace(minute=0, second=0, microsecond=0)
    shown = []
    with app.app_context():
        client = db.session.get(Client, client_id)
        for number in range(start, stop):
            bookable = team[number % len(team)]
            begin = past + timedelta(days=number)
            db.session.add(Booking(client_id=client.id, data_key=client.data_key,
                                   service_id=bookable.service_id,
                                   staff_member_id=bookable.staff_member_id,
                                   start_at=begin, end_at=begin + timedelta(minutes=45),
                                   status="confirmed"))
            note = Note(client_id=client.id, data_key=client.data_key,
                        author_id=bookable.staff_member_id, visible_to_client=False)
            note.body = f"Gesprächsnotiz {number:03d}"
            document = Document(client_id=client.id, data_key=client.data_key,
                                category="report", content_type="application/pdf",
                                size=len(PDF), uploaded_by_id=bookable.staff_member_id)
            document.filename = f"bericht-{number:03d}.pdf"
            document.content = PDF
            db.session.add_all([note, document])
            shown.append((note.body, document.filename, STAFF_NAMES[number % len(team)]))
        db.session.commit()
    return shown


def test_the_case_file_costs_the_same_statements_with_few_or_many_entries(app, client, auth,
                                                                           team):
    with app.app_context():
        client_id = new_client("Mia Demir").id
        db.session.commit()
    caseworker = team[0].staff
    assign_caseworker(app, client_id, caseworker)
    auth.login(caseworker, area="staff")
    entries = fill_file(app, client_id, team, 0, 3)
    url = f"/staff/clients/{client_id}"
    few_page, few = get_counting_statements(app, client, url)
    entries += fill_file(app, client_id, team, 3, 40)
    many_page, many = get_counting_statements(app, client, url)

    assert few_page.status_code == many_page.status_code == 200
    assert many == few, f"3 entries each: {few} statements, 40 each: {many}"
    # Each list shows its newest 20 (casefile.FILE_LIST); the older ones are a page on, at
    # the same cost.
    older_page, older = get_counting_statements(app, client,
                                                f"{url}?notes=2&documents=2&bookings=2")
    assert older == few, f"the second pages: {older} statements, the first: {few}"
    html = many_page.get_data(as_text=True) + older_page.get_data(as_text=True)
    assert "<h1 class=\"kern-heading-large\">Mia Demir</h1>" in html
    notes = re.findall(r'<article class="note".*?</article>', html, re.S)
    items = re.findall(r"<li>.*?</li>", html, re.S)
    assert len(notes) == 40
    for body, filename, author in entries:
        assert f"{author}, " in one_containing(notes, body)
        assert f"von {author} am " in one_containing(items, filename)
    with app.app_context():
        appointments = db.session.execute(
            select(Booking.start_at, Service.name).join(Service)
            .where(Booking.client_id == client_id)).all()
    assert len(appointments) == 40
    for begin, service in appointments:
        assert f"{local_date_time(app, begin)} · {service}" in html


def one_containing(parts: list[str], text: str) -> str:
    """The one part of a page (a list item, a note) that contains ``text``."""
    found = [part for part in parts if text in part]
    assert len(found) == 1, (text, len(found))
    return found[0]


def add_children_and_consents(app, parent_account_id, start: int, stop: int) -> list[str]:
    """Children number ``start`` to ``stop - 1`` of the parent, and as many published
    consent templates; returns the children's names."""
    from shared.models import Guardianship
    from shared.services import consents

    names = []
    with app.app_context():
        for number in range(start, stop):
            child = new_client(f"Kind{number} Demir")
            db.session.flush()
            db.session.add(Guardianship(guardian_account_id=parent_account_id,
                                        dependant_id=child.id, access="full"))
            names.append(f"Kind{number} Demir")
            template = consents.save_template(
                key=f"einwilligung-{number}",
                texts={"de": {"title": f"Einwilligung {number}", "text": "Ich willige ein."}},
                purpose="Zweck", legal_basis="Art. 6 Abs. 1 lit. a DSGVO", audience="Team",
                guardian_signs=True)
            consents.publish(template.id)
        db.session.commit()
    return names


def test_a_parents_file_costs_the_same_with_one_or_four_children_and_consents(
        app, client, auth, make_client, make_staff):
    """The household and consent sections list rows too: each child named, each published
    consent with the client's status, in statements that do not grow with them."""
    parent = make_client(full_name="Mia Demir")
    with app.app_context():
        parent_id = db.session.scalar(select(Client.id)
                                      .where(Client.account_id == parent.account_id))
    caseworker = make_staff(role="caseworker")
    assign_caseworker(app, parent_id, caseworker)
    auth.login(caseworker, area="staff")
    children = add_children_and_consents(app, parent.account_id, 0, 1)
    url = f"/staff/clients/{parent_id}"
    few_page, few = get_counting_statements(app, client, url)
    children += add_children_and_consents(app, parent.account_id, 1, 4)
    many_page, many = get_counting_statements(app, client, url)

    assert few_page.status_code == many_page.status_code == 200
    assert many == few, f"1 child and consent: {few} statements, 4 each: {many}"
    html = many_page.get_data(as_text=True)
    for name in children:
        assert f">{name}</a>" in html
    for number in range(4):
        assert re.search(rf'data-consent="einwilligung-{number}">Einwilligung {number}:\s*'
                         r'<span data-status="missing">', html)


# -- the staff inbox of messages ---------------------------------------------------------
def anonymous_contact(pseudonym: str) -> Client:
    """An anonymous contact (shared/services/anonymous.py): a pseudonym on its account, no
    name, no address; inside an app context."""
    import secrets

    data_key = DataKey.generate()
    account = Account(kind="client", data_key=data_key, locale="de")
    account.email = ""
    account.email_bidx = secrets.token_bytes(32)
    account.pseudonym = pseudonym
    client = Client(data_key=data_key, account=account, anonymous_at=utcnow())
    db.session.add_all([data_key, account, client])
    return client


def add_conversations(app, service_id, start: int, stop: int) -> list[tuple[str, str]]:
    """Conversations number ``start`` to ``stop - 1`` with the service, every third from an
    anonymous contact, the others from named clients; returns (who, topic) of each as the
    inbox names them."""
    shown = []
    with app.app_context():
        for number in range(start, stop):
            if number % 3 == 0:
                client = anonymous_contact(f"Wolke{number:03d}")
                who = f"Wolke{number:03d} (anonymer Kontakt)"
            else:
                who = f"Klientin{number:03d} Muster"
                client = new_client(who)
            db.session.flush()
            at = utcnow() - timedelta(minutes=number)
            thread = MessageThread(client_id=client.id, data_key=client.data_key,
                                   service_id=service_id, created_at=at, last_message_at=at,
                                   last_seq=1)
            thread.topic = f"Frage{number:03d}"
            db.session.add(thread)
            db.session.flush()
            message = Message(thread_id=thread.id, client_id=client.id,
                              data_key=client.data_key, author_account_id=client.account_id,
                              created_at=at, seq=1)
            message.body = "Ich habe eine Frage."
            db.session.add(message)
            shown.append((who, thread.topic))
        db.session.commit()
    return shown


@pytest.mark.parametrize("view", ["/staff/messages", "/staff/messages/all"])
def test_the_inbox_costs_the_same_with_3_or_20_conversations_anonymous_ones_too(
        app, client, auth, team, view):
    caseworker = team[0]
    auth.login(caseworker.staff, area="staff")
    conversations = add_conversations(app, caseworker.service_id, 0, 3)
    few_page, few = get_counting_statements(app, client, view)
    conversations += add_conversations(app, caseworker.service_id, 3, 20)
    many_page, many = get_counting_statements(app, client, view)

    assert few_page.status_code == many_page.status_code == 200
    assert many == few, f"3 conversations: {few} statements, 20: {many}"
    html = many_page.get_data(as_text=True)
    rows = re.findall(r'<li class="kern-card card-list__item message-row.*?</li>', html, re.S)
    assert len(rows) == 20
    for who, topic in conversations:
        row = one_containing(rows, topic)
        assert f"<bdi>{who}</bdi>" in row
    assert "20 Gespräche" in html


def test_the_inbox_counts_up_to_a_limit_and_says_more_than(app, client, auth, team,
                                                           monkeypatch):
    """Counting reads every conversation of the services; past the limit (counted from the
    page's start) the page says "more than" and still leads on, as the booking queue does."""
    from shared.services import messages

    caseworker = team[0]
    auth.login(caseworker.staff, area="staff")
    add_conversations(app, caseworker.service_id, 0, 30)
    monkeypatch.setattr(messages, "INBOX_COUNTED", 20)
    html = client.get("/staff/messages/all").get_data(as_text=True)
    assert "Mehr als 20 Gespräche" in html
    assert "30 Gespräche" not in html
    rows = re.findall(r'<li class="kern-card card-list__item message-row.*?</li>', html, re.S)
    assert len(rows) == 25  # a full page
    # Counted from the page's start: what lies past the count is still reached.
    assert "Seite 1 von mehr als 1" in html
    second = client.get("/staff/messages/all?page=2").get_data(as_text=True)
    assert len(re.findall(r'<li class="kern-card card-list__item message-row.*?</li>', second,
                          re.S)) == 5
    assert "Seite 2 von 2" in second
    assert "Mehr als" not in second
    monkeypatch.setattr(messages, "INBOX_COUNTED", 1000)
    html = client.get("/staff/messages/all").get_data(as_text=True)
    assert "30 Gespräche" in html
    assert "Seite 1 von 2" in html
