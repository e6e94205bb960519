"""Never locked out for good: an account gets recovery codes with its first second factor
(an authenticator app, or a passkey as the step after the password or as the only way in),
and the code page's "lost your phone or passkey?" takes one instead."""

import re

from sqlalchemy import func, select

from shared.extensions import db
from shared.models import Account, RecoveryCode
from tests.conftest import STRONG_PASSWORD, post_json, submit
from tests.soft_authenticator import SoftAuthenticator

CODE = re.compile(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>")


def codes_shown(html: str) -> list[str]:
    return CODE.findall(html)


def stored_codes(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(RecoveryCode))


def test_a_passkey_added_after_the_password_comes_with_recovery_codes(app, client, auth,
                                                                      make_client):
    person = make_client()
    auth.login(person)
    page = client.get("/account/security").get_data(as_text=True)
    assert "Wiederherstellungscodes</h2>" not in page  # no second factor yet
    authenticator = SoftAuthenticator(origin="http://localhost")
    begin = post_json(client, "/account/passkeys/begin", page="/account/security")
    credential = authenticator.create(begin.get_data(as_text=True))
    finish_url = re.search(r'data-finish="([^"]+)"', page).group(1).replace("&amp;", "&")
    finish = post_json(client, finish_url, {"credential": credential, "name": "Handy"},
                       page="/account/security")
    assert finish.get_json()["redirect"] == "/account/security/recovery-codes/first"

    shown = client.get("/account/security/recovery-codes/first").get_data(as_text=True)
    codes = codes_shown(shown)
    assert len(codes) == 10
    assert "Ihre Wiederherstellungs\u00adcodes" in shown  # soft hyphen for phones
    assert stored_codes(app) == 10
    # Shown once: the page now leads to the security page, which counts what is left.
    again = client.get("/account/security/recovery-codes/first")
    assert again.headers["Location"] == "/account/security"
    security = client.get("/account/security").get_data(as_text=True)
    assert "Sie haben noch 10 unbenutzte Wiederherstellungscodes." in security

    # The phone is lost: password, then "lost your phone or passkey?" and a code.
    auth.logout()
    first = submit(client, "/login", {"email": person.email, "password": person.password})
    assert first.headers["Location"] == "/login/code"
    code_page = client.get("/login/code").get_data(as_text=True)
    assert "Handy oder Passkey verloren?" in code_page
    assert 'name="recovery_code"' in code_page
    assert 'href="/contact"' in code_page  # no code left: the organisation helps
    signed_in = submit(client, "/login/code", {"recovery_code": codes[3]})
    assert signed_in.headers["Location"] == "/home"
    assert stored_codes(app) == 10
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)
                                 .where(RecoveryCode.used_at.is_not(None))) == 1

    # A used code does not work twice.
    auth.logout()
    submit(client, "/login", {"email": person.email, "password": person.password})
    refused = submit(client, "/login/code", {"recovery_code": codes[3]})
    assert refused.status_code == 200
    assert "/login/code" in refused.request.path


def test_a_passkey_only_account_comes_back_by_password_reset_and_a_recovery_code(app, client,
                                                                                 outbox):
    email = "nur.passkey@example.org"
    submit(client, "/register", {"email": email})
    link = outbox.link(email, "/confirm/")
    begin = post_json(client, f"{link}/passkey/begin", page=link)
    credential = SoftAuthenticator(origin="http://localhost").create(
        begin.get_data(as_text=True))
    finish = post_json(client, f"{link}/passkey/finish", {"credential": credential}, page=link)
    assert finish.get_json()["redirect"] == "/account/security/recovery-codes/first"
    codes = codes_shown(client.get(finish.get_json()["redirect"]).get_data(as_text=True))
    assert len(codes) == 10

    # The phone with the passkey is gone: a new password by email, then a recovery code.
    submit(client, "/logout", {})
    submit(client, "/reset", {"email": email})
    reset_link = outbox.link(email, "/reset/")
    submit(client, reset_link, {"password": STRONG_PASSWORD}, form_url=reset_link)
    first = submit(client, "/login", {"email": email, "password": STRONG_PASSWORD})
    assert first.headers["Location"] == "/login/code"
    signed_in = submit(client, "/login/code", {"recovery_code": codes[0].upper()})
    assert signed_in.headers["Location"] == "/home"
    assert client.get("/account").status_code == 200
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert account.password_hash is not None


def test_new_codes_for_a_passkey_account_replace_the_old_ones(app, client, auth, make_client):
    from tests.conftest import register_passkey

    person = make_client()
    auth.login(person)
    register_passkey(client)
    first = codes_shown(client.get("/account/security/recovery-codes/first")
                        .get_data(as_text=True))
    renewed = submit(client, "/account/security/recovery-codes", {},
                     form_url="/account/security")
    second = codes_shown(renewed.get_data(as_text=True))
    assert len(second) == 10
    assert not set(first) & set(second)
    assert stored_codes(app) == 10
