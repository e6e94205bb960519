"""Slots are computed in real time: on the nights the clocks change, a 45-minute slot
still lasts 45 minutes and no two slots overlap."""

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import AvailabilityRule, Service, StaffMember
from shared.services import availability


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
