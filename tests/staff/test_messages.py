"""The staff side of messages, driven as staff do it: the inbox of one's services (open,
mine, all), taking and joining, answering with an attachment or kept from guardians, who
is refused (reception, admins, a caseworker of another service), every read in the
client's access log, and instant emails or the daily digest, never with content."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from sqlalchemy import select

from shared.extensions import db
from tests.conftest import Auth, staff_member_id, submit

TOPIC = "Frage zum Hilfeplangespräch"
BODY = "Können wir das Gespräch auf nächste Woche verschieben?"
ANSWER = "Ja, gern. Ich schlage Dienstag vor."
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"0" * 200


def signed_in(app, auth, person, area="staff"):
    browser = app.test_client()
    Auth(browser, auth.clock).login(person, area=area)
    return browser


def name_staff(app, person, name: str) -> None:
    from shared.models import StaffMember

    with app.app_context():
        db.session.get(StaffMember, staff_member_id(app, person)).name = name
        db.session.commit()


def offer(app, person, service_id) -> None:
    """``person`` works for the service too."""
    from shared.models import Service, StaffMember

    with app.app_context():
        service = db.session.get(Service, service_id)
        service.staff.append(db.session.get(StaffMember, staff_member_id(app, person)))
        db.session.commit()


@pytest.fixture
def world(app, auth, make_bookable, make_staff, make_client):
    """Elternberatung with two caseworkers (Anna Berg, Ben Cho), a caseworker of another
    service (Cem Dal), reception and an admin; Mia Demir has written to Elternberatung."""
    team = make_bookable("Elternberatung")
    name_staff(app, team.staff, "Anna Berg")
    ben = make_staff(role="caseworker")
    name_staff(app, ben, "Ben Cho")
    offer(app, ben, team.service_id)
    other = make_bookable("Schuldnerberatung")
    name_staff(app, other.staff, "Cem Dal")
    mia = make_client(full_name="Mia Demir")
    browser = signed_in(app, auth, mia, area="portal")
    sent = submit(browser, "/messages/new",
                  {"service": str(team.service_id), "topic": TOPIC, "body": BODY},
                  content_type="multipart/form-data")
    assert sent.status_code == 302
    path = sent.headers["Location"]
    return {"anna": team.staff, "ben": ben, "cem": other.staff, "mia": mia,
            "mia_browser": browser, "reception": make_staff(role="reception"),
            "admin": make_staff(role="admin"), "thread": "/staff" + path, "portal": path,
            "service": team.service_id}


def test_a_caseworker_of_the_service_takes_a_colleague_joins_and_both_answer(app, auth, world):
    anna = signed_in(app, auth, world["anna"])
    ben = signed_in(app, auth, world["ben"])
    thread = world["thread"]
    start = anna.get("/staff/").get_data(as_text=True)
    assert re.search(r'data-section="messages".*1 ungelesene Nachricht', start, re.S)
    for browser in (anna, ben):
        inbox = browser.get("/staff/messages").get_data(as_text=True)
        assert "Mia Demir" in inbox
        assert TOPIC in inbox
        assert "Elternberatung" in inbox
    assert submit(anna, thread + "/take", {}, form_url="/staff/messages").status_code == 302
    # Ben was a moment too late: he is told who took it and may join.
    late = submit(ben, thread + "/take", {}, form_url=thread)
    assert late.status_code == 302
    page = ben.get(thread).get_data(as_text=True)
    assert "Anna Berg hat dieses Gespräch gerade übernommen." in page
    assert "Übernommen von <bdi>Anna Berg</bdi>" in page
    assert TOPIC not in ben.get("/staff/messages").get_data(as_text=True)  # no longer open
    listed = ben.get("/staff/messages/all").get_data(as_text=True)
    assert TOPIC in listed
    assert "Übernommen von <bdi>Anna Berg</bdi>" in listed
    assert submit(ben, thread + "/join", {}, form_url=thread).status_code == 302
    assert TOPIC in ben.get("/staff/messages/mine").get_data(as_text=True)
    assert submit(ben, thread, {"body": ANSWER}).status_code == 302
    page = anna.get(thread).get_data(as_text=True)
    assert re.search(r"<bdi>Ben Cho</bdi>.*" + re.escape(ANSWER), page, re.S)
    assert "Keine ungelesenen Nachrichten." in anna.get("/staff/").get_data(as_text=True)
    assert "Angeschlossen: Ben Cho" in page
    # The client reads who answered.
    client_page = world["mia_browser"].get(world["portal"]).get_data(as_text=True)
    assert re.search(r"<bdi>Ben Cho</bdi>.*" + re.escape(ANSWER), client_page, re.S)


@pytest.mark.parametrize("who", ["reception", "admin", "cem"])
def test_reception_admins_and_other_services_never_read_a_conversation(app, auth, world, who):
    from shared.models import AccessEvent, Message

    browser = signed_in(app, auth, world[who])
    thread = world["thread"]
    inbox = browser.get("/staff/messages")
    page = browser.get(thread)
    take = submit(browser, thread + "/take", {}, form_url="/staff/")
    answer = submit(browser, thread, {"body": "Darf ich?"}, form_url="/staff/")
    if who == "cem":  # a caseworker, but not of Elternberatung: it is not there for him
        assert inbox.status_code == 200
        assert TOPIC not in inbox.get_data(as_text=True)
        assert "Mia Demir" not in inbox.get_data(as_text=True)
        assert [page.status_code, take.status_code, answer.status_code] == [404, 404, 404]
    else:
        assert [inbox.status_code, page.status_code, take.status_code,
                answer.status_code] == [403, 403, 403, 403]
    assert BODY not in page.get_data(as_text=True)
    assert 'href="/staff/messages"' not in browser.get("/staff/").get_data(as_text=True) or (
        who == "cem")
    with app.app_context():
        assert [m.body for m in db.session.scalars(select(Message))] == [BODY]
        assert db.session.scalars(select(AccessEvent)).all() == []  # nobody read anything
    # The positive control: a caseworker of the service reads it.
    assert BODY in signed_in(app, auth, world["anna"]).get(thread).get_data(as_text=True)


def test_each_read_is_a_visit_in_the_clients_access_log(app, auth, world):
    from shared.models import AccessEvent, Client

    anna = signed_in(app, auth, world["anna"])
    anna.get(world["thread"])
    with app.app_context():
        mia = db.session.scalar(select(Client).where(Client.account_id == world["mia"].account_id))
        events = db.session.scalars(select(AccessEvent)
                                    .where(AccessEvent.client_id == mia.id)).all()
        assert events
        assert {e.staff_member_id for e in events} == {staff_member_id(app, world["anna"])}
        assert any("messages" in e.category for e in events)


def test_an_answer_with_a_refused_file_keeps_the_text_and_a_good_file_is_downloaded(
        app, auth, world):
    anna = signed_in(app, auth, world["anna"])
    thread = world["thread"]
    refused = submit(anna, thread, {"body": ANSWER, "attachment": (io.BytesIO(b""), "leer.pdf")},
                     content_type="multipart/form-data")
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "Die Datei ist leer." in page
    assert "Ihr Text bleibt erhalten" in page
    assert ANSWER in page
    sent = submit(anna, thread, {"body": ANSWER,
                                 "attachment": (io.BytesIO(PDF), "Termine.pdf")},
                  content_type="multipart/form-data")
    assert sent.status_code == 302
    page = anna.get(thread).get_data(as_text=True)
    link = re.search(r'href="(/staff/messages/attachments/[0-9a-f-]+)"', page).group(1)
    assert anna.get(link).data == PDF
    assert signed_in(app, auth, world["cem"]).get(link).status_code == 404
    assert signed_in(app, auth, world["reception"]).get(link).status_code == 403
    # The client downloads it from her conversation.
    mia = world["mia_browser"]
    client_page = mia.get(world["portal"]).get_data(as_text=True)
    client_link = re.search(r'href="(/messages/attachments/[0-9a-f-]+)"', client_page).group(1)
    assert mia.get(client_link).data == PDF


def test_staff_choose_instant_emails_or_a_daily_digest_and_neither_has_content(app, auth,
                                                                             world, outbox,
                                                                             runner):
    anna = signed_in(app, auth, world["anna"])
    # The first message was told to Anna and Ben at once (both chose nothing: instant).
    for person in ("anna", "ben"):
        told = outbox.last_to(world[person].email)
        text = told["Subject"] + told.get_content()
        assert TOPIC not in text
        assert BODY not in text
        assert "Mia" not in text
    page = anna.get("/staff/messages/notifications").get_data(as_text=True)
    assert "Eine E-Mail am Tag" in page
    saved = submit(anna, "/staff/messages/notifications", {"notifications": "digest"})
    assert saved.status_code == 302
    assert re.search(r'<input checked [^>]*value="digest"',
                     anna.get("/staff/messages/notifications").get_data(as_text=True))
    before = len(outbox.to(world["anna"].email))
    second = submit(world["mia_browser"], world["portal"], {"body": "Noch eine Frage."},
                    content_type="multipart/form-data")
    assert second.status_code == 302
    assert len(outbox.to(world["anna"].email)) == before  # no instant email any more
    result = runner.invoke(args=["messages", "digest"])
    assert result.exit_code == 0, result.output
    digest = outbox.last_to(world["anna"].email)
    text = digest.get_content()
    assert "2 Nachrichten von Klientinnen und Klienten sind im Posteingang" in text
    assert "/staff/messages" in text
    assert TOPIC not in text
    assert BODY not in text
    assert "Mia" not in text


def test_the_inbox_pages_with_words(app, auth, world, make_client):
    from shared.models import Client, DataKey, MessageThread

    with app.app_context():  # 30 more conversations, written directly
        mia = db.session.scalar(select(Client).where(Client.account_id == world["mia"].account_id))
        key = db.session.get(DataKey, mia.data_key_id)
        for n in range(30):
            thread = MessageThread(client_id=mia.id, data_key=key, service_id=world["service"],
                                   id=uuid.uuid4())
            thread.topic = f"Thema {n}"
            db.session.add(thread)
        db.session.commit()
    anna = signed_in(app, auth, world["anna"])
    first = anna.get("/staff/messages").get_data(as_text=True)
    assert "Seite 1 von 2" in first
    assert "31 Gespräche" in first
    second = anna.get("/staff/messages?page=2").get_data(as_text=True)
    assert "Seite 2 von 2" in second
