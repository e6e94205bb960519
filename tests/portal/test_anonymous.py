"""Anonymous first contact (issue 17, item 4), as the people do it: someone writes to a
team with only a pseudonym and a password, a caseworker answers, the person signs in again
with the pseudonym and reads the answer and the caseworker's visit in their access log,
and deletes everything; no email goes anywhere and the pseudonym is stored only
encrypted and as a search key."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select, text

from shared.extensions import db
from tests.conftest import Auth, submit

PSEUDONYM = "Sonnenblume 7"
PASSWORD = "leise Wolken über dem Hafen"
TOPIC = "Streit zu Hause"
BODY = "Meine Eltern streiten jede Nacht, und ich kann nicht schlafen."
ANSWER = "Danke, dass Sie uns schreiben. Sie können uns jederzeit hier erreichen."


@pytest.fixture
def team(make_bookable):
    return make_bookable("Jugendberatung")


def write_anonymously(browser, service_id, **overrides):
    fields = {"pseudonym": PSEUDONYM, "password": PASSWORD, "service": str(service_id),
              "topic": TOPIC, "body": BODY, **overrides}
    return submit(browser, "/messages/anonymous", fields)


def sign_in_with_name(browser, pseudonym=PSEUDONYM, password=PASSWORD):
    return submit(browser, "/login/anonymous", {"pseudonym": pseudonym, "password": password})


def stored_email(app) -> str:
    from shared.models import Account

    with app.app_context():
        return db.session.scalar(select(Account).where(Account.pseudonym_bidx.is_not(None))).email


def anonymous_account(app):
    from shared.models import Account

    with app.app_context():
        return db.session.scalar(select(Account).where(Account.pseudonym_bidx.is_not(None)))


def test_first_contact_without_email_is_answered_and_read_after_signing_in_again(
        app, auth, team, outbox):
    from shared.models import Account, Client, MessageThread

    visitor = app.test_client()
    start = visitor.get("/").get_data(as_text=True)
    assert 'href="/messages/anonymous"' in start
    assert 'href="/messages/anonymous"' in visitor.get("/login").get_data(as_text=True)
    page = visitor.get("/messages/anonymous").get_data(as_text=True)
    assert "Anonym schreiben" in page
    assert "Jugendberatung" in page
    assert 'name="email"' not in page  # no field asks for an address
    assert 'type="email"' not in page

    sent = write_anonymously(visitor, team.service_id)
    assert sent.status_code == 302
    path = sent.headers["Location"]
    assert re.fullmatch(r"/messages/[0-9a-f-]{36}", path)
    conversation = visitor.get(path).get_data(as_text=True)  # signed in, sees it
    assert BODY in conversation
    assert "Melden Sie sich wieder mit Ihrem Namen und Passwort an" in conversation

    # Nothing of the person went into an email: only the caseworker is told, without it.
    assert [m["To"] for m in outbox.messages()] == [team.staff.email]
    told = outbox.last_to(team.staff.email)
    for secret in (PSEUDONYM, TOPIC, BODY):
        assert secret not in told.get_content()

    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.pseudonym_bidx.is_not(None)))
        assert account.email == ""
        assert account.pseudonym == PSEUDONYM
        client = db.session.scalar(select(Client).where(Client.account_id == account.id))
        assert client.anonymous
        assert client.full_name is None
        assert client.birth_date is None
        assert client.data_key_id == account.data_key_id
        assert db.session.scalar(select(func.count()).select_from(MessageThread)) == 1

    # The caseworker sees the pseudonym, marked, and no way to a client file.
    caseworker = app.test_client()
    Auth(caseworker, auth.clock).login(team.staff, area="staff")
    inbox = caseworker.get("/staff/messages").get_data(as_text=True)
    assert f"{PSEUDONYM} (anonymer Kontakt)" in inbox
    opened = caseworker.get("/staff" + path).get_data(as_text=True)
    assert BODY in opened
    assert f"{PSEUDONYM} (anonymer Kontakt)" in opened
    assert "/staff/clients/" not in opened
    assert caseworker.get(f"/staff/clients/{client.id}").status_code == 404  # no file
    assert submit(caseworker, "/staff" + path, {"body": ANSWER}).status_code == 302
    assert [m["To"] for m in outbox.messages()] == [team.staff.email]  # nobody to tell

    # The person comes back on another device with name and password.
    visitor.post("/logout", data={})  # the old tab is gone
    again = app.test_client()
    signed_in = sign_in_with_name(again, pseudonym="  sonnenblume 7 ")  # as typed
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == "/messages"
    listed = again.get("/messages").get_data(as_text=True)
    assert TOPIC in listed
    assert "1 neue Nachricht" in listed
    read = again.get(path).get_data(as_text=True)
    assert read.index(BODY) < read.index(ANSWER)
    assert "T. Tester" in read

    # The caseworker's read is in the person's access log.
    log = again.get("/my-data/access").get_data(as_text=True)
    assert "T. Tester" in log[log.index('id="visits-heading"'):]
    # Pages that need a known person lead to the messages; the account page is theirs.
    assert again.get("/bookings").headers["Location"] == "/messages"
    assert again.get("/household").headers["Location"] == "/messages"
    assert again.get("/account").headers["Location"] == "/account/anonymous"
    account_page = again.get("/account/anonymous").get_data(as_text=True)
    assert PSEUDONYM in account_page
    assert "an die wir ein neues Passwort schicken könnten" in account_page
    assert 'href="/my-data/delete"' in account_page
    assert [m["To"] for m in outbox.messages()] == [team.staff.email]


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(app, team):
    write_anonymously(app.test_client(), team.service_id)
    answers = []
    for pseudonym, password in ((PSEUDONYM, "falsches Passwort 123"),
                                ("Niemand hier 42", PASSWORD)):
        response = sign_in_with_name(app.test_client(), pseudonym, password)
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert "Name oder Passwort ist nicht richtig." in page
        answers.append(page.replace(pseudonym, ""))
    tokens = re.compile(r'(value|content)="[^"]*"')  # what was typed, the CSRF token
    assert tokens.sub("", answers[0]) == tokens.sub("", answers[1])


def test_refusals_keep_what_was_typed_and_store_nothing(app, team):
    from shared.models import Account, Client

    browser = app.test_client()
    weak = write_anonymously(browser, team.service_id, password="passwort")
    assert weak.status_code == 400
    assert f'value="{PSEUDONYM}"' in weak.get_data(as_text=True)
    assert BODY in weak.get_data(as_text=True)
    as_address = write_anonymously(browser, team.service_id, pseudonym="mia@example.org")
    assert "keine E-Mail-Adresse ist" in as_address.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Account)
                                 .where(Account.pseudonym_bidx.is_not(None))) == 0
        assert db.session.scalar(select(func.count()).select_from(Client)
                                 .where(Client.anonymous_at.is_not(None))) == 0

    assert write_anonymously(browser, team.service_id).status_code == 302
    taken = write_anonymously(app.test_client(), team.service_id, pseudonym="SONNENBLUME 7")
    assert taken.status_code == 400
    assert "Dieser Name ist schon vergeben." in taken.get_data(as_text=True)


def test_the_pseudonym_is_stored_only_encrypted_and_as_a_search_key(app, team):
    write_anonymously(app.test_client(), team.service_id)
    account = anonymous_account(app)
    with app.app_context():
        raw = db.session.execute(
            text("SELECT * FROM accounts WHERE id = :id"),
            {"id": account.id if db.engine.dialect.name == "postgresql" else account.id.hex},
        ).mappings().one()
        stored = b"".join(bytes(value) for value in raw.values()
                          if isinstance(value, (bytes, memoryview)))
        assert PSEUDONYM.encode() not in stored
        assert PSEUDONYM.casefold().encode() not in stored
        assert raw["pseudonym"]
        assert len(bytes(raw["pseudonym_bidx"])) == 32
        from shared.models.base import current_keyring

        assert bytes(raw["pseudonym_bidx"]) == current_keyring().blind_index(
            "accounts.pseudonym", PSEUDONYM)
        # The empty address's search key is random: no two anonymous accounts share it,
        # and it is not the key of an empty address.
        assert bytes(raw["email_bidx"]) != current_keyring().blind_index("accounts.email", "")


def test_deleting_the_anonymous_account_leaves_no_row_and_no_message_ciphertext(
        app, auth, team):
    from shared.models import Account, Client, DataKey, Message, MessageThread

    browser = app.test_client()
    path = write_anonymously(browser, team.service_id).headers["Location"]
    caseworker = app.test_client()
    Auth(caseworker, auth.clock).login(team.staff, area="staff")
    assert submit(caseworker, "/staff" + path, {"body": ANSWER}).status_code == 302
    account = anonymous_account(app)
    with app.app_context():
        client_id = db.session.scalar(select(Client.id).where(Client.account_id == account.id))
        bodies = [bytes(b) for b in db.session.scalars(select(Message.body_ciphertext))]
        assert len(bodies) == 2

    page = browser.get("/my-data/delete")
    assert page.status_code == 200
    deleted = submit(browser, "/my-data/delete", {"understood": "yes"})
    assert deleted.status_code == 302
    with app.app_context():
        assert db.session.get(Account, account.id) is None
        assert db.session.get(Client, client_id) is None
        assert db.session.get(DataKey, account.data_key_id) is None
        assert db.session.scalar(select(func.count()).select_from(MessageThread)) == 0
        assert db.session.scalar(select(func.count()).select_from(Message)) == 0
        for table in ("messages", "message_threads", "accounts", "clients"):
            # The names are the fixed ones above, not input.
            for row in db.session.execute(text(f"SELECT * FROM {table}")).all():  # noqa: S608
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        assert bytes(value) not in bodies
    assert sign_in_with_name(app.test_client()).status_code == 400


def test_an_anonymous_contact_is_not_found_by_the_staff_search_and_has_no_file(app, team):
    from shared.models import Client, StaffMember
    from shared.services import casefile

    write_anonymously(app.test_client(), team.service_id)
    account = anonymous_account(app)
    with app.app_context():
        member = db.session.scalar(select(StaffMember)
                                   .where(StaffMember.account_id == team.staff.account_id))
        for query in (PSEUDONYM, "Sonnenblume"):
            assert casefile.search(member=member, query=query).clients == []
        client_id = db.session.scalar(select(Client.id).where(Client.account_id == account.id))
        with pytest.raises(casefile.NoAccess):
            casefile.access_for(member, client_id, uuid.uuid4())


def test_the_anonymous_contact_sees_the_pseudonym_on_my_data_and_keeps_security(app, team):
    browser = app.test_client()
    write_anonymously(browser, team.service_id)
    my_data = browser.get("/my-data")
    assert my_data.status_code == 200
    page = my_data.get_data(as_text=True)
    assert PSEUDONYM in page
    assert "Der Name, den Sie zum Anmelden gewählt haben" in page
    security = browser.get("/account/security")
    assert security.status_code == 200
    assert browser.get("/home").headers["Location"] == "/messages"


def test_an_address_added_later_hears_of_answers_only_and_is_no_way_in(app, auth, team,
                                                                        outbox):
    from shared.models import Account
    from shared.services import accounts

    browser = app.test_client()
    path = write_anonymously(browser, team.service_id).headers["Location"]
    asked = submit(browser, "/account/anonymous/email", {"email": "sonne@example.org"},
                   form_url="/account/anonymous")
    assert asked.status_code == 302
    assert stored_email(app) == ""  # nothing kept before the link is used
    link = outbox.link("sonne@example.org", "/account/anonymous/email/")
    confirm_page = app.test_client().get(link)  # a mail scanner opening it confirms nothing
    assert confirm_page.status_code == 200
    assert stored_email(app) == ""
    assert submit(app.test_client(), link, {}).status_code == 302
    assert stored_email(app) == "sonne@example.org"
    assert submit(app.test_client(), link[:-3] + "abc", {}).status_code == 400  # forged

    caseworker = app.test_client()
    Auth(caseworker, auth.clock).login(team.staff, area="staff")
    assert submit(caseworker, "/staff" + path, {"body": ANSWER}).status_code == 302
    told = outbox.last_to("sonne@example.org")
    assert told["Subject"] == "Sie haben eine neue Nachricht"
    for secret in (ANSWER, TOPIC, BODY, PSEUDONYM):
        assert secret not in told.get_content()
    with app.app_context():  # not a sign-in name, no reset by it
        assert accounts.find_account(email="sonne@example.org", kind="client") is None
    assert submit(app.test_client(), "/reset", {"email": "sonne@example.org"}).status_code \
        == 200
    assert len(outbox.to("sonne@example.org")) == 2  # the link and the one notification

    assert submit(browser, "/account/anonymous/email/remove", {},
                  form_url="/account/anonymous").status_code == 302
    with app.app_context():
        account = db.session.get(Account, anonymous_account(app).id)
        assert account.email == ""
        assert account.email_confirmed_at is None


def test_an_anonymous_contact_may_add_a_passkey_and_sign_in_with_it(app, team):
    from tests.conftest import post_json, register_passkey

    browser = app.test_client()
    path = write_anonymously(browser, team.service_id).headers["Location"]
    authenticator = register_passkey(browser)
    assert browser.get("/account/security/totp").status_code == 200  # or an app, with codes

    phone = app.test_client()
    begin = post_json(phone, "/login/passkey/begin", page="/login")
    assertion = authenticator.get(begin.get_data(as_text=True))
    signed_in = post_json(phone, "/login/passkey/finish", {"credential": assertion},
                          page="/login")
    assert signed_in.status_code == 200, signed_in.get_data(as_text=True)
    assert BODY in phone.get(path).get_data(as_text=True)
