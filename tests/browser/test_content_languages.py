"""On a phone (360×740): an admin writes a service in German and Arabic (typed right to
left), and a client reading Ukrainian sees a consent whose text has no Ukrainian version
in German, told so, with no sideways scrolling and no axe violation."""

from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Service
from shared.services import consents
from tests.browser.conftest import (
    assert_accessible,
    assert_fits_phone,
    choose_language,
    client_sign_in,
    staff_sign_in,
)


def test_an_admin_writes_a_service_in_german_and_arabic_on_a_phone(app, phone, make_staff):
    staff_sign_in(phone, make_staff(role="admin"))
    phone.goto("/staff/services/new")
    arabic = phone.locator("details[data-locale='ar']")
    expect(arabic.locator("[data-filled]")).to_have_attribute("data-filled", "no")
    assert_fits_phone(phone)
    assert_accessible(phone)
    phone.fill("#name", "Elternberatung")
    phone.fill("#duration_minutes", "45")
    arabic.locator("summary").click()
    expect(phone.locator("#name_ar")).to_have_attribute("dir", "rtl")
    phone.fill("#name_ar", "استشارة للوالدين")
    assert_fits_phone(phone)
    phone.click("button#submit")
    phone.wait_for_url("**/staff/services")
    with app.app_context():
        service = db.session.scalar(select(Service))
        assert service.name == "Elternberatung"
        assert service.translations == {"ar": {"name": "استشارة للوالدين"}}
        service_id = service.id
    phone.goto(f"/staff/services/{service_id}")
    expect(phone.locator("details[data-locale='ar'] [data-filled]")).to_have_attribute(
        "data-filled", "yes")


def test_a_ukrainian_reader_sees_the_german_consent_marked_on_a_phone(app, phone,
                                                                     make_client):
    with app.app_context():
        saved = consents.save_template(
            key="fotos", texts={"de": {"title": "Fotos in der Kita",
                                       "text": "Ich willige ein, dass Fotos gemacht werden."}},
            purpose="Fotos", legal_basis="Art. 6 Abs. 1 lit. a DSGVO",
            audience="Team der Kita", guardian_signs=True)
        consents.publish(saved.id)
    client_sign_in(phone, make_client(full_name="Olena Shevchenko"))
    choose_language(phone, "uk")
    phone.goto("/consents")
    phone.get_by_role("link", name="Fotos in der Kita").click()
    expect(phone.locator("h1")).to_have_attribute("lang", "de")
    expect(phone.locator("[data-fallback]")).to_contain_text("Українська")
    expect(phone.locator(".consent-text").first).to_have_attribute("lang", "de")
    assert_fits_phone(phone)
    assert_accessible(phone)
