"""Issue 15, "done when": on a 360×740 phone, in Turkish, Arabic and Ukrainian, a parent
chooses her language with the switch in the header, picks a time as a visitor, registers
(the link from the email, a password), requests the appointment, adds a passkey as her
second step and signs the consent her caseworker asked for. Every page is in her language
(lang, dir, and the headings and buttons the catalogue has for it), fits the phone and has
no axe violation; the database holds the booking, the consent with its language, and her
choice on the account."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Booking, Consent, ConsentRequest, StaffMember
from shared.models.accounts import CLIENT
from shared.services import accounts, consents
from tests.browser.conftest import (
    PHONE,
    Catalogue,
    add_virtual_authenticator,
    assert_accessible,
    assert_fits_phone,
    choose_language,
    click_in_nav,
    new_context,
)
from tests.conftest import assign_caseworker

PASSWORD = "harbour-violet-lantern-92"
# The consent as the organisation wrote it in each language (German binding as well).
PHOTOS = {
    "de": {"title": "Fotos in der Kita", "text": "Ich willige ein, dass Fotos gemacht werden."},
    "tr": {"title": "Kreşte fotoğraflar", "text": "Fotoğraf çekilmesine izin veriyorum."},
    "ar": {"title": "صور في الحضانة", "text": "أوافق على التقاط الصور لطفلي."},
    "uk": {"title": "Фото в дитячому садку", "text": "Я погоджуюся на фотографування."},
}


def publish_photo_consent(app) -> None:
    with app.app_context():
        template = consents.save_template(
            key="fotos", texts=PHOTOS, purpose="Fotos", legal_basis="Art. 6 Abs. 1 lit. a DSGVO",
            audience="Kita-Team", guardian_signs=True)
        consents.publish(template.id)


def ask_for_the_consent(app, email: str, worker) -> None:
    """Her caseworker asks her for the photo consent (as the staff pages do)."""
    with app.app_context():
        own = accounts.find_account(email=email, kind=CLIENT).client.id
        member = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == worker.account_id))
        db.session.add(ConsentRequest(template_key="fotos", subject_id=own,
                                      requested_by_id=member.id))
        db.session.commit()
    assign_caseworker(app, own, worker)


def check_page(page, code: str, heading: str | None = None) -> None:
    """In the chosen language and direction, the expected heading, fits, no axe violation."""
    html = page.locator("html")
    expect(html).to_have_attribute("lang", code)
    expect(html).to_have_attribute("dir", "rtl" if code == "ar" else "ltr")
    if heading is not None:
        expect(page.locator("main h1")).to_have_text(heading)
    assert_fits_phone(page)
    assert_accessible(page)


@pytest.mark.parametrize("code", ["tr", "ar", "uk"])
def test_sign_up_book_and_sign_a_consent_in_each_language(browser, live_server, app, code,
                                                          make_bookable, make_staff, outbox):
    t = Catalogue(app, code)
    bookable = make_bookable()
    worker = make_staff(role="caseworker")
    publish_photo_consent(app)
    email = f"eltern.{code}@example.org"
    context = new_context(browser, live_server, **PHONE)  # a German phone
    page = context.new_page()

    # The welcome page comes in German; she picks her language by its own name.
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    choose_language(page, code)
    check_page(page, code, t("Welcome to Einblick"))

    # As a visitor: a service, the next free time, held while she registers.
    page.goto("/bookings/new")
    check_page(page, code, t("Which service?"))
    page.click(f"a[href='/bookings/new/{bookable.service_id}']")
    page.wait_for_url(f"**/bookings/new/{bookable.service_id}")
    check_page(page, code)
    page.click("a.slot--next")
    page.wait_for_url(f"**/bookings/new/{bookable.service_id}/*")
    slot_path = page.url.split(live_server, 1)[1]
    check_page(page, code, t("Request appointment"))
    page.get_by_role("button", name=t("Hold this time and register")).click()
    page.wait_for_url("**/register")
    check_page(page, code, t("Create an account"))
    page.fill("input[name=email]", email)
    page.click("button#submit")
    check_page(page, code, t("Check your email"))

    # The email in her language; its link, then a password.
    assert outbox.last_to(email)["Subject"] == t("Confirm your email address")
    page.goto(outbox.link(email, "/confirm/"))
    check_page(page, code, t("How do you want to sign in?"))
    page.fill("input[name=password]", PASSWORD)
    page.click("button#submit")
    page.wait_for_url(f"**{slot_path}")
    check_page(page, code, t("Request appointment"))
    page.click("button#submit")
    page.wait_for_url("**/bookings")
    check_page(page, code, t("Appointments"))
    expect(page.locator("[data-status='requested']")).to_have_count(1)
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        assert booking.status == "requested"
        assert booking.service_id == bookable.service_id
        account = accounts.find_account(email=email, kind=CLIENT)
        assert booking.client_id == account.client.id
        assert account.locale == code  # the switch's choice, remembered on the account

    # Her second step: a passkey on this phone.
    add_virtual_authenticator(page)
    page.goto("/account/security")
    check_page(page, code, t("Security"))
    page.fill("#passkey-name", "Telefon")
    page.click("button[data-passkey-start]")
    page.wait_for_url("**/account/security/recovery-codes/first")
    check_page(page, code)

    # Her caseworker asks for the photo consent; she reads it in her language and signs.
    ask_for_the_consent(app, email, worker)
    click_in_nav(page, "a[href='/consents']")
    page.wait_for_url("**/consents")
    check_page(page, code, t("Consents"))
    page.click("[data-consent='fotos'] a")
    page.wait_for_url("**/consents/*/*")
    check_page(page, code, PHOTOS[code]["title"])
    expect(page.locator("main")).to_contain_text(PHOTOS[code]["text"])
    page.get_by_role("button", name=t("Sign with passkey")).click()
    expect(page.locator("a[href$='/consent.pdf']")).to_be_visible()
    check_page(page, code, PHOTOS[code]["title"])
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert (consent.status, consent.method, consent.locale) == ("given", "passkey", code)
    context.close()

    # Last, so that the whole way is walked even while a catalogue is being filled in.
    assert t.missing == [], f"not yet translated into {code}: {t.missing}"
