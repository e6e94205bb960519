"""Anonymous first contact (issue 17, item 4), as the people do it: someone writes to a
team with only a pseudonym and a password, a caseworker answers, the person signs in again
with the pseudonym and reads the answer and the caseworker's visit in their access log,
and deletes everything; no email goes anywhere and the pseudonym is stored only
encrypted and as a search key."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

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
    assert app.test_client().get(link[:-3] + "abc").status_code == 400  # forged

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


# -- security review of issue 17: the confirmation link, the password, "this name is taken" --
ADDRESS = "sonne@example.org"
LINK_PREFIX = "/account/anonymous/email/"
LINK_GONE = "Dieser Link funktioniert nicht mehr"


def ask_for_link(browser, email=ADDRESS):
    asked = submit(browser, "/account/anonymous/email", {"email": email},
                   form_url="/account/anonymous")
    assert asked.status_code == 302
    return asked


def press_confirm(app, link):
    """A fresh browser opens the link and presses the button; the answer to the press, or
    the answer to opening it when the page refused at once."""
    from tests.conftest import csrf_token

    browser = app.test_client()
    page = browser.get(link)
    if page.status_code != 200:
        return page
    return browser.post(link, data={"csrf_token": csrf_token(page.get_data(as_text=True))})


def token_rows(app):
    from shared.auth import tokens
    from shared.models import AccountToken

    with app.app_context():
        return list(db.session.scalars(select(AccountToken).where(
            AccountToken.purpose == tokens.NOTIFICATION_EMAIL)
            .order_by(AccountToken.created_at)))


def test_the_confirmation_link_carries_no_address_and_no_account_and_nothing_is_plain(
        app, team, outbox):
    import base64
    import hashlib

    from shared.auth import tokens
    from shared.models.base import current_keyring
    from tests.portal.test_erasure import raw_database_bytes

    browser = app.test_client()
    write_anonymously(browser, team.service_id)
    account = anonymous_account(app)
    ask_for_link(browser)
    link = outbox.link(ADDRESS, LINK_PREFIX)
    token = link[len(LINK_PREFIX):]
    # The link: a random token, nothing else; not the address, not the account in any form.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), token
    for secret in (ADDRESS, "sonne", str(account.id), account.id.hex, PSEUDONYM):
        assert secret.casefold() not in link.casefold()
    padded = token + "=" * (-len(token) % 4)
    decoded = base64.urlsafe_b64decode(padded)
    assert ADDRESS.encode() not in decoded
    assert account.id.bytes not in decoded
    assert "." not in token  # no signed payload (itsdangerous joins its parts with dots)

    with app.app_context():
        # The address waits encrypted under the account's own data key ...
        raw = db.session.execute(
            text("SELECT * FROM accounts WHERE id = :id"),
            {"id": account.id if db.engine.dialect.name == "postgresql" else account.id.hex},
        ).mappings().one()
        assert raw["pending_email"]
        stored = b"".join(bytes(value) for value in raw.values()
                          if isinstance(value, (bytes, memoryview)))
        assert ADDRESS.encode() not in stored
        from shared.crypto import ciphertext_key_id

        assert ciphertext_key_id(bytes(raw["pending_email"])) == account.data_key_id
        from shared.models import Account

        assert db.session.get(Account, account.id).pending_email == ADDRESS
        assert db.session.get(Account, account.id).email == ""  # not yet the address
        # ... and of the token only a keyed hash is kept: not the token, not its SHA-256.
        [row] = token_rows(app)
        assert row.used_at is None
        assert bytes(row.token_hash) != hashlib.sha256(token.encode()).digest()
        assert bytes(row.token_hash) == current_keyring().blind_index(
            f"account_tokens.{tokens.NOTIFICATION_EMAIL}",
            hashlib.sha256(token.encode()).hexdigest())
        assert row.expires_at - row.created_at == timedelta(hours=24)
        disk = raw_database_bytes(app)
        assert ADDRESS.encode() not in disk
        assert token.encode() not in disk

    assert press_confirm(app, link).status_code == 302
    assert stored_email(app) == ADDRESS
    with app.app_context():
        from shared.models import Account

        assert db.session.get(Account, account.id).pending_email is None
        raw = db.session.execute(
            text("SELECT pending_email FROM accounts WHERE id = :id"),
            {"id": account.id if db.engine.dialect.name == "postgresql" else account.id.hex},
        ).scalar_one()
        assert raw is None


def test_the_link_works_once_and_a_used_tampered_expired_or_replaced_one_says_so(
        app, team, outbox):
    from shared.models import AccountToken
    from shared.services import erasure

    browser = app.test_client()
    write_anonymously(browser, team.service_id)
    ask_for_link(browser)
    link = outbox.link(ADDRESS, LINK_PREFIX)

    # Tampered (one character changed, also only its case): refused at once, clearly.
    last = link[-1]
    for forged in (link[:-1] + ("A" if last != "A" else "B"),
                   link[:-1] + (last.swapcase() if last.swapcase() != last else "x"),
                   link + "x", LINK_PREFIX + "nothing-here"):
        answer = app.test_client().get(forged)
        assert answer.status_code == 400, forged
        page = answer.get_data(as_text=True)
        assert LINK_GONE in page
        assert 'href="/account/anonymous"' in page  # where to ask for a new one
        assert 'href="/register"' not in page  # not the registration's advice
    assert stored_email(app) == ""

    # Used once, then never again (opened or pressed).
    from tests.conftest import csrf_token

    second_tab = app.test_client()
    form = second_tab.get(link)
    assert form.status_code == 200
    assert press_confirm(app, link).status_code == 302
    assert stored_email(app) == ADDRESS
    again = second_tab.post(link, data={"csrf_token": csrf_token(form.get_data(as_text=True))})
    assert again.status_code == 400
    assert LINK_GONE in again.get_data(as_text=True)
    assert press_confirm(app, link).status_code == 400

    # A new request replaces the one before: the older link stops working.
    ask_for_link(browser, "erste@example.org")
    first = outbox.link("erste@example.org", LINK_PREFIX)
    ask_for_link(browser, "zweite@example.org")
    second = outbox.link("zweite@example.org", LINK_PREFIX)
    assert press_confirm(app, first).status_code == 400
    assert stored_email(app) == ADDRESS  # the confirmed one stays until another is
    assert press_confirm(app, second).status_code == 302
    assert stored_email(app) == "zweite@example.org"

    # Expired after 24 hours: refused, and the waiting address is forgotten by the purge.
    ask_for_link(browser, "spaet@example.org")
    late = outbox.link("spaet@example.org", LINK_PREFIX)
    row = token_rows(app)[-1]
    assert row.expires_at - row.created_at == timedelta(hours=24)
    with app.app_context():
        from shared.models.base import utcnow

        # The link's 24 hours are over (moved back rather than waited for).
        db.session.execute(
            AccountToken.__table__.update().where(AccountToken.id == row.id)
            .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert anonymous_account(app).pending_email == "spaet@example.org"
    answer = press_confirm(app, late)
    assert answer.status_code == 400
    assert LINK_GONE in answer.get_data(as_text=True)
    assert stored_email(app) == "zweite@example.org"
    # Someone else's link, still valid, is left alone by the purge.
    other = app.test_client()
    write_anonymously(other, team.service_id, pseudonym="Mondschein 3")
    ask_for_link(other, "mond@example.org")
    with app.app_context():
        result = erasure.purge()
        db.session.commit()
        assert result.counts.get("accounts.pending_email") == 1
        from shared.models import Account

        waiting = {a.pseudonym: a.pending_email for a in db.session.scalars(
            select(Account).where(Account.pseudonym_bidx.is_not(None)))}
        assert waiting == {PSEUDONYM: None, "Mondschein 3": "mond@example.org"}
        assert len(token_rows(app)) == 1  # the spent links are gone, the other's stays
    assert press_confirm(app, outbox.link("mond@example.org", LINK_PREFIX)).status_code == 302


def test_a_waiting_link_stops_working_when_the_address_is_removed(app, team, outbox):
    browser = app.test_client()
    write_anonymously(browser, team.service_id)
    ask_for_link(browser)
    link = outbox.link(ADDRESS, LINK_PREFIX)
    assert submit(browser, "/account/anonymous/email/remove", {},
                  form_url="/account/anonymous").status_code == 302
    assert press_confirm(app, link).status_code == 400
    assert stored_email(app) == ""
    assert anonymous_account(app).pending_email is None


def test_a_password_made_of_the_pseudonym_is_refused_at_sign_up_and_at_change(app, team):
    pseudonym = "Kastanie Nordlicht"
    for weak in ("kastanienordlicht123", "Kastanie Nordlicht 123"):
        refused = write_anonymously(app.test_client(), team.service_id, pseudonym=pseudonym,
                                    password=weak)
        assert refused.status_code == 400, weak
        assert "zu leicht zu erraten" in refused.get_data(as_text=True)
    browser = app.test_client()
    assert write_anonymously(browser, team.service_id, pseudonym=pseudonym).status_code == 302
    for weak in ("kastanienordlicht123", "Kastanie Nordlicht 123"):
        changed = submit(browser, "/account/password", {"current": PASSWORD,
                                                        "password": weak})
        assert changed.status_code == 200, weak
        assert "zu leicht zu erraten" in changed.get_data(as_text=True), weak
    assert sign_in_with_name(app.test_client(), pseudonym).status_code == 302  # unchanged
    fine = submit(browser, "/account/password", {"current": PASSWORD,
                                                 "password": "Laterne über stillem Kanal"})
    assert fine.status_code == 302
    assert sign_in_with_name(app.test_client(), pseudonym,
                             "Laterne über stillem Kanal").status_code == 302


def test_the_pseudonym_is_among_the_words_a_new_password_must_not_use():
    from shared.services.accounts import pseudonym_inputs

    assert pseudonym_inputs("Sonnenblume 7") == ("Sonnenblume 7", "Sonnenblume7",
                                                  "Sonnenblume")
    assert pseudonym_inputs(None) == ()


TAKEN = "Dieser Name ist schon vergeben."
TOO_MANY_NAMES = "Sie haben mehrere Namen versucht, die schon vergeben sind."


def try_taken_names(app, service_id, count):
    """From one network, ``count`` tries of a name someone already uses (each its own
    browser, the name written differently each time): the answers' status codes."""
    answers = []
    for i in range(count):
        answer = write_anonymously(app.test_client(), service_id,
                                   pseudonym=PSEUDONYM.upper() if i % 2 else PSEUDONYM)
        answers.append(answer)
    return answers


def test_this_name_is_taken_is_answered_ten_times_an_hour_per_network_then_refused(
        app, team):
    from portal.anonymous import TAKEN_NAMES

    assert TAKEN_NAMES.startswith("10 per hour")
    assert write_anonymously(app.test_client(), team.service_id).status_code == 302
    answers = try_taken_names(app, team.service_id, 10)
    assert [a.status_code for a in answers] == [400] * 10
    assert all(TAKEN in a.get_data(as_text=True) for a in answers)
    # The eleventh is refused without looking the name up: also a name nobody uses.
    for pseudonym in (PSEUDONYM, "Niemand hier 42"):
        refused = write_anonymously(app.test_client(), team.service_id, pseudonym=pseudonym)
        assert refused.status_code == 429
        page = refused.get_data(as_text=True)
        assert TOO_MANY_NAMES in page
        assert TAKEN not in page  # says nothing of this name
        assert BODY in page  # what was typed is kept
        assert f'value="{pseudonym}"' in page
        assert PASSWORD not in page
    from shared.models import Account

    with app.app_context():  # nothing was created meanwhile
        assert db.session.scalar(select(func.count()).select_from(Account)
                                 .where(Account.pseudonym_bidx.is_not(None))) == 1
    # In the reader's language (here English, chosen on the start page).
    english = app.test_client()
    assert submit(english, "/language/en", {"next": "/messages/anonymous"},
                  form_url="/").status_code == 302
    refused = write_anonymously(english, team.service_id)
    assert refused.status_code == 429
    assert "You tried several names that are already used." in refused.get_data(as_text=True)


def test_names_not_taken_and_refused_passwords_do_not_count(app, team):
    assert write_anonymously(app.test_client(), team.service_id).status_code == 302
    for i in range(12):  # weak passwords and invalid names are no answer about a name
        weak = write_anonymously(app.test_client(), team.service_id,
                                 pseudonym=f"Frei {i}", password="passwort")
        assert weak.status_code == 400
    assert try_taken_names(app, team.service_id, 1)[0].status_code == 400


@pytest.mark.skipif(not __import__("tests.shared.test_redis_prefix",
                                   fromlist=["redis_available"]).redis_available()
                    and not __import__("os").environ.get("CI"), reason="no Redis")
def test_the_taken_name_count_lives_in_redis_under_the_organisations_prefix(
        database_url, tmp_path, team):
    import redis

    from shared.app import create_app
    from tests.conftest import make_config
    from tests.shared.test_redis_prefix import REDIS_URL

    slug = f"names-{uuid.uuid4().hex[:6]}"
    store = redis.Redis.from_url(REDIS_URL)
    workers = [create_app(make_config(tmp_path / f"w{i}", database_url,
                                      ratelimit_storage_uri=REDIS_URL,
                                      organisation_slug=slug)) for i in range(2)]
    try:
        assert write_anonymously(workers[0].test_client(), team.service_id).status_code == 302
        # Ten answers spread over two workers, then both refuse: the count is shared.
        statuses = [write_anonymously(workers[i % 2].test_client(), team.service_id
                                      ).status_code for i in range(11)]
        assert statuses == [400] * 10 + [429]
        refused = write_anonymously(workers[0].test_client(), team.service_id)
        assert refused.status_code == 429
        assert TOO_MANY_NAMES in refused.get_data(as_text=True)
        keys = [key.decode() for key in store.scan_iter(f"einblick:{slug}:*")]
        assert any("taken-names" in key for key in keys), keys
        # Another organisation sharing the Redis is not limited by these counts.
        other = create_app(make_config(tmp_path / "other", database_url,
                                       ratelimit_storage_uri=REDIS_URL,
                                       organisation_slug=slug + "-b"))
        assert write_anonymously(other.test_client(), team.service_id).status_code == 400
    finally:
        for prefix in (slug, slug + "-b"):
            for key in store.scan_iter(f"einblick:{prefix}:*"):
                store.delete(key)


# -- the retention purge --------------------------------------------------------------------
def months_ago(months: int):
    from shared.models.base import utcnow

    return utcnow() - timedelta(days=30 * months)


def backdate_contact(app, pseudonym: str, *, wrote: int, last_message: int) -> uuid.UUID:
    """The anonymous contact first wrote ``wrote`` months ago, and their conversations' last
    message was ``last_message`` months ago; returns their client id."""
    from shared.models import Client, MessageThread
    from shared.services import anonymous

    with app.app_context():
        client = db.session.scalar(select(Client).where(
            Client.account_id == anonymous.find_account(pseudonym=pseudonym).id))
        client.anonymous_at = months_ago(wrote)
        for thread in db.session.scalars(select(MessageThread)
                                         .where(MessageThread.client_id == client.id)):
            thread.created_at = thread.last_message_at = months_ago(last_message)
        db.session.commit()
        return client.id


def test_the_purge_erases_an_anonymous_contact_once_their_conversations_are_gone(
        app, team, runner):
    """Someone wrote anonymously three years ago; the purge deletes the conversation two
    years after its last message and with it the contact: pseudonym, password, client row
    and data key go, journalled, and the pseudonym no longer signs in. Whoever still has a
    conversation, or something a duty keeps, or is a named client, stays."""
    from shared import erasure_journal
    from shared.models import Account, Client, DataKey, MessageThread
    from shared.models.base import utcnow
    from shared.services import anonymous, erasure
    from tests.conftest import add_booking

    for pseudonym in ("Sonnenblume 7", "Regenbogen 3", "Nordlicht 5", "Morgentau 1"):
        assert write_anonymously(app.test_client(), team.service_id,
                                 pseudonym=pseudonym).status_code == 302
    gone = backdate_contact(app, "Sonnenblume 7", wrote=37, last_message=36)
    writes_still = backdate_contact(app, "Regenbogen 3", wrote=37, last_message=2)
    kept_by_duty = backdate_contact(app, "Nordlicht 5", wrote=37, last_message=36)
    new = backdate_contact(app, "Morgentau 1", wrote=1, last_message=1)
    with app.app_context():
        # An appointment that took place a year ago: kept 3 years after it (proof duty).
        add_booking(db.session.get(Client, kept_by_duty), team, end=months_ago(12))
        gone_key = db.session.get(Client, gone).data_key_id
        gone_account = db.session.get(Client, gone).account_id
        db.session.commit()

    result = runner.invoke(args=["retention", "purge"])
    assert result.exit_code == 0, result.output
    assert "message_threads: 2" in result.output
    assert "clients: 1" in result.output

    with app.app_context():
        assert db.session.get(Client, gone) is None
        assert db.session.get(Account, gone_account) is None
        assert db.session.get(DataKey, gone_key) is None  # crypto-shredded
        assert anonymous.find_account(pseudonym="Sonnenblume 7") is None
        assert gone in erasure_journal.erased_clients()
        for stays in (writes_still, kept_by_duty, new):
            assert db.session.get(Client, stays).account is not None
        assert db.session.scalar(select(func.count()).select_from(MessageThread)
                                 .where(MessageThread.client_id == kept_by_duty)) == 0
        # Three years on, nobody having written: the duty has ended, the other
        # conversations have gone, and with them their contacts.
        later = erasure.purge(now=utcnow() + timedelta(days=3 * 366))
        assert later.counts.get("clients") == 3
        for erased in (writes_still, kept_by_duty, new):
            assert db.session.get(Client, erased) is None
        assert db.session.scalar(select(func.count()).select_from(Account)
                                 .where(Account.pseudonym_bidx.is_not(None))) == 0
    again = runner.invoke(args=["retention", "purge"])
    assert "clients:" not in again.output
    refused = sign_in_with_name(app.test_client(), "Sonnenblume 7")
    assert refused.status_code == 400
    assert "Name oder Passwort ist nicht richtig." in refused.get_data(as_text=True)


def test_the_purge_erases_anonymous_contacts_a_page_at_a_time_at_a_bounded_cost(
        app, team, monkeypatch):
    """Pages of contacts (here 2) until none is due; with nothing due, the purge costs the
    same statements however many anonymous contacts still write."""
    from shared.models import Client
    from shared.services import erasure
    from tests.conftest import counting_statements

    def contacts(names, **dates):
        from shared.services import anonymous

        ids = []
        for name in names:  # as the page does, without its limit per network
            with app.test_request_context("/messages/anonymous", method="POST"):
                anonymous.start(pseudonym=name, password=PASSWORD, service_id=team.service_id,
                                topic=TOPIC, body=BODY, locale="de")
            ids.append(backdate_contact(app, name, **dates))
        return ids

    monkeypatch.setattr(erasure, "PAGE_SIZE", 2)
    due = contacts([f"Wolke {n}" for n in range(5)], wrote=40, last_message=30)
    writing = contacts(["Stern 1", "Stern 2"], wrote=40, last_message=2)
    with app.app_context():
        assert erasure.purge().counts.get("clients") == 5
        assert [db.session.get(Client, i) for i in due] == [None] * 5
        assert all(db.session.get(Client, i) is not None for i in writing)
        with counting_statements(app) as few:
            assert "clients" not in erasure.purge().counts
    contacts(["Stern 3", "Stern 4", "Stern 5", "Stern 6"], wrote=40, last_message=2)
    with app.app_context(), counting_statements(app) as many:
        assert "clients" not in erasure.purge().counts
    assert len(many) == len(few)
