"""Messages, driven as the people do it: a client writes to a service's team, a caseworker
of that service takes it and answers, the client reads the answer (the badge on the home
page, the conversation, the visit in the access log); guardians write for a child and
never see what is kept from them; a refused file loses nothing typed; emails say only
that there is a message."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from sqlalchemy import func, select

from shared.extensions import db
from tests.conftest import Auth, submit

TOPIC = "Frage zur Kita-Eingewöhnung"
BODY = "Meine Tochter weint jeden Morgen vor der Kita. Was können wir tun?"
ANSWER = "Danke für Ihre Nachricht. Wir sprechen morgen in Ruhe darüber."
SECRET = "Vertraulich für Lara: die Beratungsstelle hat auch samstags offen."
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"0" * 200


@pytest.fixture
def team(make_bookable):
    """The service Elternberatung and the caseworker who offers it."""
    return make_bookable("Elternberatung")


def signed_in(app, auth, person, area="portal"):
    browser = app.test_client()
    Auth(browser, auth.clock).login(person, area=area)
    return browser


def own_client_id(app, person) -> uuid.UUID:
    from shared.models import Client

    with app.app_context():
        return db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))


def write(browser, service_id, data=None, **kwargs):
    """Send the new-message form as a person fills it in."""
    fields = {"service": str(service_id), "topic": TOPIC, "body": BODY, **(data or {})}
    return submit(browser, "/messages/new", fields, content_type="multipart/form-data",
                  **kwargs)


def thread_path(response) -> str:
    location = response.headers["Location"]
    assert re.fullmatch(r"/messages/[0-9a-f-]{36}", location), location
    return location


def staff_thread(path: str) -> str:
    return "/staff" + path


def no_machine_values(html: str) -> None:
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", html)
    assert "UTC" not in html
    assert not re.search(r">[^<]*[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                         r"[^<]*<", html)


def messages_word(app) -> str:
    """The access log's German word for the category "messages" (the catalogue's)."""
    from flask_babel import force_locale

    from shared.services.transparency import category_label

    with app.test_request_context(), force_locale("de"):
        return str(category_label("messages"))


def text_of(message) -> str:
    return message["Subject"] + "\n" + message.get_content()


def test_a_client_writes_a_caseworker_answers_and_the_client_reads_it(app, auth, make_client,
                                                                     team, outbox):
    mia = make_client(full_name="Mia Demir")
    browser = signed_in(app, auth, mia)
    page = browser.get("/messages").get_data(as_text=True)
    assert "Noch keine Gespräche." in page
    assert 'href="/messages"' in browser.get("/home").get_data(as_text=True)  # navigation

    form = browser.get("/messages/new").get_data(as_text=True)
    assert "Elternberatung" in form
    sent = write(browser, team.service_id)
    assert sent.status_code == 302
    path = thread_path(sent)

    # The caseworker is told that there is a message, and nothing of it.
    told = outbox.last_to(team.staff.email)
    assert TOPIC not in text_of(told)
    assert BODY not in text_of(told)
    assert "Mia" not in text_of(told)
    assert outbox.link(team.staff.email, "/staff/messages/") == staff_thread(path)
    assert outbox.to(mia.email) == []  # not the writer

    caseworker = signed_in(app, auth, team.staff, area="staff")
    inbox = caseworker.get("/staff/messages").get_data(as_text=True)
    assert "Mia Demir" in inbox
    assert TOPIC in inbox
    assert "Noch von niemandem übernommen" in inbox
    assert "1 ungelesene Nachricht" in inbox
    taken = submit(caseworker, staff_thread(path) + "/take", {}, form_url="/staff/messages")
    assert taken.headers["Location"] == staff_thread(path)
    opened = caseworker.get(staff_thread(path)).get_data(as_text=True)
    assert BODY in opened
    assert "Von Ihnen übernommen" in opened
    no_machine_values(opened)
    assert TOPIC in caseworker.get("/staff/messages/mine").get_data(as_text=True)
    assert TOPIC not in caseworker.get("/staff/messages").get_data(as_text=True)  # not open
    answered = submit(caseworker, staff_thread(path), {"body": ANSWER})
    assert answered.status_code == 302

    # The client hears of it without its words, sees the badge, and reads it.
    told = outbox.last_to(mia.email)
    assert told["Subject"] == "Sie haben eine neue Nachricht"
    assert ANSWER not in text_of(told)
    assert TOPIC not in text_of(told)
    assert outbox.link(mia.email, "/messages/") == path
    home = browser.get("/home").get_data(as_text=True)
    assert re.search(r'href="/messages"[^>]*>1 neue Nachricht</a>', home)
    listed = browser.get("/messages").get_data(as_text=True)
    assert "1 neue Nachricht" in listed
    assert TOPIC in listed
    conversation = browser.get(path).get_data(as_text=True)
    assert conversation.index(BODY) < conversation.index(ANSWER)  # oldest first
    assert re.search(r"<bdi>Sie</bdi>.*" + re.escape(BODY), conversation, re.S)
    assert re.search(r"<bdi>T\. Tester</bdi>.*" + re.escape(ANSWER), conversation, re.S)
    no_machine_values(conversation)
    assert "neue Nachricht" not in browser.get("/home").get_data(as_text=True)
    assert "neue Nachricht" not in browser.get("/messages").get_data(as_text=True)

    # Her access log names the caseworker who read the conversation, and why.
    log = browser.get("/my-data/access").get_data(as_text=True)
    visits = log[log.index('id="visits-heading"'):]
    assert "T. Tester" in visits
    assert f"({messages_word(app)})" in visits

    # She answers in turn; the caseworker who took it is told.
    before = len(outbox.to(team.staff.email))
    assert submit(browser, path, {"body": "Danke, bis morgen."},
                  content_type="multipart/form-data").status_code == 302
    assert len(outbox.to(team.staff.email)) == before + 1


def test_an_attachment_is_checked_and_a_refused_one_loses_nothing_typed(app, auth, make_client,
                                                                        team):
    from shared.models import MessageThread

    mia = make_client(full_name="Mia Demir")
    browser = signed_in(app, auth, mia)
    refused = write(browser, team.service_id,
                    {"attachment": (io.BytesIO(b"MZ\x90\x00 nicht wirklich ein PDF"),
                                    "befund.pdf")})
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "Diese Art von Datei kann nicht gesendet werden." in page
    assert "Ihr Text bleibt erhalten" in page
    assert f'value="{TOPIC}"' in page
    assert BODY in page
    assert re.search(r'<option selected value="' + str(team.service_id) + '"', page)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MessageThread)) == 0

    sent = write(browser, team.service_id,
                 {"attachment": (io.BytesIO(PDF), "Befund März.pdf")})
    path = thread_path(sent)
    conversation = browser.get(path).get_data(as_text=True)
    link = re.search(r'href="(/messages/attachments/[0-9a-f-]+)"[^>]*>([^<]*)', conversation)
    assert "Befund März.pdf" in conversation
    download = browser.get(link.group(1))
    assert download.status_code == 200
    assert download.data == PDF
    # Someone else gets nothing, not even that it exists.
    other = signed_in(app, auth, make_client(full_name="Jonas Weber"))
    assert other.get(link.group(1)).status_code == 404
    assert other.get(path).status_code == 404


def test_a_guardian_writes_for_a_child_and_never_sees_what_is_kept_from_guardians(
        app, auth, team, make_young_person, make_client, outbox):
    lara = make_young_person()
    parent = signed_in(app, auth, lara.parent)
    form = parent.get("/messages/new").get_data(as_text=True)
    assert "Ich" in form
    assert "Lara Demir" in form
    sent = write(parent, team.service_id, {"client": str(lara.client_id)})
    path = thread_path(sent)
    listed = parent.get("/messages").get_data(as_text=True)
    assert "für <bdi>Lara Demir</bdi>" in listed

    caseworker = signed_in(app, auth, team.staff, area="staff")
    opened = caseworker.get(staff_thread(path)).get_data(as_text=True)
    assert "Lara Demir" in opened
    assert "Mia Demir (Elternteil oder sorgeberechtigte Person)" in opened
    mails_before = len(outbox.to(lara.parent.email))
    submit(caseworker, staff_thread(path), {"body": SECRET, "confidential": "y"})
    submit(caseworker, staff_thread(path), {"body": ANSWER})
    # The parent is told of the shared answer only, and sees only that one.
    assert len(outbox.to(lara.parent.email)) == mails_before + 1
    assert "1 neue Nachricht" in parent.get("/home").get_data(as_text=True)
    conversation = parent.get(path).get_data(as_text=True)
    assert ANSWER in conversation
    assert SECRET not in conversation

    # Nobody else writes for Lara or reads her conversation.
    stranger = signed_in(app, auth, make_client(full_name="Jonas Weber"))
    assert stranger.get(path).status_code == 404
    refused = write(stranger, team.service_id, {"client": str(lara.client_id)})
    assert refused.status_code == 400
    assert "Lara Demir" not in stranger.get("/messages").get_data(as_text=True)


def test_a_guardian_who_sees_only_appointments_cannot_write_for_the_child(app, auth, team,
                                                                          make_young_person):
    from shared.models import Guardianship

    lara = make_young_person()
    with app.app_context():
        db.session.get(Guardianship, lara.guardianship_id).access = "bookings"
        db.session.commit()
    parent = signed_in(app, auth, lara.parent)
    assert "Lara Demir" not in parent.get("/messages/new").get_data(as_text=True)
    refused = write(parent, team.service_id, {"client": str(lara.client_id)})
    assert refused.status_code == 400
    assert "Bitte wählen Sie, um wen es geht." in refused.get_data(as_text=True)


def test_an_empty_message_is_asked_for_again(app, auth, make_client, team):
    browser = signed_in(app, auth, make_client(full_name="Mia Demir"))
    refused = write(browser, team.service_id, {"body": "   "})
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "Bitte schreiben Sie Ihre Nachricht." in page
    assert f'value="{TOPIC}"' in page


def test_the_topic_stays_out_of_the_page_title(app, auth, make_client, team):
    # The title is kept in the browser history, which a family may share.
    browser = signed_in(app, auth, make_client(full_name="Mia Demir"))
    html = browser.get(thread_path(write(browser, team.service_id))).get_data(as_text=True)
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert TOPIC not in title
    assert title.startswith("Nachrichten")
    assert TOPIC in html  # on the page itself


def test_every_id_on_the_message_pages_is_unique(app, auth, make_client, team):
    browser = signed_in(app, auth, make_client(full_name="Mia Demir"))
    path = thread_path(write(browser, team.service_id))
    for page in ("/messages", "/messages/new", path):
        html = browser.get(page).get_data(as_text=True)
        ids = re.findall(r'\sid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), page
        for label in re.findall(r'<label class="kern-label" for="([^"]+)"', html):
            assert label in ids, (page, label)


def test_a_young_person_keeps_a_conversation_from_the_parents(app, auth, team, outbox,
                                                              make_young_person):
    from shared.auth import passwords
    from shared.models import Account, Client
    from shared.models.base import utcnow
    from tests.conftest import STRONG_PASSWORD, Person

    lara = make_young_person()
    with app.app_context():  # Lara holds her own account, confirmed in person
        child = db.session.get(Client, lara.client_id)
        account = Account(kind="client", data_key=child.data_key, locale="de",
                          invited_by="staff", handover_confirmed_at=utcnow())
        account.email = "lara@example.org"
        account.password_hash = passwords.hash_password(STRONG_PASSWORD)
        account.email_confirmed_at = utcnow()
        db.session.add(account)
        db.session.flush()
        child.account_id = account.id
        db.session.commit()
        lara_person = Person("lara@example.org", STRONG_PASSWORD, None, account.id)
    young = signed_in(app, auth, lara_person)
    form = young.get("/messages/new").get_data(as_text=True)
    assert "Dieses Gespräch vor meinen Eltern oder Sorgeberechtigten vertraulich halten" in form
    path = thread_path(write(young, team.service_id, {"confidential": "y"}))
    caseworker = signed_in(app, auth, team.staff, area="staff")
    submit(caseworker, staff_thread(path), {"body": ANSWER})
    assert outbox.link("lara@example.org", "/messages/") == path
    assert outbox.to(lara.parent.email) == []  # the parents hear nothing of it
    parent = signed_in(app, auth, lara.parent)
    assert TOPIC not in parent.get("/messages").get_data(as_text=True)
    assert parent.get(path).status_code == 404
    assert "neue Nachricht" not in parent.get("/home").get_data(as_text=True)
    assert ANSWER in young.get(path).get_data(as_text=True)


def test_the_email_of_a_new_message_is_in_the_readers_language(app, auth, make_client, team,
                                                               outbox):
    from shared.models import Account

    ayse = make_client(full_name="Ayşe Yılmaz")
    with app.app_context():
        db.session.get(Account, ayse.account_id).locale = "tr"
        db.session.commit()
    path = thread_path(write(signed_in(app, auth, ayse), team.service_id))
    caseworker = signed_in(app, auth, team.staff, area="staff")
    assert submit(caseworker, staff_thread(path), {"body": ANSWER}).status_code == 302
    told = outbox.last_to(ayse.email)
    assert told["Subject"] == "Yeni bir mesajınız var"
    assert told["Content-Language"] == "tr"
    assert ANSWER not in told.get_content()


def test_the_conversations_page_a_page_at_a_time(app, auth, make_client, team):
    from shared.models import Client, DataKey, MessageThread

    mia = make_client(full_name="Mia Demir")
    with app.app_context():  # 30 conversations, written directly
        own = db.session.scalar(select(Client).where(Client.account_id == mia.account_id))
        key = db.session.get(DataKey, own.data_key_id)
        for n in range(30):
            thread = MessageThread(client_id=own.id, data_key=key, service_id=team.service_id)
            thread.topic = f"Thema {n}"
            db.session.add(thread)
        db.session.commit()
    browser = signed_in(app, auth, mia)
    first = browser.get("/messages").get_data(as_text=True)
    assert "Seite 1 von 2" in first
    assert "Nächste Seite" in first
    second = browser.get("/messages?page=2").get_data(as_text=True)
    assert "Seite 2 von 2" in second
    shown = re.findall(r">Thema (\d+)<", first + second)
    assert sorted(map(int, shown)) == list(range(30))
