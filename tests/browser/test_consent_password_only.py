"""On a phone, in German: people with only a password answer the consent their caseworker
asked for on its own page: one signs with a code sent by email and her typed name, one
makes a passkey right there and signs with it, one says "I do not agree", which the
caseworker then sees in the case file."""

import re

from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Client, Consent, ConsentRequest, StaffMember
from shared.models.consents import ConsentEmailCode
from shared.services import consents
from tests.browser.conftest import (
    add_virtual_authenticator,
    assert_accessible,
    assert_fits_phone,
    click_in_nav,
    client_sign_in,
    new_context,
    staff_sign_in,
)
from tests.conftest import assign_caseworker


def asked_for_photos(app, make_client, worker, full_name: str):
    """A published consent, a password-only client, and her caseworker's request."""
    person = make_client(full_name=full_name)
    with app.app_context():
        template = next((t for t in consents.published_templates() if t.key == "fotos"), None)
        if template is None:
            template = consents.save_template(
                key="fotos", texts={"de": {"title": "Fotos in der Kita",
                                           "text": "Ich willige ein, dass Fotos gemacht werden."}},
                purpose="Fotos", legal_basis="Art. 6 Abs. 1 lit. a DSGVO", audience="Kita-Team",
                guardian_signs=True)
            consents.publish(template.id)
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
        member = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == worker.account_id))
        db.session.add(ConsentRequest(template_key="fotos", subject_id=own,
                                      requested_by_id=member.id))
        db.session.commit()
    assign_caseworker(app, own, worker)
    return person, own


def consent_template_id(app):
    with app.app_context():
        return next(t.id for t in consents.published_templates() if t.key == "fotos")


def open_the_asked_consent(page, person):
    client_sign_in(page, person)
    click_in_nav(page, "a[href='/consents']")
    page.wait_for_url("**/consents")
    expect(page.locator("[data-consent='fotos'] [data-asked]")).to_contain_text(
        "T. Tester hat Sie am")
    assert_fits_phone(page)
    page.click("[data-consent='fotos'] a")
    page.wait_for_selector("text=Ich willige ein, dass Fotos gemacht werden.")
    expect(page.locator("[data-asked]")).to_contain_text("um diese Einwilligung gebeten")


def test_a_password_only_client_signs_with_an_emailed_code(phone, app, make_client, make_staff,
                                                          outbox):
    page = phone
    worker = make_staff(role="caseworker")
    mia, own = asked_for_photos(app, make_client, worker, "Mia Demir")
    open_the_asked_consent(page, mia)
    # This phone cannot make a passkey (no authenticator): that offer stays hidden.
    expect(page.locator("#passkey-inline")).to_have_attribute("data-passkey-checked",
                                                              "not-offered")
    expect(page.locator("#passkey-inline")).to_be_hidden()
    assert_fits_phone(page)
    assert_accessible(page)

    page.click("button#send-submit")
    expect(page.locator(".kern-alert--success")).to_contain_text("Code per E-Mail geschickt")
    code = re.search(r"^\s*(\d{6})\s*$", outbox.last_to(mia.email).get_content(),
                     re.MULTILINE).group(1)
    page.fill("input[name='email-code']", code)
    page.fill("input[name='email-typed_name']", "Mia Demir")
    assert_fits_phone(page)
    assert_accessible(page)
    page.click("button#email-submit")
    receipt = page.locator("a[href$='/consent.pdf']")
    expect(receipt).to_be_visible()
    expect(page.locator("main")).to_contain_text(
        "per E-Mail gesendeter Code und eingetippter Name (am schwächsten)")
    assert page.locator("[data-asked]").count() == 0
    assert_fits_phone(page)
    assert_accessible(page)

    # The email: a link back to this page and its receipt, nothing of the content.
    message = outbox.last_to(mia.email)
    assert message["Subject"] == "Ihre Einwilligung ist gespeichert"
    body = message.get_content()
    assert f"/consents/{consent_template_id(app)}/{own}" in body
    assert "Fotos" not in body
    assert not list(message.iter_attachments())
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.method == "email-code-name"
        assert consent.evidence["method"] == "email-code-name"
        row = db.session.scalar(select(ConsentEmailCode))
        assert row.used_at is not None
        assert code.encode() not in row.code_hash


def test_a_passkey_made_on_the_consent_page_signs_it(phone, app, make_client, make_staff):
    page = phone
    worker = make_staff(role="caseworker")
    lena, _own = asked_for_photos(app, make_client, worker, "Lena Berg")
    add_virtual_authenticator(page)
    open_the_asked_consent(page, lena)
    offer = page.locator("#passkey-inline")
    expect(offer).to_have_attribute("data-passkey-checked", "offered")
    expect(offer).to_be_visible()
    assert_fits_phone(page)
    offer.locator("button[data-passkey-start]").click()
    sign = page.get_by_role("button", name="Mit Passkey unterschreiben")
    expect(sign).to_be_visible()
    assert "/consents/" in page.url
    sign.click()
    expect(page.locator("a[href$='/consent.pdf']")).to_be_visible()
    with app.app_context():
        assert db.session.scalar(select(Consent.method)) == "passkey"


def test_i_do_not_agree_is_recorded_and_staff_see_it(browser, live_server, phone, app,
                                                     make_client, make_staff):
    page = phone
    worker = make_staff(role="caseworker")
    jan, own = asked_for_photos(app, make_client, worker, "Jan Kurz")
    open_the_asked_consent(page, jan)
    page.get_by_role("link", name="Ich willige nicht ein").click()
    page.wait_for_url("**/decline")
    assert_fits_phone(page)
    assert_accessible(page)
    page.click("button#decline")
    expect(page.locator("[data-declined]")).to_contain_text("dass Sie nicht einwilligen")
    expect(page.locator("main")).to_contain_text("Anders entschieden?")
    assert_fits_phone(page)
    with app.app_context():
        record = db.session.scalar(select(Consent))
        assert (record.status, record.method) == ("declined", "confirmation")

    desk = new_context(browser, live_server, viewport={"width": 1280, "height": 800})
    staff_page = desk.new_page()
    staff_sign_in(staff_page, worker)
    staff_page.goto(f"/staff/clients/{own}")
    expect(staff_page.locator("[data-consent='fotos'] [data-status='declined']")).to_have_text(
        "nicht eingewilligt")
    desk.close()
