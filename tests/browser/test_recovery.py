"""Lost phone, at 360×740 in German: a parent who added a passkey after the password is
given recovery codes at once and, with the phone gone, signs in with one of them."""

from playwright.sync_api import expect

from tests.browser.conftest import (
    add_virtual_authenticator,
    assert_accessible,
    assert_fits_phone,
    client_sign_in,
    sign_out,
)


def test_a_lost_passkey_is_replaced_by_a_recovery_code(phone, make_client):
    page = phone
    person = make_client()
    cdp, authenticator = add_virtual_authenticator(page)
    client_sign_in(page, person)
    page.goto("/account/security")
    page.fill("#passkey-name", "Mein Handy")
    page.click("button[data-passkey-start]")
    page.wait_for_url("**/account/security/recovery-codes/first")
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    kept = codes.nth(0).inner_text()
    assert_fits_phone(page)
    assert_accessible(page)
    page.click("text=Ich habe die Codes sicher aufbewahrt")
    page.wait_for_url("**/account/security")
    expect(page.locator("main")).to_contain_text(
        "Sie haben noch 10 unbenutzte Wiederherstellungscodes.")

    # The phone is lost: its authenticator is gone.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    sign_out(page)
    page.wait_for_url("**/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    page.wait_for_url("**/login/code")
    page.click("text=Handy oder Passkey verloren?")
    assert_fits_phone(page)
    assert_accessible(page)
    expect(page.locator("#lost-phone")).to_contain_text("So erreichen Sie uns")
    page.fill("input[name=recovery_code]", kept)
    page.locator("#lost-phone button#submit").click()
    page.wait_for_url("**/home")
    page.goto("/account/security")
    expect(page.locator("main")).to_contain_text(
        "Sie haben noch 9 unbenutzte Wiederherstellungscodes.")
