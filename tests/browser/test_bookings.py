"""A parent on a phone adds a child and books for the child; a caseworker on a tablet
(1024×768) confirms; the parent sees "confirmed" and downloads the .ics."""

from icalendar import Calendar
from sqlalchemy import select

from shared.extensions import db
from shared.models import Booking
from tests.browser.conftest import (
    assert_accessible,
    assert_fits_phone,
    click_in_nav,
    new_context,
    staff_sign_in,
)


def test_parent_books_for_a_child_and_staff_confirm_on_a_tablet(browser, live_server, phone,
                                                                make_client, make_bookable,
                                                                app):
    bookable = make_bookable()
    parent = make_client(full_name="Ayse Demir")
    page = phone

    page.goto("/login")
    page.fill("input[name=email]", parent.email)
    page.fill("input[name=password]", parent.password)
    page.click("button#submit")
    page.wait_for_url("**/home")

    click_in_nav(page, "a[href='/household']")
    page.click("a[href='/household/new']")
    page.wait_for_url("**/household/new")
    assert_fits_phone(page)
    assert_accessible(page)
    page.fill("input[name=full_name]", "Emil Demir")
    page.fill("input[name=birth_date]", "2019-05-04")
    page.fill("input[name=contact_name]", "Oma Ayse")
    page.fill("input[name=contact_phone]", "0170 1234567")
    page.click("button#submit")
    page.wait_for_url("**/household")
    assert "Emil Demir" in page.content()
    assert_fits_phone(page)

    page.click("a[href*='/bookings/new?for=']")
    page.click("h2 a")  # the service: first tap
    page.wait_for_url("**/bookings/new/*")
    assert_fits_phone(page)
    assert_accessible(page)
    page.locator("a.slot").first.click()  # the slot: second tap
    page.wait_for_url("**/bookings/new/*/*")
    page.wait_for_selector("text=Emil Demir")
    assert page.locator("input[name=client]:checked").count() == 1
    page.fill("textarea[name=note]", "Emil spricht wenig Deutsch")
    assert_fits_phone(page)
    page.click("button#submit")
    page.wait_for_url("**/bookings")
    assert page.locator("[data-status='requested']").count() == 1
    assert "Emil Demir" in page.content()

    tablet = new_context(browser, live_server, viewport={"width": 1024, "height": 768},
                         has_touch=True)
    staff_page = tablet.new_page()
    staff_sign_in(staff_page, bookable.staff)
    staff_page.goto("/staff/bookings")
    assert "Emil spricht wenig Deutsch" in staff_page.content()
    assert_accessible(staff_page)
    staff_page.click("button[data-action='confirm']")
    staff_page.wait_for_selector(".kern-alert--success")
    tablet.close()

    page.goto("/bookings")
    assert page.locator("[data-status='confirmed']").count() == 1
    with page.expect_download() as download_info:
        page.click("a[href$='appointment.ics']")
    ics = Calendar.from_ical(open(download_info.value.path(), "rb").read())
    event = next(iter(ics.walk("VEVENT")))
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        assert booking.status == "confirmed"
        assert event.get("dtstart").dt == booking.start_at
    assert page.foreign_requests == []
