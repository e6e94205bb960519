"""On a phone, a caseworker taps "the client may read this note" on the case file: the
note's box is ticked, not the document's (both forms once shared id="visible_to_client")."""

from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Assignment, Client, Note, StaffMember
from tests.browser.conftest import PHONE, assert_fits_phone, new_context, staff_sign_in


def test_the_note_label_ticks_the_note_box_and_the_note_is_readable_by_the_client(
    browser, live_server, app, make_client, make_staff
):
    make_client(full_name="Mia Demir")
    worker = make_staff(role="caseworker")
    with app.app_context():
        client = db.session.scalar(select(Client))
        member = db.session.scalar(select(StaffMember))
        db.session.add(Assignment(client_id=client.id, staff_member_id=member.id))
        db.session.commit()
        client_id = client.id
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    staff_sign_in(page, worker)
    page.goto(f"/staff/clients/{client_id}")

    page.get_by_label("Die Person darf diese Notiz lesen").check()
    note_box = page.locator("form[action$='/notes'] input[name=visible_to_client]")
    document_box = page.locator("form[action$='/documents'] input[name=visible_to_client]")
    expect(note_box).to_be_checked()
    expect(document_box).not_to_be_checked()
    page.get_by_label("Die Person darf dieses Dokument sehen").check()
    page.get_by_label("Die Person darf diese Notiz lesen").uncheck()
    expect(note_box).not_to_be_checked()
    expect(document_box).to_be_checked()
    page.get_by_label("Die Person darf diese Notiz lesen").check()
    page.fill("textarea[name=body]", "Termin beim Jugendamt vereinbart.")
    page.click("form[action$='/notes'] button[type=submit]")
    expect(page.get_by_text("Termin beim Jugendamt vereinbart.")).to_be_visible()
    assert_fits_phone(page)
    context.close()
    with app.app_context():
        note = db.session.scalar(select(Note))
        assert note.body == "Termin beim Jugendamt vereinbart."
        assert note.visible_to_client is True
