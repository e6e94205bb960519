"""A caseworker on a phone proposes another time for a request: the queue links to the
choice of free times for that one request, which fits the screen and is accessible."""

from datetime import timedelta

from flask_babel import force_locale
from sqlalchemy import select

from shared.extensions import db
from shared.i18n import format_when
from shared.models import Booking, Client, DataKey
from shared.models.base import utcnow
from tests.browser.conftest import assert_accessible, assert_fits_phone, staff_sign_in


def test_caseworker_proposes_another_time_on_a_phone(phone, app, make_bookable):
    from shared.services.accounts import set_client_name

    bookable = make_bookable()
    begin = (utcnow() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    with app.app_context():
        data_key = DataKey.generate()
        client = Client(data_key=data_key)
        db.session.add_all([data_key, client])
        set_client_name(client=client, full_name="Emil Demir")
        db.session.add(Booking(client_id=client.id, data_key=data_key,
                               service_id=bookable.service_id,
                               staff_member_id=bookable.staff_member_id, start_at=begin,
                               end_at=begin + timedelta(minutes=45), status="requested",
                               expires_at=utcnow() + timedelta(days=1)))
        db.session.commit()
    page = phone
    staff_sign_in(page, bookable.staff)
    page.goto("/staff/bookings")
    assert page.locator("select").count() == 0  # no free times computed for the list
    page.click("a[data-action='choose-time']")
    page.wait_for_url("**/staff/bookings/*/propose")
    page.wait_for_selector("text=Emil Demir")
    assert_fits_phone(page)
    assert_accessible(page)
    chosen = page.locator("select#slot option").nth(1)
    chosen_label = chosen.inner_text()
    page.select_option("select#slot", index=1)
    page.click("button[data-action='propose']")
    page.wait_for_url("**/staff/bookings")
    page.wait_for_selector(".kern-alert--success")
    assert "Emil Demir" not in page.content()  # answered: no longer waiting
    with app.app_context():
        booking = db.session.scalar(select(Booking))
        assert booking.status == "proposed"
        assert booking.original_start_at == begin
        proposed = booking.start_at
    with app.test_request_context("/"), force_locale("de"):
        assert chosen_label == format_when(proposed)  # the time chosen
