"""On a 1024×768 tablet a caseworker searches, opens a file, uploads a document and writes
a note; the client then sees on their phone that this caseworker viewed the file."""

from sqlalchemy import select

from shared.extensions import db
from shared.models import Assignment, Client, Document, Note, StaffMember
from tests.browser.conftest import (
    PHONE,
    assert_accessible,
    assert_fits_phone,
    click_in_nav,
    client_sign_in,
    new_context,
    staff_sign_in,
)


def test_caseworker_works_on_a_file_and_the_client_sees_it(browser, live_server, app,
                                                           make_client, make_staff, tmp_path):
    person = make_client(email="mia.demir@example.org", full_name="Mia Demir")
    worker = make_staff(role="caseworker")
    with app.app_context():
        client = db.session.scalar(select(Client))
        member = db.session.scalar(select(StaffMember))
        db.session.add(Assignment(client_id=client.id, staff_member_id=member.id))
        db.session.commit()
    pdf = tmp_path / "Hilfeplan.pdf"
    pdf.write_bytes(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n")

    tablet = new_context(browser, live_server, viewport={"width": 1024, "height": 768},
                         has_touch=True)
    page = tablet.new_page()
    staff_sign_in(page, worker)

    page.click(".site-nav a[href='/staff/clients']")
    page.fill("input[name=q]", "Demir")
    page.click("button#submit")
    page.click("text=Mia Demir")
    page.wait_for_url("**/staff/clients/*")
    assert_accessible(page)
    page.set_input_files("input[name=file]", str(pdf))
    page.click("form[action$='/documents'] button[type=submit]")
    page.wait_for_selector("text=Hilfeplan.pdf")
    page.fill("textarea[name=body]", "Erstgespräch geführt, Hilfeplan besprochen.")
    page.click("form[action$='/notes'] button[type=submit]")
    page.wait_for_selector("text=Erstgespräch geführt, Hilfeplan besprochen.")
    tablet.close()
    with app.app_context():
        assert db.session.scalar(select(Document)).filename == "Hilfeplan.pdf"
        assert db.session.scalar(select(Note)).body.startswith("Erstgespräch")

    phone = new_context(browser, live_server, **PHONE)
    mobile = phone.new_page()
    client_sign_in(mobile, person)
    click_in_nav(mobile, "a[href='/my-data']")
    mobile.wait_for_url("**/my-data")
    mobile.click("section[data-category='contact'] summary")  # the values, one tap away
    assert "mia.demir@example.org" in mobile.inner_text("section[data-category='contact']")
    assert_fits_phone(mobile)
    mobile.click("main a[href='/my-data/access']")
    mobile.wait_for_url("**/my-data/access")
    text = mobile.inner_text("main")
    assert "T. Tester" in text
    assert "hat die Akte geöffnet" in text
    assert_fits_phone(mobile)
    assert_accessible(mobile)
    phone.close()
