"""The last way back, at 360×740 in German: Mia lost the phone with her authenticator app
and every recovery code. Her caseworker checks her ID card in person, starts a recovery and
hands her the code shown once; a day later (the clock moved, not waited for) Mia chooses a
new password by email: a mistyped code does not get her in, the code from the paper does,
without the lost second step, and she sets up a passkey with new recovery codes."""

from datetime import timedelta

import pyotp
from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, AccountRecovery, Client, StaffMember
from shared.models.base import utcnow
from shared.services import account_recovery
from tests.browser.conftest import (
    PHONE,
    add_virtual_authenticator,
    assert_accessible,
    assert_fits_phone,
    new_context,
    staff_sign_in,
)
from tests.conftest import Outbox, assign_caseworker

NEW_PASSWORD = "quiet-meadow-compass-47"


def test_staff_start_a_recovery_and_a_day_later_the_client_gets_back_in(
        app, browser, live_server, phone, make_client, make_staff, monkeypatch):
    mia = make_client(full_name="Mia Berger", totp=True)
    with app.app_context():
        client_id = db.session.scalar(select(Client.id)
                                      .where(Client.account_id == mia.account_id))
    caseworker = make_staff(role="caseworker")
    assign_caseworker(app, client_id, caseworker)

    # The caseworker, on a phone as well: the file, then the recovery page.
    staff = new_context(browser, live_server, **PHONE).new_page()
    staff_sign_in(staff, caseworker)
    staff.goto(f"/staff/clients/{client_id}")
    staff.click("text=Zur Kontowiederherstellung")
    staff.wait_for_url(f"**/staff/clients/{client_id}/recovery")
    expect(staff.locator("h1")).to_have_text("Kontowiederherstellung")
    assert_fits_phone(staff)
    assert_accessible(staff)
    staff.fill("input[name=identity_check]", "Personalausweis gesehen")
    staff.click("button#submit")
    expect(staff.locator("main")).to_contain_text("Eine Wiederherstellung läuft.")
    expect(staff.locator("main")).to_contain_text("Identität geprüft: Personalausweis gesehen")
    handover = staff.locator("#handover-code")
    expect(handover).to_contain_text("Übergabecode")
    expect(handover).to_contain_text("Geben Sie diesen Code der Person auf Papier")
    code = handover.locator("code").inner_text()
    assert len(code) == 11
    assert code[5] == "-"
    assert_fits_phone(staff)
    assert_accessible(staff)
    staff.reload()  # shown once: not on the page again
    expect(staff.locator("main")).to_contain_text("Eine Wiederherstellung läuft.")
    expect(staff.locator("#handover-code")).to_have_count(0)
    assert code not in staff.content()
    staff.context.close()
    outbox = Outbox(app)
    started_mail = outbox.last_to(mia.email).get_content()
    assert "T. Tester aus unserem Team" in started_mail
    assert "Unser Team hat Ihnen persönlich einen Code gegeben" in started_mail
    assert code not in started_mail

    # A day later.
    monkeypatch.setattr(account_recovery, "clock", lambda: utcnow() + timedelta(hours=25))
    page = phone
    page.goto("/login")
    page.click("text=Passwort vergessen?")
    page.fill("input[name=email]", mia.email)
    page.click("button#submit")
    expect(page.locator("main")).to_contain_text(mia.email)
    page.goto(outbox.link(mia.email, "/reset/"))
    expect(page.locator("label[for=handover_code]")).to_contain_text("Code von unserem Team")
    assert_fits_phone(page)
    assert_accessible(page)
    # A mistyped code: not signed in, the recovery still open.
    wrong = "ABCDE-FGH23" if code != "ABCDE-FGH23" else "ABCDE-FGH24"
    page.fill("input[name=password]", NEW_PASSWORD)
    page.fill("input[name=handover_code]", wrong)
    page.click("button#submit")
    expect(page.locator("#handover_code-error")).to_contain_text("Dieser Code stimmt nicht.")
    assert_fits_phone(page)
    assert_accessible(page)
    with app.app_context():
        row = db.session.scalar(select(AccountRecovery))
        assert row.completed_at is None
        assert row.wrong_codes == 1
    # The code from the paper, typed in lower case.
    page.fill("input[name=password]", NEW_PASSWORD)
    page.fill("input[name=handover_code]", code.lower())
    page.click("button#submit")
    page.wait_for_url("**/account/security")
    expect(page.locator("main")).to_contain_text(
        "Ihr Konto ist wiederhergestellt und Sie sind angemeldet.")
    assert_fits_phone(page)
    assert_accessible(page)
    with app.app_context():
        assert db.session.get(Account, mia.account_id).totp_enabled_at is None
        assert db.session.scalar(select(AccountRecovery.completed_at)) is not None

    # A new second step, and with it new recovery codes.
    add_virtual_authenticator(page)
    page.fill("#passkey-name", "Neues Handy")
    page.click("button[data-passkey-start]")
    page.wait_for_url("**/account/security/recovery-codes/first")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    assert_fits_phone(page)
    assert any(m["Subject"] == "Ihr Konto wurde wiederhergestellt"
               for m in outbox.to(mia.email))


def test_a_client_who_did_not_ask_for_it_cancels_the_recovery(app, browser, live_server,
                                                              phone, make_client, make_staff):
    lea = make_client(full_name="Lea Sommer", totp=True)
    with app.app_context():
        client_id = db.session.scalar(select(Client.id)
                                      .where(Client.account_id == lea.account_id))
        member = make_staff(role="admin")
        admin = db.session.scalar(select(StaffMember)
                                  .where(StaffMember.account_id == member.account_id))
        account_recovery.start(member=admin, client_id=client_id, session_id=None,
                               identity_check="Personalausweis gesehen")
    page = phone
    page.goto("/login")
    page.fill("input[name=email]", lea.email)
    page.fill("input[name=password]", lea.password)
    page.click("button#submit")
    page.wait_for_url("**/login/code")
    page.fill("input[name=code]", pyotp.TOTP(lea.totp_secret).now())
    page.click("button#submit")
    page.wait_for_url("**/home")
    notice = page.locator("#account-recovery")
    expect(notice).to_contain_text("Eine Wiederherstellung Ihres Kontos wurde gestartet")
    expect(notice).to_contain_text("So haben wir geprüft: Personalausweis gesehen")
    assert_fits_phone(page)
    assert_accessible(page)
    notice.locator("button").click()
    page.wait_for_url("**/account/security")
    expect(page.locator("main")).to_contain_text("Die Wiederherstellung ist abgebrochen.")
    expect(page.locator("#account-recovery")).to_have_count(0)
    with app.app_context():
        assert db.session.scalar(select(AccountRecovery.cancelled_at)) is not None
