"""On a 360×740 phone a client opens "my data", reads that her caseworker viewed her file,
downloads everything (the ZIP's data.json validates against its own schema), deletes her
account and can no longer sign in."""

import io
import json
import zipfile

import jsonschema
from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Assignment, Client, Note, StaffMember
from shared.services import casefile
from tests.browser.conftest import (
    assert_accessible,
    assert_fits_phone,
    click_in_nav,
    client_sign_in,
)


def test_client_sees_downloads_and_deletes_everything(phone, app, make_client, make_staff):
    person = make_client(email="mia.demir@example.org", full_name="Mia Demir")
    make_staff(role="caseworker")
    with app.app_context():
        client = db.session.scalar(select(Client))
        member = db.session.scalar(select(StaffMember))
        db.session.add(Assignment(client_id=client.id, staff_member_id=member.id))
        note = Note(client_id=client.id, data_key=client.data_key, author_id=member.id)
        note.body = "Erstgespräch geführt."
        db.session.add(note)
        db.session.commit()
        casefile.open_file(member=member, client_id=client.id, session_id=None)
        client_id = client.id

    page = phone
    client_sign_in(page, person)
    click_in_nav(page, "a[href='/my-data']")
    page.wait_for_url("**/my-data")
    page.click("section[data-category='contact'] summary")  # the values, one tap away
    assert "mia.demir@example.org" in page.inner_text("section[data-category='contact']")
    assert_fits_phone(page)

    page.click("main a[href='/my-data/access']")
    page.wait_for_url("**/my-data/access")
    log = page.inner_text("main")
    assert "T. Tester, Fachkraft · " in log  # who, then the day
    assert "hat Daten angesehen" in log
    assert "Notizen" in log

    page.goto("/my-data/export")
    with page.expect_download() as info:
        page.click("button#export")
    archive = zipfile.ZipFile(io.BytesIO(open(info.value.path(), "rb").read()))
    data = json.loads(archive.read("data.json"))
    jsonschema.validate(data, json.loads(archive.read("schema.json")))
    assert data["subjects"][0]["client_id"] == str(client_id)

    page.goto("/my-data")
    page.click("main a[href='/my-data/delete']")
    page.wait_for_url("**/my-data/delete")
    plan = page.inner_text("main")
    assert "Aktennotizen" in plan  # kept for the documentation duty
    assert_fits_phone(page)
    assert_accessible(page)
    page.check("#understood")
    page.click("button#delete")
    page.wait_for_url("**/login")
    assert "gelöscht" in page.inner_text("main")

    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    expect(page.locator(".kern-error")).to_contain_text(
        "E-Mail-Adresse oder Passwort ist nicht richtig.")
    assert "/home" not in page.url
    assert page.locator("input[name=password]").count() == 1  # still on the sign-in form
    with app.app_context():
        assert db.session.get(Client, client_id).account_id is None
