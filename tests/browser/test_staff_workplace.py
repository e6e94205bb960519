"""A caseworker at a 1280 px desk starts the day on the start page (today's appointments,
requests waiting), opens a client's file from it and finds the notes in a column beside the
rest of the file; an admin reaches reports, reviews and erasures from the menu. On a phone
the same pages fit the screen in one column under a one-line header. axe finds nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from shared.extensions import db
from shared.models import Assignment, Booking, Client, Note, StaffMember
from shared.models.base import utcnow
from shared.services import availability
from tests.browser.conftest import (
    PHONE,
    assert_accessible,
    assert_fits_phone,
    click_in_nav,
    new_context,
    staff_sign_in,
)

DESK = {"viewport": {"width": 1280, "height": 800}}


def appointment_today(app, bookable, client_id, hour: int) -> None:
    with app.app_context():
        zone = availability.local_zone()
        day = utcnow().astimezone(zone).date()
        start = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
        client = db.session.get(Client, client_id)
        db.session.add(Booking(client_id=client.id, data_key=client.data_key,
                               service_id=bookable.service_id,
                               staff_member_id=bookable.staff_member_id, start_at=start,
                               end_at=start + timedelta(minutes=45), status="confirmed"))
        db.session.commit()


def mia_with_her_caseworker(app, make_client, make_bookable):
    """Mia has an appointment with her assigned caseworker today; returns both."""
    make_client(email="mia.demir@example.org", full_name="Mia Demir")
    bookable = make_bookable(name="Elternberatung")
    with app.app_context():
        mia = db.session.scalar(select(Client)).id
        member = db.session.scalar(select(StaffMember.id)
                                   .where(StaffMember.account_id == bookable.staff.account_id))
        db.session.add(Assignment(client_id=mia, staff_member_id=member))
        db.session.commit()
    appointment_today(app, bookable, mia, 10)
    return mia, bookable


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def test_a_caseworker_at_a_desk_works_from_the_start_page_in_two_columns(
        browser, live_server, app, make_client, make_bookable):
    mia, bookable = mia_with_her_caseworker(app, make_client, make_bookable)
    desk = new_context(browser, live_server, **DESK)
    page = desk.new_page()
    staff_sign_in(page, bookable.staff)

    today = page.locator("[data-section=today]")
    assert "Ihre Termine heute" in today.inner_text()
    assert "10:00–10:45" in today.inner_text()
    assert "Elternberatung" in today.inner_text()
    # Today beside the queues: the page uses the width.
    assert box(page, "[data-section=today]")["x"] < box(page, "[data-section=requests]")["x"]
    assert box(page, "main")["width"] > 1000
    assert_accessible(page)

    today.get_by_role("link", name="Mia Demir").click()
    page.wait_for_url(f"**/staff/clients/{mia}")
    page.fill("textarea[name=body]", "Erstgespräch geführt, nächster Termin in zwei Wochen.")
    page.click("form[action$='/notes'] button[type=submit]")
    page.wait_for_selector("text=Erstgespräch geführt, nächster Termin in zwei Wochen.")
    with app.app_context():
        assert db.session.scalar(select(Note)).body.startswith("Erstgespräch geführt")
    # Two columns: the notes (form first) on the left, contact data and the rest beside them,
    # both starting at the top; the access log follows the notes.
    notes, side = box(page, ".casefile__main"), box(page, ".casefile__side")
    assert notes["x"] + notes["width"] <= side["x"]
    assert abs(notes["y"] - side["y"]) < 2
    assert box(page, "form[action$='/notes']")["y"] < box(page, "article.note")["y"]
    for heading in ("Stammdaten", "Termine", "Einwilligungen", "Dokumente"):
        assert page.locator(".casefile__side h2", has_text=heading).count() == 1, heading
    log = box(page, ".casefile__log")
    assert log["x"] == notes["x"]
    assert log["y"] >= notes["y"] + notes["height"]
    assert_accessible(page)
    desk.close()


def test_an_admin_finds_every_admin_page_in_the_menu(browser, live_server, app, make_staff):
    admin = make_staff(role="admin")
    desk = new_context(browser, live_server, **DESK)
    page = desk.new_page()
    staff_sign_in(page, admin)
    assert page.locator("[data-section=erasures]").is_visible()
    assert page.locator("[data-section=break-glass]").is_visible()
    assert_accessible(page)
    for link, heading in (("Berichte", "Bericht"),
                          ("Notfallzugriffe", "Prüfung der Notfallzugriffe"),
                          ("Löschanträge", "Löschanträge"),
                          ("Sicherheitsereignisse", "Sicherheitsereignisse"),
                          ("Team", "Team"), ("Angebote", "Angebote")):
        page.locator(".site-nav").get_by_role("link", name=link, exact=True).click()
        page.wait_for_load_state()
        assert heading in page.locator("h1").inner_text(), link
        if link == "Berichte":
            assert_accessible(page)
    # On a phone the report's table scrolls sideways inside a named box that keyboard users
    # can reach (axe: scrollable-region-focusable); the page itself does not scroll.
    page.set_viewport_size(PHONE["viewport"])
    page.goto("/staff/reports")
    region = page.get_by_role("region", name=page.locator("h1").inner_text())
    assert region.evaluate("box => box.scrollWidth > box.clientWidth")
    assert region.get_attribute("tabindex") == "0"
    assert_fits_phone(page)
    assert_accessible(page)
    desk.close()


def test_on_a_phone_the_start_page_and_the_file_fit_under_a_one_line_header(
        browser, live_server, app, make_client, make_bookable):
    mia, bookable = mia_with_her_caseworker(app, make_client, make_bookable)
    phone = new_context(browser, live_server, **PHONE)
    page = phone.new_page()
    staff_sign_in(page, bookable.staff)
    assert box(page, ".site-header")["height"] <= 60
    assert "Mitarbeitende" in page.locator(".site-header").inner_text()
    assert_fits_phone(page)
    assert_accessible(page)
    # One column: today first, the requests below it.
    assert box(page, "[data-section=requests]")["y"] > box(page, "[data-section=today]")["y"]
    page.locator("[data-section=today]").get_by_role("link", name="Mia Demir").click()
    page.wait_for_url(f"**/staff/clients/{mia}")
    assert box(page, ".site-header")["height"] <= 60
    # The notes first, then the rest of the file, one below the other.
    notes, side = box(page, ".casefile__main"), box(page, ".casefile__side")
    assert side["y"] >= notes["y"] + notes["height"]
    assert_fits_phone(page)
    assert_accessible(page)
    click_in_nav(page, "a[href='/staff/']")
    page.wait_for_url("**/staff/")
    phone.close()
