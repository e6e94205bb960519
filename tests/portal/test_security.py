"""Two-step sign-in with TOTP, recovery codes, password change, signing out everywhere."""

import re

import pyotp
from sqlalchemy import select

from shared import security_log
from shared.extensions import db
from shared.models import Account, RecoveryCode, UserSession
from tests.conftest import security_events, submit


def turn_on_totp(client, clock):
    page = client.get("/account/security/totp")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html  # QR code rendered on the server
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)</code>', html).group(1)
    response = submit(client, "/account/security/totp", {"code": clock.code(secret)})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", response.get_data(as_text=True))
    return secret, codes


def test_turn_on_totp_then_sign_in_needs_the_code(client, app, auth, make_client, totp_clock,
                                                  outbox):
    person = make_client()
    auth.login(person)
    secret, codes = turn_on_totp(client, totp_clock)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        assert account.totp_secret == secret
        assert account.totp_enabled_at is not None
        assert len(db.session.scalars(select(RecoveryCode)).all()) == 10
    assert outbox.last_to(person.email)["Subject"] == "Zwei-Schritt-Anmeldung ist an"

    auth.logout()
    after_password = submit(client, "/login", {"email": person.email,
                                               "password": person.password})
    assert after_password.headers["Location"] == "/login/code"
    assert client.get("/account").status_code == 302  # not signed in before the code

    # The code used to turn TOTP on is of this time step: it is never accepted again.
    replay = submit(client, "/login/code", {"code": totp_clock.code(secret)})
    assert replay.status_code == 200
    totp_clock.advance()
    ok = submit(client, "/login/code", {"code": totp_clock.code(secret)})
    assert ok.headers["Location"] == "/home"


def test_only_current_and_previous_step_and_never_twice(client, make_client, totp_clock):
    person = make_client(totp=True)
    secret = person.totp_secret

    def try_code(code):
        submit(client, "/login", {"email": person.email, "password": person.password})
        return submit(client, "/login/code", {"code": code})

    previous = pyotp.TOTP(secret).at(totp_clock.now - 30)
    two_ago = pyotp.TOTP(secret).at(totp_clock.now - 60)
    assert try_code(two_ago).status_code == 200  # refused: form again
    assert try_code(previous).status_code == 302  # accepted
    submit(client, "/logout", {})
    assert try_code(previous).status_code == 200  # same step again: refused
    assert try_code(totp_clock.code(secret)).status_code == 302  # current step: fine


def test_recovery_code_signs_in_once(client, auth, make_client, totp_clock):
    person = make_client()
    auth.login(person)
    _secret, codes = turn_on_totp(client, totp_clock)
    auth.logout()
    for expected in (302, 200):
        submit(client, "/login", {"email": person.email, "password": person.password})
        response = submit(client, "/login/code", {"code": codes[3].upper()})
        assert response.status_code == expected
        if expected == 302:
            auth.logout()


def test_password_change_needs_current_password_and_ends_other_sessions(app, auth, make_client,
                                                                        outbox):
    person = make_client()
    other_device = app.test_client()
    submit(other_device, "/login", {"email": person.email, "password": person.password})
    assert other_device.get("/account").status_code == 200
    auth.login(person)

    wrong = submit(auth.client, "/account/password",
                   {"current": "not-my-password-1", "password": "new-tulip-garden-seventy"})
    assert wrong.status_code == 200
    assert other_device.get("/account").status_code == 200

    ok = submit(auth.client, "/account/password",
                {"current": person.password, "password": "new-tulip-garden-seventy"})
    assert ok.status_code == 302
    assert auth.client.get("/account").status_code == 200
    assert other_device.get("/account").status_code == 302
    with app.app_context():
        assert len(db.session.scalars(select(UserSession)).all()) == 1
    assert outbox.to(person.email)


def test_log_out_everywhere_keeps_only_this_device(app, auth, make_client):
    person = make_client()
    phone, laptop = app.test_client(), app.test_client()
    for device in (phone, laptop):
        submit(device, "/login", {"email": person.email, "password": person.password})
    auth.login(person)
    response = submit(auth.client, "/account/sessions/end-others", {},
                      form_url="/account/security")
    assert response.status_code == 302
    assert auth.client.get("/account").status_code == 200
    assert phone.get("/account").status_code == 302
    assert laptop.get("/account").status_code == 302


def test_security_changes_need_a_fresh_confirmation(app, client, auth, make_client, totp_clock):
    from datetime import timedelta

    person = make_client()
    auth.login(person)
    with app.app_context():
        row = db.session.scalar(select(UserSession))
        row.authenticated_at -= timedelta(minutes=10)
        db.session.commit()
    page = client.get("/account/security/totp")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/account/confirm")
    old_cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    confirmed = submit(client, page.headers["Location"], {"password": person.password})
    assert confirmed.headers["Location"] == "/account/security/totp"
    assert client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value != old_cookie
    assert client.get("/account/security/totp").status_code == 200


def test_forms_on_the_page_after_a_new_session_id_still_work(client, auth, make_client,
                                                            totp_clock):
    """Turning on TOTP renews the session id; the page shown then must carry a CSRF token
    of the new session, or the next click (e.g. sign out) fails."""
    auth.login(make_client())
    page = client.get("/account/security/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)</code>', page).group(1)
    from tests.conftest import csrf_token

    codes_page = client.post("/account/security/totp", data={
        "csrf_token": csrf_token(page), "code": totp_clock.code(secret)})
    token = csrf_token(codes_page.get_data(as_text=True))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302


def test_turning_off_totp_offers_to_sign_out_everywhere_else_ticked_by_default(
        app, client, auth, make_client, totp_clock):
    from tests.conftest import Auth

    person = make_client(totp=True)
    phone = app.test_client()
    Auth(phone, totp_clock).login(person)
    auth.login(person)
    page = client.get("/account/security").get_data(as_text=True)
    form = re.search(r'<form[^>]*action="/account/security/totp/off".*?</form>', page, re.S)
    box = re.search(r'<input[^>]*name="sign_out_others"[^>]*>', form.group(0)).group(0)
    assert "checked" in box
    assert "auf allen anderen Geräten abmelden" in form.group(0)

    done = submit(client, "/account/security/totp/off", {"sign_out_others": "y"},
                  form_url="/account/security", follow_redirects=True)
    assert "Zwei-Schritt-Anmeldung ist aus" in done.get_data(as_text=True)
    assert "auf allen anderen Geräten abgemeldet" in done.get_data(as_text=True)
    assert client.get("/account").status_code == 200
    assert phone.get("/account").status_code == 302
    with app.app_context():
        assert db.session.get(Account, person.account_id).totp_secret is None
        ref = security_log.pseudonym(person.account_id)
    assert security_events(app, "sessions.ended") == [("ok", ref)]


def test_turning_off_totp_with_the_box_unticked_keeps_other_devices(
        app, client, auth, make_client, totp_clock):
    from tests.conftest import Auth

    person = make_client(totp=True)
    phone = app.test_client()
    Auth(phone, totp_clock).login(person)
    auth.login(person)
    submit(client, "/account/security/totp/off", {}, form_url="/account/security")
    with app.app_context():
        assert db.session.get(Account, person.account_id).totp_secret is None
    assert phone.get("/account").status_code == 200
    assert security_events(app, "sessions.ended") == []


def test_confirming_it_is_you_after_a_form_returns_to_that_page_never_to_a_405(
        app, client, auth, make_client, totp_clock):
    from tests.conftest import age_sign_ins

    person = make_client(totp=True)
    auth.login(person)
    age_sign_ins(app)
    stale = submit(client, "/account/security/totp/off", {"sign_out_others": "y"},
                   form_url="/account/security")
    assert stale.headers["Location"].startswith("/account/confirm")
    totp_clock.advance()
    confirmed = submit(client, stale.headers["Location"],
                       {"password": person.password, "code": totp_clock.code(person.totp_secret)})
    assert confirmed.headers["Location"] == "/account/security"
    back = client.get(confirmed.headers["Location"])
    assert back.status_code == 200
    assert "Zwei-Schritt-Anmeldung ausschalten" in back.get_data(as_text=True)  # ask again
    with app.app_context():
        assert db.session.get(Account, person.account_id).has_totp  # nothing done unasked

    # A hand-made next= to an address that only takes a POST is not followed either.
    totp_clock.advance()
    crafted = submit(client, "/account/confirm?next=/account/security/recovery-codes",
                     {"password": person.password, "code": totp_clock.code(person.totp_secret)})
    assert crafted.headers["Location"] == "/account/security"
    # A page that answers GET is still where the confirmation leads.
    totp_clock.advance()
    page = submit(client, "/account/confirm?next=/my-data/export",
                  {"password": person.password, "code": totp_clock.code(person.totp_secret)})
    assert page.headers["Location"] == "/my-data/export"


def test_guesses_at_the_confirmation_and_new_recovery_codes_are_security_events(
        app, client, auth, make_client, totp_clock):
    from tests.conftest import age_sign_ins

    person = make_client(totp=True)
    auth.login(person)
    with app.app_context():
        ref = security_log.pseudonym(person.account_id)
    age_sign_ins(app)
    # Someone holding the signed-in session guesses the password, then the code.
    for guess in range(2):
        answer = submit(client, "/account/confirm",
                        {"password": f"guess-{guess}-xxxxxxxxxx", "code": "123456"})
        assert "Das ist nicht Ihr Passwort." in answer.get_data(as_text=True)
    totp_clock.advance()
    wrong_code = submit(client, "/account/confirm",
                        {"password": person.password, "code": totp_clock.wrong_code(
                            person.totp_secret)})
    assert wrong_code.status_code == 200
    assert security_events(app, "reauth") == [("failed", ref)] * 3
    confirmed = submit(client, "/account/confirm",
                       {"password": person.password, "code": totp_clock.code(person.totp_secret)})
    assert confirmed.headers["Location"] == "/account/security"
    assert security_events(app, "reauth") == [("failed", ref)] * 3 + [("ok", ref)]

    renewed = submit(client, "/account/security/recovery-codes", {},
                     form_url="/account/security")
    assert renewed.status_code == 200
    assert len(re.findall(r"<li><code>[a-z0-9-]+</code></li>",
                          renewed.get_data(as_text=True))) == 10
    assert security_events(app, "recovery_codes.renewed") == [("ok", ref)]


def test_a_stale_sign_in_confirms_before_downloading_the_export(app, client, auth,
                                                                make_client):
    """The form was opened while the sign-in was fresh; posted after it went stale, it
    leads to the confirmation and no archive leaves the server."""
    from tests.conftest import age_sign_ins, csrf_token

    auth.login(make_client(full_name="Mia Demir"))
    form_page = client.get("/my-data/export").get_data(as_text=True)
    age_sign_ins(app)
    stale = client.post("/my-data/export", data={"csrf_token": csrf_token(form_page)},
                        headers={"Referer": "http://localhost/my-data/export"})
    assert stale.status_code == 302
    assert stale.headers["Location"] == "/account/confirm?next=/my-data/export"
    assert stale.mimetype != "application/zip"
    assert b"PK" not in stale.data
    assert security_events(app, "export.downloaded") == []
    page = client.get("/my-data/export")  # opening the page asks for the confirmation too
    assert page.headers["Location"] == "/account/confirm?next=/my-data/export"


def test_a_stale_sign_in_confirms_before_turning_totp_off(app, client, auth, make_client,
                                                         outbox):
    from tests.conftest import age_sign_ins, csrf_token

    person = make_client(totp=True)
    auth.login(person)
    security_page = client.get("/account/security").get_data(as_text=True)
    age_sign_ins(app)
    stale = client.post("/account/security/totp/off",
                        data={"csrf_token": csrf_token(security_page), "sign_out_others": "y"},
                        headers={"Referer": "http://localhost/account/security"})
    assert stale.status_code == 302
    assert stale.headers["Location"] == "/account/confirm?next=/account/security"
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        assert account.totp_secret == person.totp_secret
        assert account.totp_enabled_at is not None
    assert security_events(app, "totp.disabled") == []
    assert outbox.to(person.email) == []
