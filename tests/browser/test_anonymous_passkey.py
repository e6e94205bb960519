"""Anonymous first contact with a passkey (issue 17, item 4), on a 360 px phone that can
make one: a young person writes to the team with only a chosen name and a passkey, lands
in the conversation, signs out, and later signs in with the passkey alone and reads the
caseworker's answer. The account has no password; axe finds nothing on the start page
with the passkey chosen, and nothing scrolls sideways."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, Message, MessageThread, PasskeyCredential
from tests.browser.conftest import (
    PHONE,
    add_virtual_authenticator,
    assert_accessible,
    assert_fits_phone,
    new_context,
    sign_out,
    staff_sign_in,
)

PSEUDONYM = "Pusteblume 12"
TOPIC = "Ärger in der Schule"
BODY = "In der Pause werde ich jeden Tag geschubst, und keiner sagt etwas."
ANSWER = "Danke, dass du uns schreibst. Wir sind für dich da."


def test_write_with_a_passkey_sign_out_and_read_the_answer_with_it(
        app, browser, live_server, make_bookable, outbox):
    team = make_bookable("Jugendberatung")
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    cdp, authenticator = add_virtual_authenticator(page)
    page.goto("/messages/anonymous")
    offer = page.locator("[data-passkey-offer]")
    expect(offer).to_have_attribute("data-passkey-checked", "offered")  # this device can
    page.get_by_label("Ein Name, den Sie wählen").fill(PSEUDONYM)
    page.get_by_label("Passkey statt Passwort verwenden").check()
    expect(page.get_by_label("Passwort wählen")).to_be_hidden()
    page.get_by_label("An welches Team?").select_option(label="Jugendberatung")
    page.get_by_label("Thema").fill(TOPIC)
    page.get_by_label("Ihre Nachricht").fill(BODY)
    assert_fits_phone(page)
    assert_accessible(page)
    page.get_by_role("button", name="Nachricht senden").click()
    page.wait_for_url(re.compile(r"/messages/[0-9a-f-]{36}$"))
    expect(page.get_by_text(BODY)).to_be_visible()
    expect(page.locator(".kern-alert--success")).to_contain_text("mit Ihrem Passkey")
    path = page.url.removeprefix(live_server)
    assert_fits_phone(page)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.pseudonym_bidx.is_not(None)))
        assert account.pseudonym == PSEUDONYM
        assert account.password_hash is None
        passkey = db.session.scalar(select(PasskeyCredential))
        assert passkey.account_id == account.id
        thread = db.session.scalar(select(MessageThread))
        assert path == f"/messages/{thread.id}"
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert [c["isResidentCredential"] for c in stored["credentials"]] == [True]
    # The sign-in page the sign-out leads to offers saved passkeys in its name field
    # (conditional UI), which the virtual authenticator would answer at once: presence is
    # held back until she is on the page for anonymous contacts and taps the button.
    presence = {"authenticatorId": authenticator, "enabled": False}
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", presence)
    with page.expect_response("**/login/passkey/begin"):  # the autofill's, now waiting
        sign_out(page)
    page.wait_for_url("**/login")

    desk = new_context(browser, live_server, viewport={"width": 1280, "height": 800})
    caseworker = desk.new_page()
    staff_sign_in(caseworker, team.staff)
    caseworker.goto(f"/staff{path}")
    expect(caseworker.get_by_text(BODY)).to_be_visible()
    caseworker.get_by_label("Ihre Antwort").fill(ANSWER)
    caseworker.get_by_role("button", name="Antwort senden").click()
    expect(caseworker.get_by_text(ANSWER)).to_be_visible()
    desk.close()

    # Later: the page for those who wrote anonymously, the passkey button.
    page.goto("/login/anonymous")
    expect(page.get_by_role("button", name="Mit einem Passkey anmelden")).to_be_visible()
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {**presence, "enabled": True})
    assert_fits_phone(page)
    assert_accessible(page)
    page.get_by_role("button", name="Mit einem Passkey anmelden").click()
    page.wait_for_url("**/messages")
    page.goto(path)
    expect(page.get_by_text(ANSWER)).to_be_visible()
    with app.app_context():
        answer = db.session.scalar(select(Message).where(Message.from_staff.is_(True)))
        assert db.session.get(Message, answer.id).read_by_client_at is not None
    page.goto("/account/anonymous")
    expect(page.get_by_text(PSEUDONYM)).to_be_visible()
    context.close()
