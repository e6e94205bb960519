"""Slots are computed in real time: on the nights the clocks change, a 45-minute slot
still lasts 45 minutes and no two slots overlap. A slot that overlaps a booking of the same
staff member for another service, only in part or around it, is neither offered nor
accepted."""

import re
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from shared.extensions import db
from shared.models import AvailabilityRule, Booking, Service, StaffMember
from shared.services import availability
from tests.conftest import submit


@pytest.mark.parametrize("day", [date(2027, 3, 28), date(2027, 10, 31)])
def test_night_hours_across_a_clock_change(app, make_bookable, day):
    bookable = make_bookable(minutes=45)
    with app.app_context():
        db.session.execute(AvailabilityRule.__table__.delete())
        member = db.session.get(StaffMember, bookable.staff_member_id)
        db.session.add(AvailabilityRule(staff_member_id=member.id, weekday=day.weekday(),
                                        start_time=time(0, 30), end_time=time(4, 0)))
        db.session.commit()
        service = db.session.get(Service, bookable.service_id)
        slots = availability.free_slots(service=service, staff_member=member, day=day,
                                        now=datetime(2027, 1, 1).astimezone())
        assert slots
        for slot in slots:
            assert slot.end - slot.start == timedelta(minutes=45)
        for first, second in zip(slots, slots[1:], strict=False):
            assert second.start >= first.end
        assert db.session.scalar(select(AvailabilityRule.id)) is not None


def _tomorrow_token(app, member_id, hour: int, minute: int) -> str:
    with app.app_context():
        zone = availability.local_zone()
        day = datetime.now(zone).date() + timedelta(days=1)
        start = datetime.combine(day, time(hour, minute), zone)
        return availability.Slot(member_id, start, start).token


def _offered(client, service_id, token: str) -> bool:
    page = client.get(f"/bookings/new/{service_id}").get_data(as_text=True)
    return f"/bookings/new/{service_id}/{token}" in page


def _request(client, service_id, token: str):
    url = f"/bookings/new/{service_id}/{token}"
    page = client.get(url).get_data(as_text=True)
    own = re.search(r'name="client"[^>]*value="([^"]+)"', page).group(1)
    return submit(client, url, {"client": own, "note": ""})


def _two_services_of_one_member(app, make_bookable):
    """One caseworker (08:00–20:00 every day) offers a 60-minute and a 45-minute service."""
    hour = make_bookable(minutes=60)
    with app.app_context():
        member = db.session.get(StaffMember, hour.staff_member_id)
        short = Service(name="Kurzberatung", description="", duration_minutes=45,
                        location="Raum 2", online=False)
        short.staff = [member]
        db.session.add(short)
        db.session.commit()
        return {60: hour.service_id, 45: short.id}, hour.staff_member_id


@pytest.mark.parametrize(("booked", "wanted"), [
    # The hour 09:10–10:10 is held (busy 09:00–10:20 with the 10-minute buffer); the
    # 45-minute slot 08:55–09:40 starts before it and ends inside it.
    ((60, 9, 10), (45, 8, 55)),
    # 08:55–09:40 is held (busy 08:45–09:50); the hour 08:00–09:00 ends inside it.
    ((45, 8, 55), (60, 8, 0)),
])
def test_a_slot_ending_inside_another_services_booking_is_neither_offered_nor_taken(
        app, client, auth, make_client, make_bookable, booked, wanted):
    services, member_id = _two_services_of_one_member(app, make_bookable)
    booked_token = _tomorrow_token(app, member_id, *booked[1:])
    wanted_token = _tomorrow_token(app, member_id, *wanted[1:])
    auth.login(make_client())
    assert _offered(client, services[wanted[0]], wanted_token)
    assert _request(client, services[booked[0]], booked_token).status_code == 302
    auth.logout()

    auth.login(make_client())
    assert not _offered(client, services[wanted[0]], wanted_token)
    refused = _request(client, services[wanted[0]], wanted_token)
    assert refused.status_code == 400
    assert "kann nicht (mehr) gebucht werden" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Booking.id))) == 1


@pytest.mark.parametrize("config_overrides", [{"booking_buffer_minutes": 0}])
def test_a_slot_around_another_services_booking_is_neither_offered_nor_taken(
        app, client, auth, make_client, make_bookable):
    """Without a buffer the 45-minute booking 10:15–11:00 lies inside the hour 10:00–11:00;
    the hour after it, which only touches it, stays free."""
    services, member_id = _two_services_of_one_member(app, make_bookable)
    around = _tomorrow_token(app, member_id, 10, 0)
    after = _tomorrow_token(app, member_id, 11, 0)
    auth.login(make_client())
    assert _offered(client, services[60], around)
    assert _request(client, services[45], _tomorrow_token(app, member_id, 10, 15)
                    ).status_code == 302
    auth.logout()

    auth.login(make_client())
    assert not _offered(client, services[60], around)
    assert _offered(client, services[60], after)
    refused = _request(client, services[60], around)
    assert refused.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count(Booking.id))) == 1
