"""Passkeys in Chromium with its virtual authenticator, on a 360×740 phone: register with a
passkey only, sign out and in with it, add a second passkey, remove one; and staff using a
passkey as their second factor."""

from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import PasskeyCredential
from tests.browser.conftest import (
    PHONE,
    HeldRequests,
    add_virtual_authenticator,
    assert_accessible,
    assert_fits_phone,
    choose_language,
    new_context,
    sign_out,
)
from tests.conftest import STRONG_PASSWORD


def test_client_registers_with_a_passkey_only_and_manages_passkeys(phone, outbox, app):
    page = phone
    email = "passkey.nutzerin@example.org"
    cdp, first_authenticator = add_virtual_authenticator(page)

    page.goto("/register")
    page.fill("input[name=email]", email)
    page.click("button[type=submit]#submit")
    expect(page.locator(".kern-alert--success")).to_contain_text(email)  # the mail is out
    page.goto(outbox.link(email, "/confirm/"))
    expect(page.locator("[data-passkey-offer]")).to_be_visible()  # this device can
    assert_fits_phone(page)
    assert_accessible(page)
    page.fill("#passkey-name", "Pixel 7")
    page.click("button[data-passkey-start]")
    page.wait_for_url("**/account/security/recovery-codes/first")  # shown once
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    with app.app_context():
        stored = db.session.scalars(select(PasskeyCredential)).all()
        assert [c.name for c in stored] == ["Pixel 7"]
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": first_authenticator})
    assert len(credentials["credentials"]) == 1
    assert credentials["credentials"][0]["isResidentCredential"] is True

    # The login page also offers saved passkeys in the address field (conditional UI),
    # which Chromium's virtual authenticator would answer at once. Hold presence back so
    # the page can be checked, then sign in with the button. A request that reaches the
    # authenticator while presence is held back is never answered, so the button's own
    # challenge is held until presence is back.
    presence = {"authenticatorId": first_authenticator, "enabled": False}
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", presence)
    with page.expect_response("**/login/passkey/begin"):  # the autofill's, now waiting
        sign_out(page)
    page.wait_for_url("**/login")
    assert_fits_phone(page)
    assert_accessible(page)
    tap = HeldRequests(page, "**/login/passkey/begin")
    page.click("button[data-passkey-start]")  # aborts the autofill request first
    tap.wait_until_held()
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {**presence, "enabled": True})
    tap.release()
    page.wait_for_url("**/home")
    expect(page.locator("h1")).to_have_text("Übersicht")  # the start page
    page.goto("/account")
    assert email in page.content()

    # A second key: the phone's authenticator already holds one, so use a security key.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": first_authenticator})
    _cdp2, _usb = add_virtual_authenticator(page, transport="usb")
    page.goto("/account/security")
    assert_fits_phone(page)
    page.fill("#passkey-name", "YubiKey")
    page.click("button[data-passkey-start]")
    page.wait_for_selector(".passkey-list__item >> text=YubiKey")
    assert page.locator(".passkey-list__item").count() == 2

    page.locator(".passkey-list__item", has_text="Pixel 7").locator(
        "form[action$='/remove'] button").click()
    expect(page.locator(".passkey-list__item")).to_have_count(1)
    expect(page.locator(".passkey-list")).not_to_contain_text("Pixel 7")
    with app.app_context():
        assert [c.name for c in db.session.scalars(select(PasskeyCredential))] == ["YubiKey"]

    # The last way in cannot be removed.
    page.locator(".passkey-list__item form[action$='/remove'] button").click()
    expect(page.locator(".kern-alert--danger")).to_be_visible()
    assert page.locator(".passkey-list__item").count() == 1
    assert page.foreign_requests == []


def test_staff_sign_in_with_a_passkey_as_second_factor(phone, outbox, app):
    from shared.services import staff

    page = phone
    with app.app_context():
        staff.create_staff(email="fachkraft@example.org", role="caseworker", name="F. Kraft")
    cdp, authenticator = add_virtual_authenticator(page)
    page.goto(outbox.link("fachkraft@example.org", "/staff/invitation/"))
    page.fill("input[name=password]", STRONG_PASSWORD)
    page.click("button[type=submit]#submit")
    page.wait_for_url("**/staff/setup/second-factor")
    assert_fits_phone(page)
    page.fill("#passkey-name", "Dienst-Tablet")
    page.click("button[data-passkey-start]")
    page.wait_for_url("**/staff/")
    assert "F. Kraft" in page.content()

    # Hold presence back on the log-in page, where the passkey autofill would answer.
    presence = {"authenticatorId": authenticator, "enabled": False}
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", presence)
    sign_out(page)
    page.wait_for_url("**/staff/login")
    page.fill("input[name=email]", "fachkraft@example.org")
    page.fill("input[name=password]", STRONG_PASSWORD)
    page.click("button[type=submit]#submit")
    page.wait_for_url("**/staff/login/code")
    assert_fits_phone(page)
    assert_accessible(page)
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {**presence, "enabled": True})
    page.click("button[data-passkey-start]")
    page.wait_for_url("**/staff/")
    assert "F. Kraft" in page.content()


def test_without_webauthn_the_page_says_so_and_password_sign_in_works(browser, live_server,
                                                                      make_client):
    person = make_client()
    context = new_context(browser, live_server, **PHONE)
    context.add_init_script("delete window.PublicKeyCredential;")
    page = context.new_page()
    page.goto("/login")
    assert page.locator("[data-passkey-unsupported]").is_visible()
    assert not page.locator("button[data-passkey-start]").is_visible()
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    page.wait_for_url("**/home")
    context.close()


def test_without_javascript_only_the_passkey_buttons_are_missing(browser, live_server,
                                                                 make_client):
    person = make_client()
    context = new_context(browser, live_server, locale="en-GB", java_script_enabled=False,
                          **PHONE)
    page = context.new_page()
    page.goto("/login")
    assert not page.locator("button[data-passkey-start]").is_visible()
    assert "Passkeys need JavaScript" in page.content()
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    page.wait_for_url("**/home")
    before = page.locator("html").get_attribute("lang")
    other = "en" if before != "en" else "de"
    choose_language(page, other)  # the language switch is a plain form in a <details>
    expect(page.locator("html")).to_have_attribute("lang", other)
    context.close()


def with_a_passkey(page, person):
    """Signed in with a password, the client adds a passkey on the phone's authenticator."""
    from tests.browser.conftest import client_sign_in

    cdp, authenticator = add_virtual_authenticator(page)
    client_sign_in(page, person)
    page.goto("/account/security")
    page.fill("#passkey-name", "Handy")
    page.click("button[data-passkey-start]")
    page.wait_for_url("**/account/security/recovery-codes/first")  # the first passkey's codes
    return cdp, authenticator


def test_a_quick_tap_while_the_autofill_still_loads_signs_in(phone, app, make_client):
    """On a slow phone the button is tapped before the autofill's challenge has arrived.
    The server keeps one challenge per purpose, so the tap must ask for its own after."""
    page = phone
    cdp, authenticator = with_a_passkey(page, make_client())
    presence = {"authenticatorId": authenticator, "enabled": False}
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", presence)  # no autofill sign-in yet
    with page.expect_response("**/login/passkey/begin"):  # this page's autofill is done
        sign_out(page)
    page.wait_for_url("**/login")

    challenges = []  # asked for and answered, in the order the browser saw it
    page.on("request", lambda request: challenges.append("asked")
            if request.url.endswith("/login/passkey/begin") else None)
    page.on("response", lambda response: challenges.append("answered")
            if response.url.endswith("/login/passkey/begin") else None)
    autofill = HeldRequests(page, "**/login/passkey/begin")  # its answer is on its way
    page.reload()
    autofill.wait_until_held()
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {**presence, "enabled": True})
    page.click("button[data-passkey-start]")
    autofill.release()  # the autofill's challenge arrives after the tap
    page.wait_for_url("**/home")
    # The tap asked for its own only after the autofill's had come back.
    assert challenges == ["asked", "answered", "asked", "answered"]


def test_a_tap_before_the_autofill_has_started_signs_in(phone, app, make_client):
    """Some phones take a moment to say whether autofill is available; a tap before that
    must not be overtaken by the autofill's own request for a challenge."""
    page = phone
    cdp, authenticator = with_a_passkey(page, make_client())
    presence = {"authenticatorId": authenticator, "enabled": False}
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", presence)  # no autofill sign-in yet
    sign_out(page)
    page.wait_for_url("**/login")
    # The phone answers whether autofill is available only when the test says so.
    page.add_init_script("""(() => {
      const real = PublicKeyCredential.isConditionalMediationAvailable.bind(PublicKeyCredential);
      let answer;
      const asked = new Promise(resolve => { answer = resolve; });
      const available = asked.then(() => real());
      PublicKeyCredential.isConditionalMediationAvailable = () => available;
      // Resolves after the page's own handlers for the answer have run.
      window.answerAutofillCheck = () => {
        answer();
        return available.then(ok => new Promise(resolve => setTimeout(() => resolve(ok))));
      };
    })();""")
    finish = HeldRequests(page, "**/login/passkey/finish")  # a slow network on the way back
    page.reload()
    begins = []
    page.on("request", lambda request: begins.append(request.url)
            if request.url.endswith("/login/passkey/begin") else None)
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {**presence, "enabled": True})
    page.click("button[data-passkey-start]")  # before the autofill has started
    finish.wait_until_held()
    assert page.evaluate("answerAutofillCheck()") is True  # the autofill would start now
    finish.release()
    page.wait_for_url("**/home")
    assert len(begins) == 1  # the autofill never asked for a challenge of its own
