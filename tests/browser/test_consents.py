"""On a phone, a parent opens a consent for her child, signs it with her passkey,
downloads the sealed receipt (its PAdES seal is checked with pyhanko), withdraws it;
staff then see the withdrawal."""

from playwright.sync_api import expect
from sqlalchemy import select

from shared import seal
from shared.extensions import db
from shared.models import Assignment, Consent, Guardianship, StaffMember
from shared.services import consents
from tests.browser.conftest import (
    add_virtual_authenticator,
    assert_accessible,
    assert_fits_phone,
    click_in_nav,
    new_context,
    staff_sign_in,
)


def test_parent_signs_for_her_child_with_a_passkey_and_withdraws(browser, live_server, phone,
                                                                 app, make_client, make_staff,
                                                                 outbox):
    page = phone
    with app.app_context():
        template = consents.save_template(
            key="fotos", texts={"de": {"title": "Fotos in der Kita",
                                       "text": "Ich willige ein, dass Fotos gemacht werden."}},
            purpose="Fotos", legal_basis="Art. 6 Abs. 1 lit. a DSGVO", audience="Kita-Team",
            guardian_signs=True)
        consents.publish(template.id)
    worker = make_staff(role="caseworker")
    cdp, authenticator = add_virtual_authenticator(page)

    page.goto("/register")
    page.fill("input[name=email]", "ayse@example.org")
    page.click("button#submit")
    expect(page.locator(".kern-alert--success")).to_contain_text("ayse@example.org")
    page.goto(outbox.link("ayse@example.org", "/confirm/"))
    page.click("button[data-passkey-start]")  # on the confirmation page itself
    page.wait_for_url("**/account/security/recovery-codes/first")

    page.goto("/household/new")
    page.fill("input[name=full_name]", "Emil Demir")
    page.fill("input[name=birth_date]", "2019-05-04")
    page.click("button#submit")
    page.wait_for_url("**/household")
    with app.app_context():
        child = db.session.scalar(select(Guardianship)).dependant_id
        member = db.session.scalar(select(StaffMember))
        db.session.add(Assignment(client_id=child, staff_member_id=member.id))
        db.session.commit()

    click_in_nav(page, "a[href='/consents']")
    page.wait_for_url("**/consents")
    assert_fits_phone(page)
    page.click(f"a[href$='/{child}']")
    page.wait_for_selector("text=Ich willige ein, dass Fotos gemacht werden.")
    assert_fits_phone(page)
    assert_accessible(page)
    page.click("button[data-passkey-start]")
    page.wait_for_selector("a[href$='/consent.pdf']")
    with page.expect_download() as download:
        page.click("a[href$='/consent.pdf']")
    receipt = open(download.value.path(), "rb").read()
    with app.app_context():
        cert = seal.load(app.extensions["einblick"].config).certificate_pem
        assert db.session.scalar(select(Consent)).status == "given"
    # The PAdES seal, checked with pyhanko against the organisation's certificate.
    check = seal.check_seal(receipt, cert)
    assert check.intact
    assert check.trusted

    page.click("a[href$='/withdraw']")
    page.click("button#withdraw")
    page.wait_for_selector("a[href$='/withdrawal.pdf']")
    assert_fits_phone(page)
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.status == "withdrawn"
    assert outbox.to(worker.email)

    tablet = new_context(browser, live_server, viewport={"width": 1024, "height": 768})
    staff_page = tablet.new_page()
    staff_sign_in(staff_page, worker)
    staff_page.goto(f"/staff/clients/{child}")
    assert staff_page.locator("[data-consent='fotos'] [data-status='withdrawn']").count() == 1
    tablet.close()
    assert cdp is not None
