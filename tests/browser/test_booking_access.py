"""A caseworker on a phone (360×740, German) confirms Mia's request and opens her file from
the day's list without break-glass; Mia reads that the caseworker opened the file, not
that it was an emergency."""

from datetime import datetime, time, timedelta

from sqlalchemy import select

from shared.extensions import db
from shared.models import Booking, BreakGlassGrant, Client
from shared.services import availability
from tests.browser.conftest import (
    PHONE,
    assert_accessible,
    assert_fits_phone,
    click_in_nav,
    client_sign_in,
    new_context,
    staff_sign_in,
)
from tests.conftest import add_booking


def test_caseworker_confirms_then_opens_the_file_on_a_phone(browser, live_server, app,
                                                            make_client, make_bookable):
    bookable = make_bookable()
    person = make_client(full_name="Mia Demir")
    with app.app_context():
        mia = db.session.scalar(select(Client))
        tomorrow = datetime.now(availability.local_zone()).date() + timedelta(days=1)
        end = datetime.combine(tomorrow, time(10, 45), availability.local_zone())
        booking = add_booking(mia, bookable, end=end, status="requested", minutes=45)
        db.session.commit()
        booking_id, client_id = booking.id, mia.id

    staff = new_context(browser, live_server, **PHONE)
    page = staff.new_page()
    staff_sign_in(page, bookable.staff)
    click_in_nav(page, "a[href='/staff/bookings']")
    page.wait_for_url("**/staff/bookings")
    page.click(f"[data-booking='{booking_id}'] button[data-action='confirm']")
    page.wait_for_selector(".kern-alert--success")
    assert "Die Akte können Sie bis zum" in page.inner_text(".kern-alert--success")
    assert_fits_phone(page)
    assert_accessible(page)

    # Tomorrow's appointments: Mia's name opens her file, no reason asked.
    page.click("main a[href='/staff/bookings/day']")
    page.wait_for_url("**/staff/bookings/day")
    page.click("main a:has-text('Nächster Tag')")
    page.wait_for_url("**/staff/bookings/day?day=*")
    assert_fits_phone(page)
    assert_accessible(page)
    page.click("main a[data-client-file]:has-text('Mia Demir')")
    page.wait_for_url(f"**/staff/clients/{client_id}")
    assert "Mia Demir" in page.inner_text("main")
    assert_fits_phone(page)
    assert_accessible(page)
    staff.close()
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "confirmed"
        assert db.session.scalar(select(BreakGlassGrant.id)) is None

    phone = new_context(browser, live_server, **PHONE)
    mobile = phone.new_page()
    client_sign_in(mobile, person)
    mobile.goto("/my-data/access")
    text = mobile.inner_text("main")
    assert "hat die Akte geöffnet" in text
    assert "Notfall" not in text
    assert_fits_phone(mobile)
    phone.close()
