"""Signing up on a phone that cannot make a passkey ends with a password account, never
with a confirmed account without a way in: the passkey is offered only where the device
can create one, and a cancelled or refused passkey leads to the password on the same page."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, PasskeyCredential
from tests.browser.conftest import (
    PHONE,
    add_virtual_authenticator,
    assert_accessible,
    assert_fits_phone,
    new_context,
)
from tests.conftest import STRONG_PASSWORD


def open_confirmation_link(page, outbox, email):
    page.goto("/register")
    page.fill("input[name=email]", email)
    page.click("button[type=submit]#submit")
    expect(page.locator(".kern-alert--success")).to_contain_text(email)
    page.goto(outbox.link(email, "/confirm/"))
    expect(page.locator("h1")).to_have_text("Wie möchten Sie sich anmelden?")


def choose_password_and_sign_in_again(page, email):
    page.fill("input[name=password]", STRONG_PASSWORD)
    page.click("button#submit")
    page.wait_for_url("**/account")
    expect(page.locator(".kern-alert--success")).to_contain_text("Ihr Konto ist bereit")
    page.context.clear_cookies()
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", STRONG_PASSWORD)
    page.click("button#submit")
    page.wait_for_url("**/home")


def assert_password_account(app, email):
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert account.email == email
        assert account.email_confirmed_at is not None
        assert account.password_hash is not None
        assert db.session.scalar(select(PasskeyCredential)) is None


@pytest.mark.parametrize("without", ["authenticator", "webauthn"])
def test_a_phone_that_cannot_make_a_passkey_is_offered_the_password(
        browser, live_server, outbox, app, without):
    context = new_context(browser, live_server, **PHONE)
    if without == "webauthn":  # an old browser
        context.add_init_script("delete window.PublicKeyCredential;")
    page = context.new_page()
    email = f"ohne.{without}@example.org"
    open_confirmation_link(page, outbox, email)
    # Headless Chromium without an authenticator is a device that cannot make a passkey.
    expect(page.locator("[data-passkey-offer]")).to_have_attribute(
        "data-passkey-checked", "not-offered")
    expect(page.locator("[data-passkey-offer]")).to_be_hidden()
    expect(page.get_by_text("Mit einem Passwort")).to_be_visible()
    assert_fits_phone(page)
    assert_accessible(page)
    choose_password_and_sign_in_again(page, email)
    assert_password_account(app, email)
    context.close()


def test_without_javascript_the_password_is_the_way(browser, live_server, outbox, app):
    context = new_context(browser, live_server, java_script_enabled=False, **PHONE)
    page = context.new_page()
    email = "ohne.javascript@example.org"
    open_confirmation_link(page, outbox, email)
    expect(page.locator("[data-passkey-offer]")).to_be_hidden()
    choose_password_and_sign_in_again(page, email)
    assert_password_account(app, email)
    context.close()


def test_a_refused_passkey_leads_to_the_password_on_the_same_page(phone, outbox, app):
    page = phone
    cdp, authenticator = add_virtual_authenticator(page)
    # The person does not confirm with fingerprint or screen lock: the passkey is refused.
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator,
                                          "isUserVerified": False})
    email = "abgebrochen@example.org"
    open_confirmation_link(page, outbox, email)
    link = page.url
    page.fill("#passkey-name", "Mein Handy")
    page.click("button[data-passkey-start]")
    expect(page.locator("[data-passkey-status]")).to_have_text(
        "Es wurde kein Passkey erstellt. Sie können es noch einmal versuchen oder "
        "stattdessen unten ein Passwort wählen.")
    expect(page.locator("input[name=password]")).to_be_focused()
    assert page.url == link
    with app.app_context():
        assert db.session.scalar(select(Account)).email_confirmed_at is None
    assert_accessible(page)
    choose_password_and_sign_in_again(page, email)
    assert_password_account(app, email)
