"""A parent on a phone (360×740, German) cancels one appointment after one confirmation
page and moves another to a new time; the caseworker confirms the new time, which cancels
the old one; the parent sees the new appointment only."""

from datetime import datetime, timedelta

from sqlalchemy import select

from shared.extensions import db
from shared.models import Booking, Client, Service, StaffMember
from shared.services import availability
from tests.browser.conftest import (
    assert_accessible,
    assert_fits_phone,
    click_in_nav,
    client_sign_in,
    new_context,
    staff_sign_in,
)
from tests.conftest import add_booking


def confirmed_in(app, person, bookable, *, days: int):
    """A confirmed appointment ``days`` ahead (the first free time that day)."""
    with app.app_context():
        service = db.session.get(Service, bookable.service_id)
        member = db.session.get(StaffMember, bookable.staff_member_id)
        day = datetime.now(availability.local_zone()).date() + timedelta(days=days)
        slot = availability.free_slots(service=service, staff_member=member, day=day)[0]
        own = db.session.scalar(select(Client).where(Client.account_id == person.account_id))
        booking = add_booking(own, bookable, end=slot.end,
                              minutes=service.duration_minutes)
        db.session.commit()
        return booking.id


def statuses(app) -> dict:
    with app.app_context():
        return {b.id: (b.status, b.replaces_booking_id)
                for b in db.session.scalars(select(Booking))}


def test_cancel_with_confirmation_and_move_until_staff_confirm(browser, live_server, phone,
                                                              make_client, make_bookable,
                                                              app):
    bookable = make_bookable()
    parent = make_client(full_name="Ayse Demir")
    to_move = confirmed_in(app, parent, bookable, days=3)
    to_cancel = confirmed_in(app, parent, bookable, days=4)
    page = phone

    client_sign_in(page, parent)
    click_in_nav(page, "a[href='/bookings']")
    page.wait_for_url("**/bookings")
    assert_fits_phone(page)
    assert_accessible(page)

    # Cancel: one page that says what goes, then one tap.
    page.click(f"[data-booking='{to_cancel}'] a[data-action='cancel']")
    page.wait_for_url(f"**/bookings/{to_cancel}/cancel")
    page.wait_for_selector("h1:has-text('Termin absagen?')")
    assert "Elternberatung" in page.content()
    assert "bis 24 Stunden vorher online absagen" in page.content()
    assert page.locator("a[href^='tel:']").count() >= 1
    assert_fits_phone(page)
    assert_accessible(page)
    assert statuses(app)[to_cancel][0] == "confirmed"
    page.click("button#cancel-booking")
    page.wait_for_url("**/bookings")
    page.wait_for_selector(".kern-alert--success:has-text('Der Termin ist abgesagt.')")
    assert statuses(app)[to_cancel][0] == "cancelled"

    # Move: choose another time; the old appointment stays until staff confirm.
    page.click(f"[data-booking='{to_move}'] a[data-action='move']")
    page.wait_for_url(f"**/bookings/{to_move}/move")
    page.wait_for_selector("h1:has-text('Andere Zeit wählen')")
    assert_fits_phone(page)
    assert_accessible(page)
    # The first time offered: late in the day, today may have only one left.
    page.locator("a.slot").first.click()
    page.wait_for_url(f"**/bookings/{to_move}/move/*")
    page.wait_for_selector("h1:has-text('Termin verschieben')")
    assert "Ihr bisheriger Termin bleibt bestehen" in page.content()
    assert_fits_phone(page)
    assert_accessible(page)
    page.click("button#request-move")
    page.wait_for_url("**/bookings")
    page.wait_for_selector("[data-moves-from]")
    assert page.locator("[data-moving-to]").count() == 1
    rows = statuses(app)
    new_id = next(i for i, (_status, replaces) in rows.items() if replaces == to_move)
    assert rows[new_id][0] == "requested"
    assert rows[to_move][0] == "confirmed"
    assert_fits_phone(page)

    desk = new_context(browser, live_server, viewport={"width": 1280, "height": 900})
    staff_page = desk.new_page()
    staff_sign_in(staff_page, bookable.staff)
    staff_page.goto("/staff/bookings")
    staff_page.wait_for_selector(f"[data-booking='{new_id}'] [data-moves-from]")
    assert "Möchte verschieben vom" in staff_page.content()
    staff_page.click(f"[data-booking='{new_id}'] button[data-action='confirm']")
    staff_page.wait_for_selector(".kern-alert--success")
    desk.close()

    rows = statuses(app)
    assert rows[new_id][0] == "confirmed"
    assert rows[to_move][0] == "cancelled"
    assert rows[to_cancel][0] == "cancelled"
    page.goto("/bookings")
    upcoming = page.locator(".card-list [data-booking]")
    assert upcoming.count() == 1
    assert upcoming.first.get_attribute("data-booking") == str(new_id)
    assert page.locator(f"[data-booking='{new_id}'] [data-status='confirmed']").count() == 1
    assert page.locator("[data-moves-from], [data-moving-to]").count() == 0
    assert_fits_phone(page)
    assert_accessible(page)
