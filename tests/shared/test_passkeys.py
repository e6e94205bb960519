"""Passkeys at unit level: a software authenticator makes real signatures and the
ceremonies accept or refuse them as a user (or an attacker) drives the HTTP endpoints."""

import json
import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.auth import passkeys
from shared.extensions import db
from shared.models import Account, PasskeyChallenge, PasskeyCredential
from tests.conftest import STRONG_PASSWORD, submit
from tests.soft_authenticator import SoftAuthenticator


def csrf_from_meta(client, page="/"):
    html = client.get(page, follow_redirects=True).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def post_json(client, url, body=None, page="/"):
    token = csrf_from_meta(client, page)
    return client.post(url, json=body or {}, headers={"X-CSRFToken": token})


def add_passkey(client, authenticator, name="Mein Handy", prefix=""):
    begin = post_json(client, f"{prefix}/account/passkeys/begin")
    assert begin.status_code == 200, begin.get_data(as_text=True)
    credential = authenticator.create(begin.get_data(as_text=True))
    return post_json(client, f"{prefix}/account/passkeys/finish",
                     {"credential": credential, "name": name})


def passkey_sign_in(client, authenticator, prefix="", **kwargs):
    begin = post_json(client, f"{prefix}/login/passkey/begin", page=f"{prefix}/login")
    assertion = authenticator.get(begin.get_data(as_text=True), **kwargs)
    return post_json(client, f"{prefix}/login/passkey/finish", {"credential": assertion},
                     page=f"{prefix}/login")


def register_with_passkey(client, link, authenticator, name="Mein Handy"):
    """On the confirmation page: create the first passkey (what passkeys.js posts)."""
    begin = post_json(client, f"{link}/passkey/begin", page=link)
    assert begin.status_code == 200, begin.get_data(as_text=True)
    credential = authenticator.create(begin.get_data(as_text=True))
    return post_json(client, f"{link}/passkey/finish", {"credential": credential, "name": name},
                     page=link)


@pytest.fixture
def client_with_passkey(client, auth, make_client):
    person = make_client()
    auth.login(person)
    authenticator = SoftAuthenticator(origin="http://localhost")
    assert add_passkey(client, authenticator).status_code == 200
    auth.logout()
    return person, authenticator


def test_register_with_passkey_only_then_sign_in_without_typing_the_address(client, outbox,
                                                                            app):
    submit(client, "/register", {"email": "ohne.passwort@example.org"})
    link = outbox.link("ohne.passwort@example.org", "/confirm/")
    authenticator = SoftAuthenticator(origin="http://localhost")
    finish = register_with_passkey(client, link, authenticator, name="Pixel 7")
    assert finish.status_code == 200
    assert finish.get_json()["redirect"] == "/account/security/recovery-codes/first"
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert account.password_hash is None
        assert account.email_confirmed_at is not None
        stored = db.session.scalar(select(PasskeyCredential))
        assert stored.name == "Pixel 7"
        assert b"Pixel 7" not in stored.name_ciphertext
        assert stored.credential_id == authenticator.credential_id
    assert "passkey" in outbox.last_to("ohne.passwort@example.org")["Subject"].lower()

    submit(client, "/logout", {})
    signed_in = passkey_sign_in(client, authenticator)
    assert signed_in.status_code == 200
    assert signed_in.get_json()["redirect"] == "/home"
    assert "einblick-device=" in signed_in.headers.get("Set-Cookie", "")
    assert client.get("/account").status_code == 200
    with app.app_context():
        stored = db.session.scalar(select(PasskeyCredential))
        assert stored.sign_count == 1
        assert stored.last_used_at is not None


def test_wrong_origin_and_wrong_rp_id_are_refused(client, client_with_passkey):
    _person, authenticator = client_with_passkey
    wrong_origin = passkey_sign_in(client, authenticator, origin="http://evil.example")
    assert wrong_origin.status_code == 400
    wrong_rp = passkey_sign_in(client, authenticator, rp_id="evil.example")
    assert wrong_rp.status_code == 400
    assert client.get("/account").status_code == 302


def test_a_replayed_assertion_is_refused(client, client_with_passkey):
    _person, authenticator = client_with_passkey
    begin = post_json(client, "/login/passkey/begin", page="/login")
    assertion = authenticator.get(begin.get_data(as_text=True))
    first = post_json(client, "/login/passkey/finish", {"credential": assertion}, page="/login")
    assert first.status_code == 200
    submit(client, "/logout", {})
    post_json(client, "/login/passkey/begin", page="/login")  # a new challenge exists now
    replay = post_json(client, "/login/passkey/finish", {"credential": assertion},
                       page="/login")
    assert replay.status_code == 400
    assert client.get("/account").status_code == 302


def test_an_expired_challenge_is_refused(client, client_with_passkey, app):
    _person, authenticator = client_with_passkey
    begin = post_json(client, "/login/passkey/begin", page="/login")
    with app.app_context():
        row = db.session.scalar(select(PasskeyChallenge))
        row.expires_at -= timedelta(minutes=5, seconds=1)
        db.session.commit()
    assertion = authenticator.get(begin.get_data(as_text=True))
    response = post_json(client, "/login/passkey/finish", {"credential": assertion},
                         page="/login")
    assert response.status_code == 400
    assert response.get_json()["error"] == ("Diese Anfrage ist abgelaufen. Bitte versuchen "
                                            "Sie es noch einmal.")


def test_a_challenge_belongs_to_the_session_that_asked_for_it(app, client, client_with_passkey):
    _person, authenticator = client_with_passkey
    begin = post_json(client, "/login/passkey/begin", page="/login")
    assertion = authenticator.get(begin.get_data(as_text=True))
    other_browser = app.test_client()
    stolen = post_json(other_browser, "/login/passkey/finish", {"credential": assertion},
                       page="/login")
    assert stolen.status_code == 400


def test_cloned_authenticator_is_refused_and_logged(client, client_with_passkey, caplog):
    _person, authenticator = client_with_passkey
    clone = authenticator.clone()
    assert passkey_sign_in(client, authenticator).status_code == 200  # counter 1
    submit(client, "/logout", {})
    assert passkey_sign_in(client, authenticator).status_code == 200  # counter 2
    submit(client, "/logout", {})
    with caplog.at_level(logging.WARNING, logger="einblick.security"):
        cloned = passkey_sign_in(client, clone)  # the copy says 1 again
    assert cloned.status_code == 400
    assert "sign count did not increase" in caplog.text
    assert "cloned" in caplog.text
    assert client.get("/account").status_code == 302


def test_synced_passkeys_reporting_zero_are_accepted(client, auth, make_client):
    auth.login(make_client())
    synced = SoftAuthenticator(origin="http://localhost", counter=False)
    add_passkey(client, synced)
    auth.logout()
    for _ in range(2):
        assert passkey_sign_in(client, synced).status_code == 200
        submit(client, "/logout", {})


def test_user_verification_is_required(client, client_with_passkey):
    _person, authenticator = client_with_passkey
    authenticator.user_verified = False
    assert passkey_sign_in(client, authenticator).status_code == 400


def test_credential_of_another_account_is_refused_as_second_factor(app, client, auth,
                                                                   make_client,
                                                                   client_with_passkey):
    _owner, owners_key = client_with_passkey
    other = make_client(totp=True)
    submit(client, "/login", {"email": other.email, "password": other.password})
    begin = post_json(client, "/login/code/passkey/begin", page="/login/code")
    options = begin.get_data(as_text=True)
    # The options list only the signing-in account's keys; forge an answer with another's.
    options = re.sub(r'"allowCredentials":\[[^\]]*\]', '"allowCredentials":[]', options)
    forged = owners_key.get(options)
    response = post_json(client, "/login/code/passkey/finish", {"credential": forged},
                         page="/login/code")
    assert response.status_code == 400
    assert client.get("/account").status_code == 302


def test_passkey_as_second_factor_after_the_password(client, client_with_passkey):
    person, authenticator = client_with_passkey
    first = submit(client, "/login", {"email": person.email, "password": person.password})
    assert first.headers["Location"] == "/login/code"
    page = client.get("/login/code").get_data(as_text=True)
    assert "/login/code/passkey/begin" in page
    begin = post_json(client, "/login/code/passkey/begin", page="/login/code")
    assertion = authenticator.get(begin.get_data(as_text=True))
    done = post_json(client, "/login/code/passkey/finish", {"credential": assertion},
                     page="/login/code")
    assert done.status_code == 200
    assert client.get("/account").status_code == 200
    # A complete sign-in: the browser is now a known device (wrong-code caps spare it).
    assert "einblick-device=" in done.headers.get("Set-Cookie", "")


def test_the_same_authenticator_cannot_join_a_second_account(client, auth, make_client,
                                                             client_with_passkey):
    _owner, authenticator = client_with_passkey
    auth.login(make_client())
    again = add_passkey(client, authenticator)
    assert again.status_code == 400


def test_rename_and_remove_with_step_up_and_never_the_last_way_in(app, client, outbox):
    submit(client, "/register", {"email": "zwei@example.org"})
    link = outbox.link("zwei@example.org", "/confirm/")
    phone, key = (SoftAuthenticator(origin="http://localhost") for _ in range(2))
    register_with_passkey(client, link, phone, name="Handy")
    with app.app_context():
        only = db.session.scalar(select(PasskeyCredential))
    refused = submit(client, f"/account/passkeys/{only.id}/remove", {},
                     form_url="/account/security", follow_redirects=True)
    assert ("Das ist Ihr einziger Weg zur Anmeldung. Deshalb kann er nicht entfernt werden."
            in refused.get_data(as_text=True))
    add_passkey(client, key, name="YubiKey")
    submit(client, f"/account/passkeys/{only.id}/rename", {"name": "Altes Handy"},
           form_url="/account/security")
    security = client.get("/account/security").get_data(as_text=True)
    assert "Altes Handy" in security
    assert "YubiKey" in security

    # Removing needs a fresh confirmation: make the log-in old, then confirm by passkey.
    with app.app_context():
        from shared.models import UserSession

        row = db.session.scalar(select(UserSession))
        row.authenticated_at -= timedelta(minutes=10)
        db.session.commit()
    stale = submit(client, f"/account/passkeys/{only.id}/remove", {},
                   form_url="/account/security")
    assert stale.headers["Location"].startswith("/account/confirm")
    begin = post_json(client, "/account/confirm/passkey/begin", page="/account/confirm")
    done = post_json(client, "/account/confirm/passkey/finish",
                     {"credential": key.get(begin.get_data(as_text=True))},
                     page="/account/confirm")
    assert done.status_code == 200
    removed = submit(client, f"/account/passkeys/{only.id}/remove", {},
                     form_url="/account/security")
    assert removed.headers["Location"] == "/account/security"
    with app.app_context():
        names = [c.name for c in db.session.scalars(select(PasskeyCredential))]
    assert names == ["YubiKey"]
    assert (outbox.last_to("zwei@example.org")["Subject"]
            == "Aus Ihrem Konto wurde ein Passkey entfernt")


def test_adding_a_passkey_needs_a_fresh_confirmation(app, client, auth, make_client):
    auth.login(make_client())
    with app.app_context():
        from shared.models import UserSession

        row = db.session.scalar(select(UserSession))
        row.authenticated_at -= timedelta(minutes=10)
        db.session.commit()
    response = post_json(client, "/account/passkeys/begin")
    assert response.status_code == 403
    assert response.get_json()["redirect"].startswith("/account/confirm")


def test_staff_may_use_a_passkey_as_their_mandatory_second_factor(runner, client, outbox):
    from tests.conftest import STRONG_PASSWORD

    runner.invoke(args=["staff", "create", "--email", "schluessel@example.org",
                        "--role", "caseworker"])
    submit(client, outbox.link("schluessel@example.org", "/staff/invitation/"),
           {"password": STRONG_PASSWORD})
    assert client.get("/staff/").headers["Location"] == "/staff/setup/second-factor"
    key = SoftAuthenticator(origin="http://localhost")
    added = add_passkey(client, key, name="YubiKey", prefix="/staff")
    assert added.status_code == 200
    assert client.get("/staff/").status_code == 200
    submit(client, "/staff/logout", {})
    password = submit(client, "/staff/login", {"email": "schluessel@example.org",
                                               "password": STRONG_PASSWORD})
    assert password.headers["Location"] == "/staff/login/code"
    begin = post_json(client, "/staff/login/code/passkey/begin", page="/staff/login/code")
    done = post_json(client, "/staff/login/code/passkey/finish",
                     {"credential": key.get(begin.get_data(as_text=True))},
                     page="/staff/login/code")
    assert done.get_json()["redirect"] == "/staff/"
    assert client.get("/staff/").status_code == 200


def test_a_client_passkey_does_not_open_the_staff_area(client, client_with_passkey):
    _person, authenticator = client_with_passkey
    response = passkey_sign_in(client, authenticator, prefix="/staff")
    assert response.status_code == 400
    assert client.get("/staff/").status_code == 302


def test_pages_reached_by_ip_address_explain_that_passkeys_need_the_host_name(client):
    by_name = client.get("/login").get_data(as_text=True)
    assert "data-passkey-controls" in by_name
    page = client.get("/login", base_url="http://127.0.0.1").get_data(as_text=True)
    assert 'href="http://localhost/login"' in page
    assert "data-passkey-controls" not in page


def test_ceremony_service_signs_a_callers_32_byte_challenge(app):
    with app.test_request_context("/"):
        options = passkeys.begin_authentication(purpose="consent", challenge=b"\x11" * 32)
        assert json.loads(options)["challenge"] == "ERERERERERERERERERERERERERERERERERERERERERE"
        with pytest.raises(ValueError, match="32 bytes"):
            passkeys.begin_authentication(purpose="consent", challenge=b"short")


def test_a_password_set_before_the_address_was_proved_does_not_survive(client, outbox, app):
    """Whatever sat on an unconfirmed account (e.g. from someone who registered the
    address first) is wiped when the link holder completes registration."""
    from shared.auth import passwords

    submit(client, "/register", {"email": "vorher@example.org"})
    with app.app_context():
        account = db.session.scalar(select(Account))
        account.password_hash = passwords.hash_password("attacker-chose-this-one-1")
        db.session.commit()
    link = outbox.link("vorher@example.org", "/confirm/")
    register_with_passkey(client, link, SoftAuthenticator(origin="http://localhost"))
    with app.app_context():
        assert db.session.scalar(select(Account)).password_hash is None
    attacker = app.test_client()
    tried = submit(attacker, "/login", {"email": "vorher@example.org",
                                        "password": "attacker-chose-this-one-1"})
    assert tried.status_code == 200


def test_a_forged_assertion_does_not_raise_the_clone_alarm(client, client_with_passkey,
                                                           caplog):
    _person, authenticator = client_with_passkey
    passkey_sign_in(client, authenticator)
    submit(client, "/logout", {})
    begin = post_json(client, "/login/passkey/begin", page="/login")
    forged = authenticator.get(begin.get_data(as_text=True))
    authenticator.sign_count -= 1
    forged["response"]["signature"] = forged["response"]["signature"][::-1]
    with caplog.at_level(logging.WARNING, logger="einblick.security"):
        response = post_json(client, "/login/passkey/finish", {"credential": forged},
                             page="/login")
    assert response.status_code == 400
    assert "cloned" not in caplog.text


def test_staff_password_alone_cannot_bind_a_key_once_set_up_time_is_over(runner, client,
                                                                        outbox, app):
    from shared.models import Account as AccountModel
    from tests.conftest import STRONG_PASSWORD

    runner.invoke(args=["staff", "create", "--email", "spaet@example.org", "--role",
                        "reception"])
    submit(client, outbox.link("spaet@example.org", "/staff/invitation/"),
           {"password": STRONG_PASSWORD})
    submit(client, "/staff/logout", {})
    with app.app_context():
        account = db.session.scalar(select(AccountModel))
        account.password_changed_at -= timedelta(hours=73)
        db.session.commit()
    late = submit(client, "/staff/login", {"email": "spaet@example.org",
                                           "password": STRONG_PASSWORD})
    assert late.status_code == 200
    assert client.get("/staff/").status_code == 302
    # A new invitation opens the set-up again.
    assert runner.invoke(args=["staff", "invite", "--email", "spaet@example.org"]).exit_code == 0
    again = submit(client, outbox.link("spaet@example.org", "/staff/invitation/"),
                   {"password": "another-long-password-93"})
    assert again.headers["Location"] == "/staff/setup/second-factor"


def test_setup_endpoints_close_once_a_second_factor_exists(app, client, make_staff):
    person = make_staff(role="caseworker")
    submit(client, "/staff/login", {"email": person.email, "password": person.password})
    # Password given, code not yet: adding a passkey must not be possible.
    response = post_json(client, "/staff/account/passkeys/begin", page="/staff/login/code")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/login"


def test_a_copied_passkey_is_refused_flagged_and_the_owner_emailed(app, client,
                                                                  client_with_passkey, outbox):
    from shared import security_log
    from shared.models import SecurityEvent

    person, authenticator = client_with_passkey
    clone = authenticator.clone()
    assert passkey_sign_in(client, authenticator).status_code == 200  # counter 1
    submit(client, "/logout", {})
    laptop = app.test_client()  # stays signed in, as a copy's session might
    assert passkey_sign_in(laptop, authenticator).status_code == 200  # counter 2
    mails_before = len(outbox.to(person.email))

    replayed = passkey_sign_in(client, clone)  # the copy says 1 again
    assert replayed.status_code == 400
    assert client.get("/account").status_code == 302
    assert laptop.get("/account").status_code == 302  # every session of the account ended
    with app.app_context():
        stored = db.session.scalar(select(PasskeyCredential))
        assert stored.flagged_at is not None
        events = [(e.event, e.outcome, e.account_ref) for e in db.session.scalars(
            select(SecurityEvent).order_by(SecurityEvent.at))]
        credential_id, public_key = stored.credential_id, stored.public_key
    with app.app_context():
        ref = security_log.pseudonym(person.account_id)
    assert ("passkey.anomaly", "refused", ref) in events
    assert ("login.passkey", "failed", ref) in events
    assert ("login.passkey", "ok", ref) in events

    mails = outbox.to(person.email)
    assert len(mails) == mails_before + 1
    warning = mails[-1]
    assert "kopiert" in warning["Subject"]
    body = warning.get_content()
    assert "http://localhost/account/security" in body
    for secret in (credential_id.hex(), public_key.hex(), "Mein Handy"):
        assert secret not in body
    # A second try with the copy is refused and recorded, but does not email again.
    passkey_sign_in(client, clone)
    assert len(outbox.to(person.email)) == mails_before + 1

    # Not even the real key signs in now (which copy is the owner's cannot be told): the
    # owner signs in with the password and sees the warning.
    assert passkey_sign_in(client, authenticator).status_code == 400
    assert submit(client, "/login", {"email": person.email, "password": person.password}
                  ).headers["Location"] == "/home"
    page = client.get("/account/security").get_data(as_text=True)
    flagged = re.search(r'<li class="passkey-list__item[^"]*" data-flagged.*?</li>', page, re.S)
    assert flagged is not None
    assert "Mein Handy" in flagged.group(0)
    assert "möglicherweise kopiert" in flagged.group(0)
    # and the way to remove it (the name isolated, for right-to-left pages)
    assert "„<bdi>Mein Handy</bdi>“ entfernen" in flagged.group(0)


def test_the_copied_passkey_email_exists_in_english(app, client, client_with_passkey, outbox):
    person, authenticator = client_with_passkey
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        account.locale = "en"
        db.session.commit()
    clone = authenticator.clone()
    passkey_sign_in(client, authenticator)
    submit(client, "/logout", {})
    passkey_sign_in(client, clone)
    warning = outbox.last_to(person.email)
    assert "copied" in warning["Subject"]
    assert "counter" in warning.get_content()


def test_removing_a_passkey_signs_out_everywhere_else_when_the_box_is_ticked(app, client, auth,
                                                                            make_client):
    from shared.models import SecurityEvent
    from tests.conftest import register_passkey

    person = make_client()
    auth.login(person)
    register_passkey(client, name="Altes Handy")
    key = register_passkey(client, name="YubiKey")
    laptop, tablet = app.test_client(), app.test_client()
    for device in (laptop, tablet):
        passkey_sign_in(device, key)
    with app.app_context():
        old, new = db.session.scalars(select(PasskeyCredential)
                                      .order_by(PasskeyCredential.created_at)).all()
    page = client.get("/account/security").get_data(as_text=True)
    boxes = re.findall(r'<input[^>]*name="sign_out_others"[^>]*>', page)
    assert len(boxes) == 2
    assert all("checked" in box for box in boxes)
    assert len({re.search(r'id="([^"]+)"', box).group(1) for box in boxes}) == 2

    kept = submit(client, f"/account/passkeys/{old.id}/remove", {},
                  form_url="/account/security")
    assert kept.headers["Location"] == "/account/security"
    assert laptop.get("/account").status_code == 200
    register_passkey(client, name="Drittes")
    with app.app_context():
        third = db.session.scalar(select(PasskeyCredential)
                                  .where(PasskeyCredential.id != new.id))
    submit(client, f"/account/passkeys/{third.id}/remove", {"sign_out_others": "y"},
           form_url="/account/security")
    assert client.get("/account").status_code == 200
    assert laptop.get("/account").status_code == 302
    assert tablet.get("/account").status_code == 302
    with app.app_context():
        events = [e.event for e in db.session.scalars(select(SecurityEvent)
                                                      .order_by(SecurityEvent.at))]
    assert events.count("passkey.added") == 3
    assert events.count("passkey.removed") == 2
    assert "sessions.ended" in events


def test_a_passkey_step_up_never_leads_to_an_address_that_only_takes_a_post(
        app, client, client_with_passkey):
    _person, authenticator = client_with_passkey
    passkey_sign_in(client, authenticator)
    begin = post_json(client, "/account/confirm/passkey/begin", page="/account/confirm")
    done = post_json(client, "/account/confirm/passkey/finish?next=/account/security/totp/off",
                     {"credential": authenticator.get(begin.get_data(as_text=True))},
                     page="/account/confirm")
    assert done.get_json()["redirect"] == "/account/security"


def test_a_passkey_confirmation_is_a_security_event(app, client, client_with_passkey):
    from shared import security_log
    from tests.conftest import security_events

    person, authenticator = client_with_passkey
    passkey_sign_in(client, authenticator)
    begin = post_json(client, "/account/confirm/passkey/begin", page="/account/confirm")
    forged = authenticator.get(begin.get_data(as_text=True))
    forged["response"]["signature"] = forged["response"]["signature"][::-1]
    refused = post_json(client, "/account/confirm/passkey/finish", {"credential": forged},
                        page="/account/confirm")
    assert refused.status_code == 400
    begin = post_json(client, "/account/confirm/passkey/begin", page="/account/confirm")
    done = post_json(client, "/account/confirm/passkey/finish",
                     {"credential": authenticator.get(begin.get_data(as_text=True))},
                     page="/account/confirm")
    assert done.status_code == 200
    with app.app_context():
        ref = security_log.pseudonym(person.account_id)
    assert security_events(app, "reauth") == [("failed", ref), ("ok", ref)]


# -- a passkey marked as possibly copied works nowhere until it is removed --------------------
FLAGGED = "möglicherweise kopiert"


def flag(app, person) -> None:
    """Mark the account's passkeys as possibly copied (what a counter that went backwards
    does, see test_a_copied_passkey_is_refused_flagged_and_the_owner_emailed)."""
    from shared.models.base import utcnow

    with app.app_context():
        for credential in db.session.scalars(select(PasskeyCredential).where(
                PasskeyCredential.account_id == person.account_id)):
            credential.flagged_at = utcnow()
        db.session.commit()


def test_a_copy_that_jumped_ahead_no_longer_signs_in_once_the_passkey_is_flagged(
        app, client, client_with_passkey, outbox):
    from shared import security_log
    from tests.conftest import age_sign_ins, security_events

    person, genuine = client_with_passkey
    copy = genuine.clone()
    copy.sign_count = 1000  # whoever copied the key jumps its counter ahead
    assert passkey_sign_in(client, copy).status_code == 200
    submit(client, "/logout", {})
    # The owner's own key now seems to go backwards: refused, and the passkey flagged.
    assert passkey_sign_in(client, genuine).status_code == 400
    copy_again = passkey_sign_in(client, copy)
    assert copy_again.status_code == 400
    message = copy_again.get_json()["error"]
    assert FLAGGED in message
    assert "entfernen und wieder hinzufügen" in message
    assert "Passwort vergessen" in message  # the way back without any other way in
    assert client.get("/account").status_code == 302
    with app.app_context():
        ref = security_log.pseudonym(person.account_id)
    assert ("refused", ref) in security_events(app, "login.passkey")

    # The owner signs in with the password (the flagged passkey is no second step) ...
    answer = submit(client, "/login", {"email": person.email, "password": person.password})
    assert answer.headers["Location"] == "/home"
    # ... cannot confirm with the flagged passkey, but with the password ...
    age_sign_ins(app)
    begin = post_json(client, "/account/confirm/passkey/begin", page="/account/confirm")
    refused = post_json(client, "/account/confirm/passkey/finish",
                        {"credential": genuine.get(begin.get_data(as_text=True))},
                        page="/account/confirm")
    assert refused.status_code == 400
    assert FLAGGED in refused.get_json()["error"]
    assert security_events(app, "reauth") == [("refused", ref)]
    assert submit(client, "/account/confirm", {"password": person.password}
                  ).headers["Location"] == "/account/security"
    # ... removes it and adds the key again: a new credential, which the copy does not hold.
    with app.app_context():
        flagged = db.session.scalar(select(PasskeyCredential))
    removed = submit(client, f"/account/passkeys/{flagged.id}/remove", {},
                     form_url="/account/security")
    assert removed.headers["Location"] == "/account/security"
    renewed = SoftAuthenticator(origin="http://localhost")
    assert add_passkey(client, renewed).status_code == 200
    submit(client, "/logout", {})
    assert passkey_sign_in(client, copy).status_code == 400
    assert passkey_sign_in(client, renewed).status_code == 200


def test_a_passkey_only_owner_whose_passkey_is_flagged_gets_back_in_by_email(
        app, client, auth, make_client, outbox):
    person = make_client()
    auth.login(person)
    key = SoftAuthenticator(origin="http://localhost")
    assert add_passkey(client, key).status_code == 200
    auth.logout()
    with app.app_context():  # an account with a passkey and no password
        db.session.get(Account, person.account_id).password_hash = None
        db.session.commit()
    flag(app, person)
    refused = passkey_sign_in(client, key)
    assert refused.status_code == 400
    assert "Passwort vergessen" in refused.get_json()["error"]

    # "Forgot your password?": the emailed link sets a password, which signs in alone.
    submit(client, "/reset", {"email": person.email})
    submit(client, outbox.link(person.email, "/reset/"), {"password": "copper-meadow-whistle-58"})
    signed_in = submit(client, "/login", {"email": person.email,
                                          "password": "copper-meadow-whistle-58"})
    assert signed_in.headers["Location"] == "/home"
    with app.app_context():
        flagged = db.session.scalar(select(PasskeyCredential))
    submit(client, f"/account/passkeys/{flagged.id}/remove", {}, form_url="/account/security")
    with app.app_context():
        assert db.session.scalar(select(PasskeyCredential)) is None
    assert add_passkey(client, SoftAuthenticator(origin="http://localhost")).status_code == 200


def test_a_flagged_passkey_is_no_second_step_and_staff_are_told_whom_to_ask(
        app, client, make_staff, totp_clock):
    from tests.conftest import Auth

    member = make_staff(role="caseworker")
    Auth(client, totp_clock).login(member, area="staff")
    key = SoftAuthenticator(origin="http://localhost")
    assert add_passkey(client, key, prefix="/staff").status_code == 200
    submit(client, "/staff/logout", {})
    flag(app, member)
    login = {"email": member.email, "password": member.password}
    assert submit(client, "/staff/login", login).headers["Location"] == "/staff/login/code"
    begin = post_json(client, "/staff/login/code/passkey/begin", page="/staff/login/code")
    refused = post_json(client, "/staff/login/code/passkey/finish",
                        {"credential": key.get(begin.get_data(as_text=True))},
                        page="/staff/login/code")
    assert refused.status_code == 400
    message = refused.get_json()["error"]
    assert FLAGGED in message
    assert "Administration um eine neue Einladung" in message
    assert "Passwort vergessen" not in message  # staff have no reset by email
    totp_clock.advance()  # the authenticator app still works
    done = submit(client, "/staff/login/code", {"code": totp_clock.code(member.totp_secret)})
    assert done.headers["Location"] == "/staff/"


def test_a_flagged_passkey_signs_no_consent(app, client, client_with_passkey):
    person, key = client_with_passkey
    flag(app, person)
    with app.test_request_context("/"):
        account = db.session.get(Account, person.account_id)
        options = passkeys.begin_authentication(purpose="consent", account=account,
                                                challenge=b"\x22" * 32)
        with pytest.raises(passkeys.CredentialFlagged):
            passkeys.finish_authentication(purpose="consent", account=account,
                                           response=json.dumps(key.get(options)))


def test_a_refused_passkey_at_sign_up_leaves_the_link_for_a_password(client, outbox, app):
    """Creating the first passkey fails (here: a forged answer): the address is not
    confirmed, and the same page still sets a password that signs in."""
    submit(client, "/register", {"email": "kein.passkey@example.org"})
    link = outbox.link("kein.passkey@example.org", "/confirm/")
    page = client.get(link).get_data(as_text=True)
    assert "data-passkey-offer hidden" in page  # shown by passkeys.js where possible
    assert 'data-passkey-fallback="password"' in page
    begin = post_json(client, f"{link}/passkey/begin", page=link)
    credential = SoftAuthenticator(origin="http://evil.example").create(
        begin.get_data(as_text=True))
    refused = post_json(client, f"{link}/passkey/finish", {"credential": credential}, page=link)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == ("Der Passkey konnte nicht geprüft werden. Bitte "
                                           "versuchen Sie es noch einmal.")
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert account.email_confirmed_at is None
        assert db.session.scalar(select(PasskeyCredential)) is None
    assert client.get("/account").status_code == 302  # not signed in

    chosen = submit(client, link, {"password": STRONG_PASSWORD}, form_url=link)
    assert chosen.headers["Location"] == "/account"
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert account.email_confirmed_at is not None
        assert account.password_hash is not None
    submit(client, "/logout", {})
    signed_in = submit(client, "/login", {"email": "kein.passkey@example.org",
                                          "password": STRONG_PASSWORD})
    assert signed_in.headers["Location"] == "/home"


def test_a_used_link_cannot_create_a_passkey(client, outbox, app):
    submit(client, "/register", {"email": "schon.fertig@example.org"})
    link = outbox.link("schon.fertig@example.org", "/confirm/")
    submit(client, link, {"password": STRONG_PASSWORD}, form_url=link)
    submit(client, "/logout", {})
    begin = post_json(client, f"{link}/passkey/begin", page="/login")
    assert begin.status_code == 400
    assert begin.get_json()["redirect"] == link  # which says the link no longer works
    with app.app_context():
        assert db.session.scalar(select(PasskeyCredential)) is None
