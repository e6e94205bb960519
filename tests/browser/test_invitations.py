"""On a phone: a young person opens the invitation to an account of their own and learns
that the team confirms in person first; the parent withdraws the invitation."""

from tests.browser.conftest import (
    assert_accessible,
    assert_fits_phone,
    client_sign_in,
    new_context,
)
from tests.conftest import YOUNG_PASSWORD, Outbox


def test_an_invited_young_person_waits_for_the_team_and_the_parent_can_withdraw(
        phone, browser, live_server, app, make_young_person):
    young = make_young_person()
    parent = new_context(browser, live_server, viewport={"width": 360, "height": 740},
                         has_touch=True)
    page = parent.new_page()
    client_sign_in(page, young.parent)
    page.goto("/household")
    page.click("text=Eigenes Konto für Lara Demir")
    page.fill("input[name=email]", "lara@example.org")
    page.click("form[action$='/invite'] button[type=submit]")
    page.wait_for_selector("text=Eine Einladung zu einem eigenen Konto ist unterwegs")

    phone.goto(Outbox(app).link("lara@example.org", "/confirm/"))
    phone.fill("input[name=password]", YOUNG_PASSWORD)
    phone.click("button[name=submit]")
    phone.wait_for_url("**/account/handover")
    text = phone.inner_text("main")
    assert "Es zeigt noch nichts" in text
    assert "Lara" not in text
    assert phone.get_attribute("main a[href^='tel:']", "href") == "tel:+49301234567"
    assert_fits_phone(phone)
    assert_accessible(phone)

    page.click("text=Einladung zurückziehen")
    page.wait_for_url("**/invitation/withdraw")
    assert_fits_phone(page)
    assert_accessible(page)
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=Die Einladung ist zurückgezogen.")
    assert_fits_phone(page)
    parent.close()
    phone.reload()
    phone.wait_for_url("**/login**")
