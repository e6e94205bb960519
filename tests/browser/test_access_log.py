"""A caseworker opens a file on a tablet; on a 360×740 phone the client reads that one
visit in words (who, role, day, time, what was read), and the page fits the phone."""

import re

from sqlalchemy import select

from shared.extensions import db
from shared.models import AccessEvent, Assignment, Client, StaffMember
from tests.browser.conftest import (
    assert_accessible,
    assert_fits_phone,
    client_sign_in,
    new_context,
    staff_sign_in,
)


def test_one_opening_of_the_file_is_one_visit_the_client_reads_on_a_phone(
        phone, browser, live_server, app, make_client, make_staff):
    person = make_client(email="mia.demir@example.org", full_name="Mia Demir")
    worker = make_staff(role="caseworker")
    with app.app_context():
        client = db.session.scalar(select(Client))
        member = db.session.scalar(select(StaffMember))
        db.session.add(Assignment(client_id=client.id, staff_member_id=member.id))
        db.session.commit()
        client_id = client.id

    tablet = new_context(browser, live_server, viewport={"width": 800, "height": 1280})
    desk = tablet.new_page()
    staff_sign_in(desk, worker)
    desk.goto(f"/staff/clients/{client_id}")
    log = desk.locator("#log-heading").locator("xpath=..").inner_text()
    assert "hat die Akte geöffnet" in log
    tablet.close()
    with app.app_context():
        assert db.session.scalars(select(AccessEvent.purpose).where(
            AccessEvent.client_id == client_id)).all() == ["open-file"]

    page = phone
    client_sign_in(page, person)
    page.goto("/my-data/access")
    main = page.inner_text("main")
    assert re.search(r"T\. Tester, Fachkraft · \w+, \d{1,2}\. \w+ \d{4}", main)
    assert re.search(r"\d{2}:\d{2}: hat die Akte geöffnet \(.*Notizen.*\)", main)
    assert page.locator(".access-log__item").count() == 1
    assert not re.search(r"\d{4}-\d{2}-\d{2}T|[0-9a-f]{8}-[0-9a-f]{4}-", main)
    assert_fits_phone(page)
    assert_accessible(page)
