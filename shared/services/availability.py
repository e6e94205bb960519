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
    SlotHold,
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
    """Active bookings and live slot holds of a staff member overlapping [start, end),
    widened by the buffer."""
    return _busy_by_member([staff_member_id], start, end, ignore=ignore).get(
        staff_member_id, [])


def _busy_by_member(staff_ids: list[uuid.UUID], start: datetime, end: datetime, *,
                    ignore: uuid.UUID | None = None, except_hold: bytes | None = None,
                    now: datetime | None = None
                    ) -> dict[uuid.UUID, list[tuple[datetime, datetime]]]:
    """Busy periods of several staff members in two queries: bookings that hold their slot
    (``ignore``: one booking that does not count) and live holds of visitors
    (``except_hold``: the token hash of the asker's own hold, which does not count)."""
    buffer = _buffer()
    now = now or utcnow()
    busy: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {}
    rows = db.session.execute(
        select(Booking.id, Booking.staff_member_id, Booking.start_at, Booking.end_at,
               Booking.status, Booking.expires_at)
        .where(Booking.staff_member_id.in_(staff_ids))
        .where(Booking.status.in_(ACTIVE))
        .where(Booking.start_at < end + buffer)
        .where(Booking.end_at > start - buffer)
    ).all()
    for row in rows:
        if row.id == ignore or (row.status in ("requested", "proposed")
                                and row.expires_at and row.expires_at <= now):
            continue
        busy.setdefault(row.staff_member_id, []).append(
            (row.start_at - buffer, row.end_at + buffer))
    holds = (
        select(SlotHold.staff_member_id, SlotHold.start_at, SlotHold.end_at)
        .where(SlotHold.staff_member_id.in_(staff_ids))
        .where(SlotHold.expires_at > now)
        .where(SlotHold.start_at < end + buffer)
        .where(SlotHold.end_at > start - buffer)
    )
    if except_hold is not None:
        holds = holds.where(SlotHold.token_hash != except_hold)
    for row in db.session.execute(holds).all():
        busy.setdefault(row.staff_member_id, []).append(
            (row.start_at - buffer, row.end_at + buffer))
    return busy


def free_slots(*, service: Service, staff_member: StaffMember, day: date,
               now: datetime | None = None, ignore: uuid.UUID | None = None,
               except_hold: bytes | None = None) -> list[Slot]:
    """Bookable slots of one staff member for one service on one local day."""
    return free_slots_between(service=service, first=day, last=day, members=[staff_member],
                              now=now, ignore=ignore, except_hold=except_hold)


def free_slots_between(*, service: Service, first: date, last: date,
                       members: list[StaffMember] | None = None, now: datetime | None = None,
                       ignore: uuid.UUID | None = None, except_hold: bytes | None = None
                       ) -> list[Slot]:
    """Bookable slots of a service from local day ``first`` to ``last`` (inclusive), of
    ``members`` (default: everyone offering it), in start order. A fixed number of
    queries however many days and staff members: hours, absences, bookings, holds."""
    members = offering_staff(service) if members is None else members
    if not members or last < first:
        return []
    zone = local_zone()
    now = now or utcnow()
    duration = timedelta(minutes=service.duration_minutes)
    step = duration + _buffer()
    staff_ids = [m.id for m in members]
    rules: dict[tuple[uuid.UUID, int], list[AvailabilityRule]] = {}
    for rule in db.session.scalars(
        select(AvailabilityRule).where(AvailabilityRule.staff_member_id.in_(staff_ids))
        .order_by(AvailabilityRule.start_time)
    ):
        rules.setdefault((rule.staff_member_id, rule.weekday), []).append(rule)
    exceptions: dict[tuple[uuid.UUID, date], list[AvailabilityException]] = {}
    for absence in db.session.scalars(
        select(AvailabilityException)
        .where(AvailabilityException.staff_member_id.in_(staff_ids))
        .where(AvailabilityException.day >= first)
        .where(AvailabilityException.day <= last)
    ):
        exceptions.setdefault((absence.staff_member_id, absence.day), []).append(absence)
    # Local midnight to local midnight (23 or 25 hours on daylight-saving days).
    range_start = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    range_end = datetime.combine(last + timedelta(days=1), datetime.min.time(),
                                 zone).astimezone(UTC)
    busy_of = _busy_by_member(staff_ids, range_start, range_end, ignore=ignore,
                              except_hold=except_hold, now=now)
    slots = []
    day = first
    while day <= last:
        for member in members:
            day_rules = rules.get((member.id, day.weekday()), [])
            absent = exceptions.get((member.id, day), [])
            if not day_rules or any(e.start_time is None for e in absent):
                continue
            busy = busy_of.get(member.id, []) + [
                (datetime.combine(day, e.start_time, zone).astimezone(UTC),
                 datetime.combine(day, e.end_time, zone).astimezone(UTC))
                for e in absent
            ]
            for rule in day_rules:
                # Wall-clock hours become UTC instants; the stepping is done in UTC, so a
                # slot lasts its real duration also on the night the clocks change.
                start_utc = datetime.combine(day, rule.start_time, zone).astimezone(UTC)
                window_end = datetime.combine(day, rule.end_time, zone).astimezone(UTC)
                while start_utc + duration <= window_end:
                    end_utc = start_utc + duration
                    free = start_utc >= now + MIN_LEAD and not any(
                        b_start < end_utc and start_utc < b_end for b_start, b_end in busy
                    )
                    if free:
                        slots.append(Slot(member.id, start_utc, end_utc))
                    start_utc += step
        day += timedelta(days=1)
    return sorted(slots, key=lambda s: (s.start, str(s.staff_member_id)))


def is_free(*, service: Service, slot_token: str, except_hold: bytes | None = None) -> bool:
    """Whether the slot of ``slot_token`` can be requested now (by the holder of
    ``except_hold``, whose own hold does not count)."""
    try:
        staff_id, start = parse_slot_token(slot_token)
    except BadSlotToken:
        return False
    member = next((m for m in offering_staff(service) if m.id == staff_id), None)
    if member is None:
        return False
    day = start.astimezone(local_zone()).date()
    return any(slot.start == start for slot in free_slots(
        service=service, staff_member=member, day=day, except_hold=except_hold))


# -- one week of the slot picker ---------------------------------------------------------
class WeekOutOfRange(ValueError):
    """Not a date, or a week that cannot be booked."""


@dataclass(frozen=True)
class Week:
    """What the slot picker shows: one week (Monday ``first``) of free slots by day, the
    next free slot overall, and where the week links lead."""

    first: date
    days: list[tuple[date, list[Slot]]]  # the bookable days of the week, empty ones too
    next_free: Slot | None
    previous: date | None  # Monday of the previous week, if it can still be booked
    following: date | None  # Monday of the next week, if inside the booking horizon
    next_with_free: date | None  # Monday of the next later week with free times

    @property
    def last(self) -> date:
        return self.first + timedelta(days=6)

    @property
    def has_free(self) -> bool:
        return any(slots for _day, slots in self.days)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_of_slots(*, service: Service, week: date | None, days_ahead: int,
                  today: date | None = None, except_hold: bytes | None = None) -> Week:
    """The week containing ``week`` (this week when None), moved into the weeks that can be
    booked: from this week to the one of the last day of the horizon (``days_ahead``
    days from today)."""
    today = today or datetime.now(local_zone()).date()
    last_day = today + timedelta(days=max(days_ahead, 1) - 1)
    first = min(max(_monday(week or today), _monday(today)), _monday(last_day))
    # The whole horizon in one go: the next free slot and the next week with free times
    # come from the same few queries as the week itself.
    slots = free_slots_between(service=service, first=today, last=last_day,
                               except_hold=except_hold)
    zone = local_zone()
    by_day: dict[date, list[Slot]] = {}
    for slot in slots:
        by_day.setdefault(slot.start.astimezone(zone).date(), []).append(slot)
    days = [(day, by_day.get(day, []))
            for day in (first + timedelta(days=i) for i in range(7))
            if today <= day <= last_day]
    following = first + timedelta(days=7)
    later = next((day for day in sorted(by_day) if day >= following), None)
    return Week(
        first=first, days=days, next_free=slots[0] if slots else None,
        previous=first - timedelta(days=7) if first > _monday(today) else None,
        following=following if following <= last_day else None,
        next_with_free=_monday(later) if later else None,
    )


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
