"""Free slots, computed from weekly hours minus exceptions minus active bookings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from shared import policy
from shared.extensions import db
from shared.models.base import utcnow
from shared.models.bookings import (
    ACTIVE,
    AvailabilityException,
    AvailabilityRule,
    Booking,
    Service,
)
from shared.models.staff import StaffMember
from shared.services.staff import active_members

# Appointments can be requested from this long ahead on (nobody confirms a booking for
# the next ten minutes).
MIN_LEAD = timedelta(hours=1)


@dataclass(frozen=True)
class Slot:
    staff_member_id: uuid.UUID
    start: datetime  # aware, UTC
    end: datetime

    @property
    def token(self) -> str:
        """How a slot travels through a form; it is checked again on submit."""
        return f"{self.staff_member_id}_{int(self.start.timestamp())}"


class BadSlotToken(ValueError):
    pass


def parse_slot_token(token: str) -> tuple[uuid.UUID, datetime]:
    try:
        staff_part, _, stamp = token.partition("_")
        return uuid.UUID(staff_part), datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadSlotToken(token) from exc


def local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.extensions["einblick"].config.timezone)


def _buffer() -> timedelta:
    return timedelta(minutes=current_app.extensions["einblick"].config.booking_buffer_minutes)


def offering_staff(service: Service) -> list[StaffMember]:
    return [m for m in service.staff if m.active]


def busy_periods(staff_member_id: uuid.UUID, start: datetime, end: datetime,
                 *, ignore: uuid.UUID | None = None) -> list[tuple[datetime, datetime]]:
    """Active bookings of a staff member overlapping [start, end), widened by the buffer."""
    buffer = _buffer()
    rows = db.session.execute(
        select(Booking.id, Booking.start_at, Booking.end_at, Booking.status, Booking.expires_at)
        .where(Booking.staff_member_id == staff_member_id)
        .where(Booking.status.in_(ACTIVE))
        .where(Booking.start_at < end + buffer)
        .where(Booking.end_at > start - buffer)
    ).all()
    now = utcnow()
    return [
        (row.start_at - buffer, row.end_at + buffer)
        for row in rows
        if row.id != ignore and not (row.status in ("requested", "proposed")
                                     and row.expires_at and row.expires_at <= now)
    ]


def free_slots(*, service: Service, staff_member: StaffMember, day: date,
               now: datetime | None = None, ignore: uuid.UUID | None = None) -> list[Slot]:
    """Bookable slots of one staff member for one service on one local day."""
    zone = local_zone()
    now = now or utcnow()
    duration = timedelta(minutes=service.duration_minutes)
    step = duration + _buffer()
    rules = db.session.scalars(
        select(AvailabilityRule)
        .where(AvailabilityRule.staff_member_id == staff_member.id)
        .where(AvailabilityRule.weekday == day.weekday())
    ).all()
    exceptions = db.session.scalars(
        select(AvailabilityException)
        .where(AvailabilityException.staff_member_id == staff_member.id)
        .where(AvailabilityException.day == day)
    ).all()
    if any(e.start_time is None for e in exceptions):
        return []
    blocked = [
        (datetime.combine(day, e.start_time, zone), datetime.combine(day, e.end_time, zone))
        for e in exceptions
    ]
    # Local midnight to local midnight (23 or 25 hours on daylight-saving days).
    day_start = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
    day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(),
                               zone).astimezone(UTC)
    busy = busy_periods(staff_member.id, day_start, day_end, ignore=ignore)
    busy += [(b_start.astimezone(UTC), b_end.astimezone(UTC)) for b_start, b_end in blocked]
    slots = []
    for rule in sorted(rules, key=lambda r: r.start_time):
        # Wall-clock hours become UTC instants; the stepping is done in UTC, so a slot
        # lasts its real duration also on the night the clocks change.
        start_utc = datetime.combine(day, rule.start_time, zone).astimezone(UTC)
        window_end = datetime.combine(day, rule.end_time, zone).astimezone(UTC)
        while start_utc + duration <= window_end:
            end_utc = start_utc + duration
            free = start_utc >= now + MIN_LEAD and not any(
                b_start < end_utc and start_utc < b_end for b_start, b_end in busy
            )
            if free:
                slots.append(Slot(staff_member.id, start_utc, end_utc))
            start_utc += step
    return slots


def upcoming_slots(*, service: Service, days: int, today: date | None = None
                   ) -> list[tuple[date, list[Slot]]]:
    """Free slots of every staff member offering the service, grouped by local day."""
    today = today or datetime.now(local_zone()).date()
    result = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        slots = [
            slot
            for member in offering_staff(service)
            for slot in free_slots(service=service, staff_member=member, day=day)
        ]
        if slots:
            result.append((day, sorted(slots, key=lambda s: (s.start, str(s.staff_member_id)))))
    return result


# -- editing hours (staff) ---------------------------------------------------------------
class BadHours(ValueError):
    """The end is not after the start (or only one of the two times was given)."""


class NotYourHours(Exception):
    """Someone else's hours: staff edit only their own, admins anyone's."""


class UnknownStaffMember(Exception):
    """No staff member with this id."""


class HoursNotFound(Exception):
    """No such weekly hours or absence (any more)."""


def may_edit_anyones_hours(member: StaffMember) -> bool:
    return policy.may(member.role, policy.EDIT_ANY_HOURS)


def _require_may_edit(member: StaffMember, staff_member_id: uuid.UUID) -> None:
    if staff_member_id != member.id and not may_edit_anyones_hours(member):
        raise NotYourHours


def hours_owner(*, member: StaffMember, staff_member_id: uuid.UUID | None) -> StaffMember:
    """Whose hours the page shows: one's own, or for an admin the staff member asked for
    (another member's id asked for by anyone else is ignored)."""
    if staff_member_id is None or not may_edit_anyones_hours(member):
        return member
    other = db.session.get(StaffMember, staff_member_id)
    if other is None:
        raise UnknownStaffMember
    return other


def hours_choices(member: StaffMember) -> list[StaffMember]:
    """Whose hours the member may switch to: every active staff member for an admin,
    nobody (only their own) for anyone else."""
    if not may_edit_anyones_hours(member):
        return []
    return active_members()


def weekly_hours(staff_member_id: uuid.UUID) -> list[AvailabilityRule]:
    return list(db.session.scalars(
        select(AvailabilityRule).where(AvailabilityRule.staff_member_id == staff_member_id)
        .order_by(AvailabilityRule.weekday, AvailabilityRule.start_time)))


def absences(staff_member_id: uuid.UUID) -> list[AvailabilityException]:
    return list(db.session.scalars(
        select(AvailabilityException)
        .where(AvailabilityException.staff_member_id == staff_member_id)
        .order_by(AvailabilityException.day)))


def add_rule(*, member: StaffMember, staff_member_id: uuid.UUID, weekday: int, start,
             end) -> AvailabilityRule:
    """Weekly hours of ``staff_member_id``, added by ``member`` (themselves or an admin)."""
    _require_may_edit(member, staff_member_id)
    if start >= end:
        raise BadHours
    rule = AvailabilityRule(staff_member_id=staff_member_id, weekday=weekday,
                            start_time=start, end_time=end)
    db.session.add(rule)
    db.session.commit()
    return rule


def add_exception(*, member: StaffMember, staff_member_id: uuid.UUID, day: date, start=None,
                  end=None) -> AvailabilityException:
    """An absence of ``staff_member_id``: the whole day (no times) or from start to end."""
    _require_may_edit(member, staff_member_id)
    if (start is None) != (end is None) or (start and end and start >= end):
        raise BadHours
    absence = AvailabilityException(staff_member_id=staff_member_id, day=day,
                                    start_time=start, end_time=end)
    db.session.add(absence)
    db.session.commit()
    return absence


def remove_hours(*, member: StaffMember, kind: str, item_id: uuid.UUID) -> uuid.UUID:
    """Remove weekly hours (``kind`` "rule") or an absence ("exception"); returns whose
    they were."""
    model = {"rule": AvailabilityRule, "exception": AvailabilityException}.get(kind)
    item = db.session.get(model, item_id) if model is not None else None
    if item is None:
        raise HoursNotFound
    owner_id = item.staff_member_id
    _require_may_edit(member, owner_id)
    db.session.delete(item)
    db.session.commit()
    return owner_id
