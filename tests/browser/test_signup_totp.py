"""On a 360×740 phone: register, confirm by the outbox link, sign in, turn on TOTP,
sign out, sign in with a TOTP code."""

import time

import pyotp
from sqlalchemy import select

from shared.extensions import db
from shared.models import Account
from tests.browser.conftest import assert_accessible, assert_fits_phone

PASSWORD = "harbour-violet-lantern-92"


def wait_for_next_totp_step() -> None:
    time.sleep(30 - time.time() % 30 + 0.5)


def test_register_confirm_sign_in_turn_on_totp_and_sign_in_with_code(phone, outbox, app):
    page = phone
    email = "handy@example.org"

    page.goto("/register")
    assert page.locator("html").get_attribute("lang") == "de"
    assert_fits_phone(page)
    assert_accessible(page)
    page.fill("input[name=email]", email)
    page.click("button[type=submit]#submit")
    page.wait_for_load_state()
    assert "/register" in page.url  # "check your email" page
    assert email in page.content()
    assert_fits_phone(page)

    confirm_path = outbox.link(email, "/confirm/")
    page.goto(confirm_path)
    assert_fits_phone(page)
    assert_accessible(page)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]#submit")
    page.wait_for_url("**/account")
    assert email in page.content()
    assert_fits_phone(page)

    page.click("a[href='/account/security']")
    page.wait_for_url("**/account/security")
    assert_fits_phone(page)
    page.click("a[href='/account/security/totp']")
    page.wait_for_url("**/account/security/totp")
    assert page.locator(".qr svg").is_visible()
    assert_fits_phone(page)
    assert_accessible(page)
    secret = page.text_content("#totp-secret").strip()
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("button[type=submit]#submit")
    page.wait_for_selector("#recovery-codes")
    assert page.locator("#recovery-codes li").count() == 10
    assert_fits_phone(page)
    with app.app_context():
        assert db.session.scalar(select(Account)).totp_enabled_at is not None

    page.click(".site-header__logout button")
    page.wait_for_url("**/login")

    wait_for_next_totp_step()  # the step used to turn TOTP on is never accepted again
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]#submit")
    page.wait_for_url("**/login/code")
    assert page.locator("input[name=code]").get_attribute("autocomplete") == "one-time-code"
    assert_fits_phone(page)
    assert_accessible(page)
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("button[type=submit]#submit")
    page.wait_for_url("**/account")
    assert email in page.content()
    assert page.foreign_requests == []
