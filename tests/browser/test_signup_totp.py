"""On a 360×740 phone: register, confirm by the outbox link, sign in, turn on TOTP,
sign out, sign in with a TOTP code."""

from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Account
from tests.browser.conftest import assert_accessible, assert_fits_phone, sign_out

PASSWORD = "harbour-violet-lantern-92"


def test_register_confirm_sign_in_turn_on_totp_and_sign_in_with_code(phone, outbox, app,
                                                                       totp_clock):
    """The live server runs in this process, so it reads the TOTP time from totp_clock."""
    page = phone
    email = "handy@example.org"

    page.goto("/register")
    assert page.locator("html").get_attribute("lang") == "de"
    assert_fits_phone(page)
    assert_accessible(page)
    page.fill("input[name=email]", email)
    page.click("button[type=submit]#submit")
    expect(page.locator(".kern-alert--success")).to_contain_text(email)
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

    page.click("main a[href='/account/security']")
    page.wait_for_url("**/account/security")
    assert_fits_phone(page)
    page.click("a[href='/account/security/totp']")
    page.wait_for_url("**/account/security/totp")
    assert page.locator(".qr svg").is_visible()
    assert_fits_phone(page)
    assert_accessible(page)
    secret = page.text_content("#totp-secret").strip()
    page.fill("input[name=code]", totp_clock.code(secret))
    page.click("button[type=submit]#submit")
    page.wait_for_selector("#recovery-codes")
    assert page.locator("#recovery-codes li").count() == 10
    assert_fits_phone(page)
    with app.app_context():
        assert db.session.scalar(select(Account)).totp_enabled_at is not None

    sign_out(page)
    page.wait_for_url("**/login")

    totp_clock.advance()  # the step used to turn TOTP on is never accepted again
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]#submit")
    page.wait_for_url("**/login/code")
    assert page.locator("input[name=code]").get_attribute("autocomplete") == "one-time-code"
    assert_fits_phone(page)
    assert_accessible(page)
    page.fill("input[name=code]", totp_clock.code(secret))
    page.click("button[type=submit]#submit")
    page.wait_for_url("**/home")
    expect(page.locator("h1")).to_have_text("Übersicht")  # the start page
    page.goto("/account")
    assert email in page.content()
    assert page.foreign_requests == []
