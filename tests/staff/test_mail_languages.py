"""What staff send reaches each client in the client's own language, whatever language
the staff member works in: the email, its subject and the attached calendar entry."""

import pytest
from flask_babel import force_locale
from flask_babel import gettext as _
from icalendar import Calendar
from sqlalchemy import select

from shared.extensions import db
from shared.i18n import format_appointment
from shared.models import Account, Booking
from tests.conftest import submit, tomorrow_slot_token
from tests.portal.test_bookings import book


@pytest.mark.parametrize("locale", ["tr", "ar", "uk"])
def test_a_confirmation_is_written_in_the_clients_language(app, client, auth, make_client,
                                                           make_bookable, outbox, locale):
    bookable = make_bookable()
    person = make_client(full_name="Mia Demir")
    auth.login(person)
    submit(client, f"/language/{locale}", {}, form_url="/account")
    book(client, bookable, tomorrow_slot_token(app, bookable))
    auth.logout()
    submit(client, "/language/de", {}, form_url="/")  # the staff member works in German
    with app.app_context():
        assert db.session.scalar(select(Account.locale).where(
            Account.id == person.account_id)) == locale
        booking_id = db.session.scalar(select(Booking.id))
        with force_locale(locale):
            subject = _("Your appointment is confirmed")
    auth.login(bookable.staff, area="staff")
    submit(client, f"/staff/bookings/{booking_id}/confirm", {}, form_url="/staff/bookings")

    mail = outbox.last_to(person.email)
    assert subject != "Your appointment is confirmed"
    assert mail["Subject"] == subject
    assert mail["Content-Language"] == locale
    body = mail.get_body(preferencelist=("plain",)).get_content()
    with app.app_context():
        start = db.session.get(Booking, booking_id).start_at
    with app.test_request_context(), force_locale(locale):
        when = format_appointment(start)  # weekday and month in her language
    with app.test_request_context(), force_locale("de"):
        german = format_appointment(start)
    assert when != german
    assert when in body
    assert german not in body
    ics = [part for part in mail.walk() if part.get_content_type() == "text/calendar"]
    assert len(ics) == 1
    assert ics[0].get_content_charset() == "utf-8"
    event = Calendar.from_ical(ics[0].get_content()).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == "Elternberatung"  # written in German only
