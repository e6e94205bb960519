"""Never locked out for good, the last way back: no second factor and no recovery code
left, the client is met in person; an admin or their assigned caseworker starts a recovery
(logged, shown to the client, emailed) that takes effect only after a waiting period, when
a password reset together with the hand-over code staff gave in person signs in without
the lost second factor, once: the mailbox alone is not enough."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shared.extensions import db
from shared.models import (
    AccessEvent,
    Account,
    AccountRecovery,
    Client,
    PasskeyCredential,
    RecoveryCode,
)
from shared.models.base import utcnow
from shared.services import account_recovery
from tests.conftest import (
    STRONG_PASSWORD,
    Auth,
    assign_caseworker,
    csrf_token,
    register_passkey,
    security_events,
    submit,
)

NEW_PASSWORD = "quiet-meadow-compass-47"


@pytest.fixture
def later(monkeypatch):
    """The recovery clock: ``later.hours = 25`` moves it on instead of waiting a day."""

    class Later:
        hours = 0

    moved = Later()
    monkeypatch.setattr(account_recovery, "clock",
                        lambda: utcnow() + timedelta(hours=moved.hours))
    return moved


@pytest.fixture
def mia(app, make_client):
    """A client with an authenticator app and used-up recovery codes."""
    person = make_client(full_name="Mia Berger", totp=True)
    with app.app_context():
        client_id = db.session.scalar(select(Client.id)
                                      .where(Client.account_id == person.account_id))
    return person, client_id


def staff_browser(app, auth, person):
    browser = app.test_client()
    Auth(browser, auth.clock).login(person, area="staff")
    return browser


def start(browser, client_id, note="Personalausweis gesehen"):
    url = f"/staff/clients/{client_id}/recovery"
    return submit(browser, url, {"identity_check": note})


def handover_code(page) -> str:
    """The hand-over code on the page staff see right after starting a recovery."""
    match = re.search(r'<code translate="no">([A-Z2-9]{5}-[A-Z2-9]{5})</code>',
                      page.get_data(as_text=True))
    assert match, "no hand-over code on the page"
    return match.group(1)


def reset(app, outbox, email, password=NEW_PASSWORD, code=None):
    """'Forgot your password?' in a new browser: the emailed link, a new password and, if
    given, the hand-over code."""
    browser = app.test_client()
    submit(browser, "/reset", {"email": email})
    link = outbox.link(email, "/reset/")
    page = browser.get(link).get_data(as_text=True)
    data = {"password": password}
    if code is not None:
        data["handover_code"] = code
    done = submit(browser, link, data)
    return browser, page, done


def recovery_row(app, account_id) -> AccountRecovery:
    with app.app_context():
        row = db.session.scalar(select(AccountRecovery)
                                .where(AccountRecovery.account_id == account_id)
                                .order_by(AccountRecovery.started_at.desc()))
        db.session.expunge_all()
        return row


def test_who_may_start_a_recovery(app, auth, make_staff, mia):
    person, client_id = mia
    url = f"/staff/clients/{client_id}/recovery"
    reception = staff_browser(app, auth, make_staff(role="reception"))
    assert reception.get(url).status_code == 403
    token = csrf_token(reception.get("/staff/").get_data(as_text=True))
    assert reception.post(url, data={"identity_check": "Ausweis gesehen",
                                     "csrf_token": token}).status_code == 403
    stranger = staff_browser(app, auth, make_staff(role="caseworker"))
    assert stranger.get(url).status_code == 404  # not assigned: an emergency is not enough
    assigned = make_staff(role="caseworker")
    assign_caseworker(app, client_id, assigned)
    page = staff_browser(app, auth, assigned).get(url)
    assert page.status_code == 200
    assert "Wiederherstellung starten" in page.get_data(as_text=True)
    # The file links there for them, not for reception.
    assigned_file = staff_browser(app, auth, assigned).get(f"/staff/clients/{client_id}")
    assert "Zur Kontowiederherstellung" in assigned_file.get_data(as_text=True)
    reception_file = reception.get(f"/staff/clients/{client_id}")
    assert "Zur Kontowiederherstellung" not in reception_file.get_data(as_text=True)
    admin = staff_browser(app, auth, make_staff(role="admin"))
    assert admin.get(url).status_code == 200
    assert recovery_row(app, person.account_id) is None  # looking starts nothing


def test_a_note_of_the_identity_check_is_required(app, auth, make_staff, mia):
    _, client_id = mia
    admin = staff_browser(app, auth, make_staff(role="admin"))
    refused = start(admin, client_id, note="  ")
    assert refused.status_code == 400
    assert "Personalausweis gesehen" in refused.get_data(as_text=True)  # the hint


def test_the_recovery_takes_effect_after_the_wait_and_only_once(app, client, auth, outbox,
                                                                make_staff, mia, later):
    person, client_id = mia
    admin = staff_browser(app, auth, make_staff(role="admin"))
    started = start(admin, client_id)
    assert started.status_code == 200
    # Staff see the hand-over code once, with what to do with it; it is not emailed.
    code = handover_code(started)
    shown = started.get_data(as_text=True)
    assert "Übergabecode" in shown
    assert "Geben Sie diesen Code der Person auf Papier oder sagen Sie ihn ihr persönlich" \
        in shown
    assert started.headers["Cache-Control"] == "no-store"
    row = recovery_row(app, person.account_id)
    assert row.effective_at - row.started_at == timedelta(hours=24)
    assert row.handover_code_hash
    assert code.encode() not in row.handover_code_hash
    assert row.wrong_codes == 0
    with app.app_context():
        assert db.session.get(AccountRecovery, row.id).identity_check == \
            "Personalausweis gesehen"
        raw = db.session.execute(select(AccountRecovery.identity_check_ciphertext)).scalar()
        assert b"Personalausweis" not in raw  # encrypted at rest
    mail = outbox.last_to(person.email)
    assert mail["Subject"] == "Eine Wiederherstellung Ihres Kontos wurde gestartet"
    body = mail.get_content()
    assert "T. Tester aus unserem Team" in body
    assert "Unser Team hat Ihnen persönlich einen Code gegeben" in body
    assert code not in body
    assert "+49 30 1234567" in body
    assert "/account/security" in body
    assert security_events(app, "account_recovery.started")[0][0] == "ok"
    # Staff see it pending, with the note.
    page = admin.get(f"/staff/clients/{client_id}/recovery").get_data(as_text=True)
    assert "Eine Wiederherstellung läuft." in page
    assert "Identität geprüft: Personalausweis gesehen" in page
    assert code not in page  # shown only once
    assert start(admin, client_id).status_code == 302  # a second one is refused
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AccountRecovery)) == 1

    # Before the wait is over a reset still leaves the second factor in place.
    later.hours = 23
    _, page, done = reset(app, outbox, person.email)
    assert "Eine Wiederherstellung Ihres Kontos läuft." in page
    assert done.headers["Location"] == "/login"
    browser = app.test_client()
    signed = submit(browser, "/login", {"email": person.email, "password": NEW_PASSWORD})
    assert signed.headers["Location"] == "/login/code"
    code_page = browser.get("/login/code").get_data(as_text=True)
    assert "Unser Team hat eine Wiederherstellung Ihres Kontos gestartet." in code_page
    assert recovery_row(app, person.account_id).completed_at is None

    # A day later the reset with the hand-over code (typed in lower case, without the
    # dash) signs in without it, and the lost factors are gone.
    later.hours = 25
    browser, page, done = reset(app, outbox, person.email, password=STRONG_PASSWORD,
                                code=code.replace("-", "").lower())
    assert "Code von unserem Team" in page
    assert done.headers["Location"] == "/account/security"
    security = browser.get("/account/security").get_data(as_text=True)
    assert "Ihr Konto ist wiederhergestellt und Sie sind angemeldet." in security
    assert browser.get("/home").status_code == 200
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        assert account.totp_enabled_at is None
        assert account.totp_secret is None
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    assert recovery_row(app, person.account_id).completed_at is not None
    assert outbox.last_to(person.email)["Subject"] == "Ihr Konto wurde wiederhergestellt"
    assert security_events(app, "account_recovery.completed")[0][0] == "ok"

    # The client reads it in their access log, in words.
    log = browser.get("/my-data/access").get_data(as_text=True)
    assert ("hat nach persönlicher Prüfung der Identität eine Wiederherstellung des Kontos "
            "gestartet") in log
    with app.app_context():
        purposes = set(db.session.scalars(select(AccessEvent.purpose)
                                          .where(AccessEvent.client_id == client_id)))
    assert "account-recovery" in purposes

    # Once: with a new second step, the next reset needs it again, code or not.
    auth.login(person)
    register_passkey(client)
    _, page, done = reset(app, outbox, person.email, code=code)
    assert "Code von unserem Team" not in page
    assert done.headers["Location"] == "/login"
    browser = app.test_client()
    signed = submit(browser, "/login", {"email": person.email, "password": NEW_PASSWORD})
    assert signed.headers["Location"] == "/login/code"



def test_passkeys_go_with_a_completed_recovery(app, client, auth, outbox, make_staff,
                                               make_client, later):
    person = make_client(full_name="Nora Passkey")
    auth.login(person)
    register_passkey(client)
    with app.app_context():
        client_id = db.session.scalar(select(Client.id)
                                      .where(Client.account_id == person.account_id))
    caseworker = make_staff(role="caseworker")
    assign_caseworker(app, client_id, caseworker)
    code = handover_code(start(staff_browser(app, auth, caseworker), client_id))
    later.hours = 24
    _, _, done = reset(app, outbox, person.email, code=code)
    assert done.headers["Location"] == "/account/security"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PasskeyCredential)) == 0


def test_the_client_sees_and_cancels_the_recovery(app, client, auth, outbox, make_staff, mia,
                                                  later):
    person, client_id = mia
    start(staff_browser(app, auth, make_staff(role="admin")), client_id)
    auth.login(person)  # they still have their phone: it was not them
    home = client.get("/home").get_data(as_text=True)
    assert "Eine Wiederherstellung Ihres Kontos wurde gestartet" in home
    assert 'href="tel:+49301234567"' in home
    assert "So haben wir geprüft: Personalausweis gesehen" in home
    # "My data" names it, with the note of how staff checked the identity.
    my_data = client.get("/my-data").get_data(as_text=True)
    assert "Wie das Team Ihre Identität für eine Wiederherstellung geprüft hat" in my_data
    assert "Personalausweis gesehen" in my_data
    cancelled = submit(client, "/account/recovery/cancel", {}, form_url="/home")
    assert cancelled.headers["Location"] == "/account/security"
    security = client.get("/account/security").get_data(as_text=True)
    assert "Die Wiederherstellung ist abgebrochen." in security
    assert "Wiederherstellung abbrechen" not in security
    assert recovery_row(app, person.account_id).cancelled_at is not None
    assert outbox.last_to(person.email)["Subject"] == \
        "Die Wiederherstellung Ihres Kontos wurde abgebrochen"
    assert security_events(app, "account_recovery.cancelled")[0][0] == "ok"
    later.hours = 48
    _, _, done = reset(app, outbox, person.email)
    assert done.headers["Location"] == "/login"  # the second factor still applies
    with app.app_context():
        assert db.session.get(Account, person.account_id).totp_enabled_at is not None


def test_staff_cancel_a_recovery(app, auth, outbox, make_staff, mia, later):
    person, client_id = mia
    admin = staff_browser(app, auth, make_staff(role="admin"))
    start(admin, client_id)
    url = f"/staff/clients/{client_id}/recovery"
    file_page = admin.get(f"/staff/clients/{client_id}").get_data(as_text=True)
    assert "Eine Wiederherstellung läuft." in file_page  # seen in the file, cancelled there
    assert f'action="{url}/cancel"' in file_page
    done = submit(admin, f"{url}/cancel", {}, form_url=f"/staff/clients/{client_id}")
    assert done.headers["Location"] == url
    assert "Die Wiederherstellung ist abgebrochen." in admin.get(url).get_data(as_text=True)
    assert recovery_row(app, person.account_id).cancelled_at is not None
    assert outbox.last_to(person.email)["Subject"] == \
        "Die Wiederherstellung Ihres Kontos wurde abgebrochen"
    with app.app_context():
        actions = list(db.session.scalars(select(AccessEvent.action)
                                          .where(AccessEvent.client_id == client_id)))
    assert any("recovery-cancelled" in action for action in actions)
    later.hours = 30
    _, _, done = reset(app, outbox, person.email)
    assert done.headers["Location"] == "/login"


def test_deleting_the_account_deletes_its_recoveries(app, client, auth, make_staff, mia):
    person, client_id = mia
    start(staff_browser(app, auth, make_staff(role="admin")), client_id)
    auth.login(person)
    assert submit(client, "/my-data/delete", {"understood": "yes"}).status_code == 302
    with app.app_context():
        assert db.session.get(Account, person.account_id) is None
        assert db.session.scalar(select(func.count()).select_from(AccountRecovery)) == 0


def test_the_mailbox_alone_does_not_recover_the_account(app, auth, outbox, make_staff, mia,
                                                        later):
    """Someone who reads the client's email (a thief with the phone, a partner) gets the reset
    link but not the code staff gave the client in person."""
    person, client_id = mia
    code = handover_code(start(staff_browser(app, auth, make_staff(role="admin")), client_id))
    later.hours = 25
    # Without the code: a normal reset, the second factor still applies, the recovery waits.
    _, page, done = reset(app, outbox, person.email)
    assert "Geben Sie mit Ihrem neuen Passwort den Code ein" in page
    assert done.headers["Location"] == "/login"
    assert recovery_row(app, person.account_id).completed_at is None
    assert recovery_row(app, person.account_id).wrong_codes == 0  # no code is no wrong code
    # A wrong code: the password is not saved, the page says so, the try is counted; the
    # link still works (typed again on the same page).
    wrong = "ABCDE-FGH23" if code != "ABCDE-FGH23" else "ABCDE-FGH24"
    browser = app.test_client()
    submit(browser, "/reset", {"email": person.email})
    link = outbox.link(person.email, "/reset/")
    refused = submit(browser, link, {"password": "another-quiet-river-58",
                                     "handover_code": wrong})
    assert refused.status_code == 400
    assert "Dieser Code stimmt nicht." in refused.get_data(as_text=True)
    row = recovery_row(app, person.account_id)
    assert row.completed_at is None
    assert row.cancelled_at is None
    assert row.wrong_codes == 1
    signed = submit(app.test_client(), "/login", {"email": person.email,
                                                  "password": "another-quiet-river-58"})
    assert signed.status_code == 200  # not saved: that password is not right
    assert security_events(app, "account_recovery.completed")[0][0] == "failed"
    with app.app_context():
        assert db.session.get(Account, person.account_id).totp_enabled_at is not None
    # Four more wrong codes: the recovery is cancelled and the client emailed.
    for _ in range(3):
        assert submit(browser, link, {"password": NEW_PASSWORD,
                                      "handover_code": wrong}).status_code == 400
    last = submit(browser, link, {"password": NEW_PASSWORD, "handover_code": wrong})
    assert last.headers["Location"] == link
    after = browser.get(link).get_data(as_text=True)
    assert "Zu viele falsche Codes" in after
    assert "Code von unserem Team" not in after  # now a normal reset
    row = recovery_row(app, person.account_id)
    assert row.cancelled_at is not None
    assert row.wrong_codes == 5
    mail = outbox.last_to(person.email)
    assert mail["Subject"] == "Die Wiederherstellung Ihres Kontos wurde abgebrochen"
    assert "zu oft ein falscher Code von unserem Team eingegeben" in mail.get_content()
    # Now even the right code does not get past the second factor.
    done = submit(browser, link, {"password": NEW_PASSWORD, "handover_code": code})
    assert done.headers["Location"] == "/login"
    with app.app_context():
        assert db.session.get(Account, person.account_id).totp_enabled_at is not None
    assert recovery_row(app, person.account_id).completed_at is None
