"""On a 360×740 phone in German: a mother finds "Konto löschen" under "Mein Konto", reads
what happens to each of her children, keeps one child's file with the organisation and
deletes the other's; anyone reaches contact, imprint and privacy notice from the footer."""

from datetime import date

from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, Client, Guardianship
from shared.services import household
from tests.browser.conftest import (
    assert_accessible,
    assert_fits_phone,
    click_in_nav,
    client_sign_in,
)


def test_mother_deletes_her_account_with_a_choice_per_child(phone, app, make_client):
    mother = make_client(full_name="Mia Demir")
    with app.app_context():
        account = db.session.get(Account, mother.account_id)
        children = {}
        for name in ("Emil Demir", "Lina Demir"):
            child = household.add_dependant(guardian=account, data=household.DependantInput(
                full_name=name, birth_date=date(2019, 5, 4)))
            children[name] = child.id

    page = phone
    client_sign_in(page, mother)
    click_in_nav(page, "a[href='/account']")
    page.wait_for_url("**/account")
    danger = page.locator("main a.kern-btn--danger")
    assert danger.inner_text() == "Konto löschen"
    # Chromium reports KERN's oklch colours as written: paint one pixel to read it as RGB.
    red, green, blue = danger.evaluate("""a => {
        const pixel = document.createElement('canvas').getContext('2d');
        pixel.fillStyle = getComputedStyle(a).backgroundColor;
        pixel.fillRect(0, 0, 1, 1);
        return Array.from(pixel.getImageData(0, 0, 1, 1).data).slice(0, 3);
    }""")
    assert red > 120  # it looks dangerous: red, dark enough for white text
    assert max(green, blue) < 60
    assert danger.bounding_box()["height"] >= 44
    danger.click()
    page.wait_for_url("**/my-data/delete")

    choices = page.locator("[data-testid=child-choice]")
    assert choices.count() == 2
    assert "Was geschieht mit Emil Demir?" in choices.nth(0).inner_text()
    assert "Was geschieht mit Lina Demir?" in choices.nth(1).inner_text()
    assert ("Lina Demir bleibt mit Akte, Terminen und Einwilligungen bei Einblick "
            "angemeldet") in choices.nth(1).inner_text()
    assert_fits_phone(page)
    assert_accessible(page)
    choices.nth(1).get_by_label("Akte des Kindes bei uns behalten").check()
    page.check("#understood")
    page.click("button#delete")
    page.wait_for_url("**/login")
    assert "gelöscht" in page.inner_text("main")

    with app.app_context():
        assert db.session.get(Account, mother.account_id) is None
        assert db.session.get(Client, children["Emil Demir"]) is None
        lina = db.session.get(Client, children["Lina Demir"])
        assert lina.full_name == "Lina Demir"
        assert db.session.scalar(select(Guardianship)) is None


def test_footer_leads_to_contact_imprint_and_privacy(phone):
    page = phone
    page.goto("/")
    for link, heading, expected in (
            ("Kontakt", "Kontakt", "Öffnungszeiten"),
            ("Impressum", "Impressum", "Vertreten durch"),
            ("Datenschutzerklärung", "Datenschutzerklärung", "Was wir speichern")):
        page.locator("footer").get_by_role("link", name=link).click()
        page.wait_for_selector(f"h1:text-is('{heading}')")
        assert expected in page.inner_text("main")
        assert_fits_phone(page)
        assert_accessible(page)
    page.locator("summary", has_text="Termine").click()  # one area, one tap away
    assert "Rechtsgrundlage" in page.locator("details[open]").inner_text()
    page.goto("/contact")
    call = page.locator("main a.kern-btn[href^='tel:']")
    assert call.get_attribute("href") == "tel:+49301234567"
    assert call.bounding_box()["height"] >= 44
    page.set_viewport_size({"width": 320, "height": 740})
    for path in ("/contact", "/imprint", "/privacy"):
        page.goto(path)
        assert_fits_phone(page)
    assert page.foreign_requests == []
