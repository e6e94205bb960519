"""Bookings: clients request slots, staff confirm, decline or propose another time.

No double booking: the request locks the staff member's row (a no-op UPDATE, which is a
row lock on PostgreSQL and the write lock on SQLite), re-computes the free slots inside
that transaction, and inserts; a partial unique index over (staff member, start) of
active bookings is the last guard.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from icalendar import Calendar, Event
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import joinedload

from shared import audit, content_i18n, mail, paging, policy
from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES
from shared.crypto import hash_secret_token
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.base import utcnow
from shared.models.bookings import (
    ACTIVE,
    CANCELLED,
    CONFIRMED,
    DECLINED,
    EXPIRED,
    PROPOSED,
    REQUESTED,
    Booking,
    CalendarFeed,
    Service,
)
from shared.models.clients import Client
from shared.models.household import ACCESS_BOOKINGS
from shared.models.staff import StaffMember
from shared.services import availability, household, reports
from shared.services.staff import active_members


class BookingError(Exception):
    pass


class SlotTaken(BookingError):
    """Somebody else just took this slot."""


class SlotUnavailable(BookingError):
    """The slot is not one we offer (past, outside hours, tampered, wrong service)."""


class NotAllowed(BookingError):
    pass


class TooLateToCancel(BookingError):
    pass


class WrongState(BookingError):
    """The booking is not in a state that allows this (e.g. already decided)."""


class AlreadyMoving(BookingError):
    """A request to move this appointment is already waiting for an answer."""


class TooManyOpenRequests(BookingError):
    """The person already has ``limit`` requests waiting for an answer."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class TooManyOpenRequestsOfAccount(BookingError):
    """The account already has ``limit`` requests waiting, counted across everyone it
    books for (itself and its children)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def _config():
    return current_app.extensions["einblick"].config


def booking_days_ahead() -> int:
    """How many days ahead clients may book (EINBLICK_BOOKING_DAYS_AHEAD)."""
    return _config().booking_days_ahead


# -- client side --------------------------------------------------------------------------
def active_services() -> list[Service]:
    return list(db.session.scalars(
        select(Service).where(Service.active.is_(True)).order_by(Service.name)
    ))


def save_service(*, service: Service | None, name: str, description: str,
                 duration_minutes: int, location: str, online: bool, active: bool,
                 staff_ids: set[uuid.UUID], video_url: str | None = None,
                 translations: dict[str, dict[str, str]] | None = None) -> Service:
    """Create or update a service and who offers it (admins). A video link is kept for
    online services only. ``name``, ``description`` and ``location`` are German;
    ``translations`` the other languages ({locale: {name, description, location}}, empty
    fields left out: shown in German, shared.content_i18n)."""
    service = service or Service()
    service.name, service.description = name, description or ""
    service.duration_minutes, service.location = duration_minutes, location or ""
    kept = {}
    for locale, values in (translations or {}).items():
        filled = {field: value.strip() for field, value in values.items()
                  if field in content_i18n.SERVICE_FIELDS and (value or "").strip()}
        if filled and locale != content_i18n.DEFAULT_LOCALE:
            kept[locale] = filled
    service.translations = kept
    service.online, service.active = online, active
    service.video_url = (video_url or "").strip() or None if online else None
    service.staff = list(db.session.scalars(
        select(StaffMember).where(StaffMember.id.in_(staff_ids)))) if staff_ids else []
    db.session.add(service)
    db.session.commit()
    return service


def proposal_slots(booking: Booking, *, days: int = 14, limit: int = 12) -> list:
    """Free times of the same staff member to propose instead of a request."""
    zone = availability.local_zone()
    first = booking.start_at.astimezone(zone).date()
    slots = []
    for offset in range(days):
        slots += availability.free_slots(service=booking.service,
                                         staff_member=booking.staff_member,
                                         day=first + timedelta(days=offset), ignore=booking.id)
        if len(slots) >= limit:
            break
    return slots[:limit]


def get_service(service_id: uuid.UUID) -> Service | None:
    service = db.session.get(Service, service_id)
    return service if service is not None and service.active else None


def request_booking(*, account: Account, client_id: uuid.UUID, service_id: uuid.UUID,
                    slot_token: str, note: str | None,
                    replaces_booking_id: uuid.UUID | None = None,
                    confidential_from_guardians: bool = False) -> Booking:
    """Request a slot for the account's client or a dependant; the slot is held at once.
    Each person (a child too, counted apart from the parent) may have at most
    ``max_open_requests`` requests waiting at a time, and the account at most
    ``max_open_requests_per_account`` across everyone it books for."""
    try:
        client = household.client_for(account, client_id, need=ACCESS_BOOKINGS)
    except household.NotAllowed as exc:
        raise NotAllowed from exc
    service = get_service(service_id)
    if service is None:
        raise SlotUnavailable
    try:
        staff_id, start = availability.parse_slot_token(slot_token)
    except availability.BadSlotToken as exc:
        raise SlotUnavailable from exc
    member = db.session.get(StaffMember, staff_id)
    if member is None or member not in availability.offering_staff(service):
        raise SlotUnavailable
    client_id_value, data_key, account_id = client.id, client.data_key, account.id
    db.session.commit()  # end any read transaction: the lock below must come first
    try:
        _lock_staff(staff_id)
        # Two requests for one person, or of one account for two of its children, with
        # different staff members take different staff locks: the account's row, then the
        # person's, serialise the counts (PostgreSQL; SQLite already runs this transaction
        # alone since it began with a write). Always in this order: staff, account, person.
        db.session.execute(select(Account.id).where(Account.id == account_id)
                           .with_for_update())
        db.session.execute(select(Client.id).where(Client.id == client_id_value)
                           .with_for_update())
        limit = _config().max_open_requests
        if open_requests(client_id_value) >= limit:
            db.session.rollback()
            raise TooManyOpenRequests(limit)
        account_limit = _config().max_open_requests_per_account
        if open_requests_of_account(account_id) >= account_limit:
            db.session.rollback()
            raise TooManyOpenRequestsOfAccount(account_limit)
        day = start.astimezone(availability.local_zone()).date()
        free = availability.free_slots(service=service, staff_member=member, day=day)
        slot = next((s for s in free if s.start == start), None)
        if slot is None:
            taken = _expire_and_check_taken(staff_id, start)
            db.session.rollback()
            raise SlotTaken if taken else SlotUnavailable
        _expire_stale(staff_id)
        if replaces_booking_id is not None:
            _expire_stale_moves(replaces_booking_id)
        booking = Booking(
            client_id=client_id_value,
            data_key=data_key,
            booked_by_account_id=account_id,
            service_id=service.id,
            staff_member_id=staff_id,
            start_at=slot.start,
            end_at=slot.end,
            status=REQUESTED,
            expires_at=_hold_until(slot.start),
            replaces_booking_id=replaces_booking_id,
            confidential_from_guardians=confidential_from_guardians,
        )
        booking.note = (note or "").strip()[:500] or None
        db.session.add(booking)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        # One open request to move an appointment at a time (uq_bookings_open_move): a
        # parallel request for the same appointment got in first.
        if replaces_booking_id is not None and db.session.scalar(
                select(Booking.id).where(Booking.replaces_booking_id == replaces_booking_id)
                .where(Booking.status.in_((REQUESTED, PROPOSED)))) is not None:
            raise AlreadyMoving from exc
        raise SlotTaken from exc
    except OperationalError as exc:  # lock wait gave up under heavy contention
        db.session.rollback()
        raise SlotTaken from exc
    _notify(booking, "booking_requested", _l("We received your booking request"))
    return booking


def open_requests(client_id: uuid.UUID) -> int:
    """Requests of one person still holding a slot: waiting for staff, or for the client's
    answer to a proposed time."""
    return db.session.scalar(
        select(func.count(Booking.id))
        .where(Booking.client_id == client_id)
        .where(Booking.status.in_((REQUESTED, PROPOSED)))
        .where(or_(Booking.expires_at.is_(None), Booking.expires_at > utcnow()))
    ) or 0


def open_requests_of_account(account_id: uuid.UUID) -> int:
    """Requests an account made, for itself or anyone else, that still hold a slot."""
    return db.session.scalar(
        select(func.count(Booking.id))
        .where(Booking.booked_by_account_id == account_id)
        .where(Booking.status.in_((REQUESTED, PROPOSED)))
        .where(or_(Booking.expires_at.is_(None), Booking.expires_at > utcnow()))
    ) or 0


def _hold_until(start: datetime) -> datetime:
    """A request (or proposal) holds its slot 48 h, but never past the appointment."""
    return min(utcnow() + timedelta(hours=_config().booking_request_hours), start)


def _lock_staff(staff_id: uuid.UUID) -> None:
    db.session.execute(
        update(StaffMember).where(StaffMember.id == staff_id).values(id=StaffMember.id)
        .execution_options(synchronize_session=False)
    )


def _expire_stale(staff_id: uuid.UUID) -> None:
    db.session.execute(
        update(Booking)
        .where(Booking.staff_member_id == staff_id)
        .where(Booking.status.in_((REQUESTED, PROPOSED)))
        .where(Booking.expires_at <= utcnow())
        .values(status=EXPIRED)
        .execution_options(synchronize_session=False)
    )


def _expire_stale_moves(replaces_booking_id: uuid.UUID) -> None:
    """A request to move an appointment that ran out unanswered gives way to a new one
    (the index allows one open move per appointment)."""
    db.session.execute(
        update(Booking)
        .where(Booking.replaces_booking_id == replaces_booking_id)
        .where(Booking.status.in_((REQUESTED, PROPOSED)))
        .where(Booking.expires_at <= utcnow())
        .values(status=EXPIRED)
        .execution_options(synchronize_session=False)
    )


def _expire_and_check_taken(staff_id: uuid.UUID, start: datetime) -> bool:
    return db.session.scalar(
        select(Booking.id)
        .where(Booking.staff_member_id == staff_id)
        .where(Booking.start_at == start)
        .where(Booking.status.in_(ACTIVE))
    ) is not None


def bookings_for(account: Account) -> list[Booking]:
    """The account's and its visible dependants' bookings, soonest first; a dependant's
    bookings marked confidential from guardians never show here. None of its own while an
    invited account's hand-over is not yet confirmed in person (``household.own_client``)."""
    own_id = getattr(household.own_client(account), "id", None)
    ids = [c.id for c in household.household_clients(account)]
    if not ids:
        return []
    rows = db.session.scalars(
        select(Booking).where(Booking.client_id.in_(ids)).order_by(Booking.start_at)
    )
    return [b for b in rows if b.client_id == own_id or not b.confidential_from_guardians]


def own_booking(account: Account, booking_id: uuid.UUID) -> Booking:
    booking = db.session.get(Booking, booking_id)
    if booking is None or booking not in bookings_for(account):
        raise NotAllowed
    return booking


def effective_status(booking: Booking) -> str:
    """The status as the user should see it: an unanswered hold that ran out is expired,
    even before the sweep marks it so."""
    if booking.status in (REQUESTED, PROPOSED) and booking.expires_at is not None \
            and booking.expires_at <= utcnow():
        return EXPIRED
    return booking.status


def may_cancel_online(booking: Booking) -> bool:
    """Requests can always be withdrawn; confirmed appointments up to the cut-off."""
    status = effective_status(booking)
    if status in (REQUESTED, PROPOSED):
        return True
    cutoff = timedelta(hours=_config().cancel_cutoff_hours)
    return status == CONFIRMED and booking.start_at - utcnow() >= cutoff


def _set_status(booking: Booking, *, expected: tuple[str, ...], new: str, **values) -> None:
    """Compare-and-set, so a staff decision and a client's cancellation cannot overwrite
    each other."""
    # The funder report's counts change with the booking, in its transaction.
    counted = reports.before_change(booking) if CONFIRMED in (*expected, new) else None
    changed = db.session.execute(
        update(Booking).where(Booking.id == booking.id).where(Booking.status.in_(expected))
        .values(status=new, decided_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        db.session.rollback()
        raise WrongState
    reports.after_change(counted)
    db.session.commit()
    db.session.refresh(booking)


def cancel(*, account: Account, booking_id: uuid.UUID) -> Booking:
    booking = own_booking(account, booking_id)
    if effective_status(booking) not in ACTIVE:
        raise WrongState
    if not may_cancel_online(booking):
        raise TooLateToCancel
    was_confirmed = booking.status == CONFIRMED
    _set_status(booking, expected=ACTIVE, new=CANCELLED)
    if was_confirmed:
        _notify_staff_of_cancellation(booking)
    return booking


def cancel_cutoff_hours() -> int:
    """Up to how many hours before a confirmed appointment clients cancel online
    (EINBLICK_CANCEL_CUTOFF_HOURS); after that they call."""
    return _config().cancel_cutoff_hours


def inside_cutoff(start: datetime, *, now: datetime | None = None) -> bool:
    """Whether an appointment at ``start``, once confirmed, could no longer be cancelled
    online (it begins within the cut-off)."""
    return start - (now or utcnow()) < timedelta(hours=cancel_cutoff_hours())


def pending_move(booking: Booking) -> Booking | None:
    """The request, still waiting for an answer, to move ``booking`` to another time."""
    return db.session.scalar(
        select(Booking).where(Booking.replaces_booking_id == booking.id)
        .where(Booking.status.in_((REQUESTED, PROPOSED)))
        .where(or_(Booking.expires_at.is_(None), Booking.expires_at > utcnow()))
    )


def may_move_online(booking: Booking) -> bool:
    """A request or a confirmed appointment may be moved while it may be cancelled online;
    a request to move is not moved again (withdraw it, then move the appointment)."""
    return (effective_status(booking) in (REQUESTED, CONFIRMED)
            and booking.replaces_booking_id is None and may_cancel_online(booking))


def move_slots(booking: Booking, *, day) -> list:
    """Free times on ``day`` for moving ``booking``: with the same staff member while they
    still offer the service, else with anyone who does."""
    offering = availability.offering_staff(booking.service)
    members = [m for m in offering if m.id == booking.staff_member_id] or offering
    return sorted((slot for member in members
                   for slot in availability.free_slots(service=booking.service,
                                                       staff_member=member, day=day)),
                  key=lambda slot: slot.start)


def request_move(*, account: Account, booking_id: uuid.UUID, slot_token: str) -> Booking:
    """Ask for another time: a new request linked to the booking it replaces. The old
    appointment stays valid until staff confirm the new time (which cancels it); if they
    decline, or nobody answers in time, the old one simply stays."""
    old = own_booking(account, booking_id)
    if effective_status(old) not in (REQUESTED, CONFIRMED) or old.replaces_booking_id:
        raise WrongState
    if not may_cancel_online(old):
        raise TooLateToCancel
    if pending_move(old) is not None:
        raise AlreadyMoving
    # The new time stays hidden from guardians if staff hid the appointment from them.
    return request_booking(account=account, client_id=old.client_id,
                           service_id=old.service_id, slot_token=slot_token, note=old.note,
                           replaces_booking_id=old.id,
                           confidential_from_guardians=old.confidential_from_guardians)


def _retire_replaced(booking: Booking) -> tuple[Booking, bool] | None:
    """Cancel the booking that ``booking`` replaces, in the caller's transaction (its
    commit confirms the new time and cancels the old one together). The old booking, if it
    was still active, and whether it was a confirmed appointment."""
    if booking.replaces_booking_id is None:
        return None
    old = db.session.get(Booking, booking.replaces_booking_id)
    was_confirmed = old is not None and old.status == CONFIRMED
    counted = reports.before_change(old) if old is not None else None
    changed = db.session.execute(
        update(Booking).where(Booking.id == booking.replaces_booking_id)
        .where(Booking.status.in_(ACTIVE))
        .values(status=CANCELLED, decided_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    reports.after_change(counted)
    return (old, was_confirmed) if changed == 1 else None


def _notify_staff_of_cancellation(booking: Booking) -> None:
    """The staff member expecting the client learns the time is free again. Like every
    email, it names only date, time and service: never the client."""
    member = db.session.get(StaffMember, booking.staff_member_id)
    if member is None or not member.active or member.account is None:
        return
    mail.send(to=member.account.email, subject=_l("An appointment was cancelled"),
              template="booking_cancelled_staff", locale=member.account.locale,
              start=booking.start_at.astimezone(availability.local_zone()),
              service_name=content_i18n.LazyServiceText(booking.service, "name"),
              day=booking.start_at.astimezone(availability.local_zone()).date())


def answer_proposal(*, account: Account, booking_id: uuid.UUID, accept: bool) -> Booking:
    booking = own_booking(account, booking_id)
    if effective_status(booking) != PROPOSED:
        raise WrongState
    if accept and booking.start_at <= utcnow() + availability.MIN_LEAD:
        raise WrongState
    replaced = _retire_replaced(booking) if accept else None
    if accept:
        _open_video_room(booking)
    _set_status(booking, expected=(PROPOSED,), new=CONFIRMED if accept else CANCELLED)
    if accept:
        _notify_confirmed(booking, replaced=replaced)
    return booking


# -- staff side ---------------------------------------------------------------------------
def visible_to_staff(member: StaffMember):
    """Which bookings a staff member sees: all for the roles the policy lets see all
    (admins, reception), otherwise their own appointments."""
    # Appointments of restricted clients (erasure requested, kept for a duty) are not
    # everyday work: they open only through the file, with a logged reason.
    # As a NOT EXISTS, not a join: a join let PostgreSQL read every client to build a hash
    # table (0.1 s at 100,000 clients) where a page needs 25 lookups by primary key.
    restricted = select(Client.id).where(Client.id == Booking.client_id) \
        .where(Client.restricted_at.is_not(None)).exists()
    stmt = select(Booking).where(~restricted)
    if not policy.may(member.role, policy.SEE_ALL_BOOKINGS):
        stmt = stmt.where(Booking.staff_member_id == member.id)
    return stmt


def calendar_owners(member: StaffMember) -> list[StaffMember]:
    """Whose appointments the member may page through: every active staff member for the
    roles that see all bookings, otherwise only their own."""
    if not policy.may(member.role, policy.SEE_ALL_BOOKINGS):
        return [member]
    return active_members()


def _waiting(member: StaffMember):
    """The requests the member sees that wait for a decision."""
    return visible_to_staff(member).where(Booking.status == REQUESTED) \
        .where(or_(Booking.expires_at.is_(None), Booking.expires_at > utcnow()))


def queue(member: StaffMember, *, page: int = 1) -> paging.Page:
    """A page of the requests waiting for a decision, oldest first; every client shown on
    it is logged (only those). The same statements for every page: the count (no further
    than ``QUEUE_COUNTED`` past the page), then the page as ``_logged_lists`` reads it."""
    waiting = _waiting(member).order_by(Booking.created_at, Booking.id)
    numbers, offset = paging.locate(waiting, page, beyond=QUEUE_COUNTED)
    rows = _logged(member, waiting.offset(offset).limit(paging.PER_PAGE)) \
        if numbers.total else []
    return replace(numbers, rows=rows)


# Waiting requests are counted up to this many (on the queue's pages: past the page's
# start): a count reads every one of them (0.05 s for 10,000 at 100,000 clients); beyond
# it the pages say "more than" and still lead on.
QUEUE_COUNTED = 1000


def queue_length(member: StaffMember) -> int:
    """How many requests wait for the member's decision, up to ``QUEUE_COUNTED`` + 1
    (more than that reads as "more than QUEUE_COUNTED"); counted, nobody's data read."""
    return paging.count(_waiting(member), up_to=QUEUE_COUNTED)


def calendar(member: StaffMember, *, staff_member_id: uuid.UUID, start: datetime,
             end: datetime) -> list[Booking]:
    return _logged(member, _calendar(member, staff_member_id=staff_member_id, start=start,
                                     end=end))


def _calendar(member: StaffMember, *, staff_member_id: uuid.UUID, start: datetime,
              end: datetime):
    return visible_to_staff(member) \
        .where(Booking.staff_member_id == staff_member_id) \
        .where(Booking.status.in_((REQUESTED, CONFIRMED, PROPOSED))) \
        .where(Booking.start_at >= start).where(Booking.start_at < end) \
        .order_by(Booking.start_at)


def own_day_and_queue(member: StaffMember, *, start: datetime, end: datetime,
                      limit: int) -> tuple[list[Booking], list[Booking]]:
    """The member's own appointments from ``start`` to ``end`` and the first ``limit``
    requests waiting, logged together: one commit, so neither list is read again."""
    day, waiting = _logged_lists(
        member, _calendar(member, staff_member_id=member.id, start=start, end=end),
        _waiting(member).order_by(Booking.created_at).limit(limit))
    return day, waiting


def _logged(member: StaffMember, stmt) -> list[Booking]:
    return _logged_lists(member, stmt)[0]


def _logged_lists(member: StaffMember, *stmts) -> list[list[Booking]]:
    """The bookings of each statement, each client among them logged, in a constant number
    of statements: which bookings and clients, the log (committed), then the bookings with
    their clients (service and staff member come joined). Loaded before the commit, every
    row would be expired by it and read again one by one while the page is drawn."""
    shown = [db.session.execute(stmt.with_only_columns(Booking.id, Booking.client_id)).all()
             for stmt in stmts]
    _log_views(member, {client_id for rows in shown for _booking_id, client_id in rows})
    wanted = {booking_id for rows in shown for booking_id, _client_id in rows}
    if not wanted:
        return [[] for _stmt in stmts]
    loaded = {booking.id: booking for booking in db.session.scalars(
        select(Booking).where(Booking.id.in_(wanted)).options(joinedload(Booking.client)))}
    return [[loaded[booking_id] for booking_id, _client_id in rows if booking_id in loaded]
            for rows in shown]


def _log_views(member: StaffMember, client_ids: set[uuid.UUID]) -> None:
    # Sorted, so two pages logging the same clients take their chain locks in one order.
    for client_id in sorted(client_ids, key=str):
        audit.record_access(client_id=client_id, staff_member=member, category=audit.BOOKINGS)
    db.session.commit()


def _staff_booking(member: StaffMember, booking_id: uuid.UUID) -> Booking:
    booking = db.session.scalar(visible_to_staff(member).where(Booking.id == booking_id))
    if booking is None:
        raise NotAllowed
    return booking


def proposal_choice(*, member: StaffMember, booking_id: uuid.UUID) -> tuple[Booking, list]:
    """A request waiting for a decision and the free times that could be proposed instead.
    Computed when staff ask for them, for this request only (never for every row of the
    queue); reading the request is logged."""
    booking = _staff_booking(member, booking_id)
    if effective_status(booking) != REQUESTED:
        raise WrongState
    audit.record_access(client_id=booking.client_id, staff_member=member,
                        category=audit.BOOKINGS)
    db.session.commit()
    return booking, proposal_slots(booking)


def _decide(member: StaffMember, booking_id: uuid.UUID) -> Booking:
    """Load a request for a decision under the staff member's lock: an expired hold or a
    past time cannot be confirmed (its slot may already be someone else's)."""
    booking = _staff_booking(member, booking_id)
    staff_id = booking.staff_member_id
    db.session.commit()
    _lock_staff(staff_id)
    db.session.refresh(booking)
    if effective_status(booking) != REQUESTED or booking.start_at <= utcnow():
        db.session.rollback()
        raise WrongState
    return booking


def confirm(*, member: StaffMember, booking_id: uuid.UUID) -> Booking:
    booking = _decide(member, booking_id)
    audit.record_access(client_id=booking.client_id, staff_member=member,
                        category=audit.BOOKINGS, action=audit.CHANGE)
    replaced = _retire_replaced(booking)
    _open_video_room(booking)
    _set_status(booking, expected=(REQUESTED,), new=CONFIRMED)
    _notify_confirmed(booking, replaced=replaced)
    return booking


def decline(*, member: StaffMember, booking_id: uuid.UUID, message: str | None) -> Booking:
    booking = _staff_booking(member, booking_id)
    if effective_status(booking) != REQUESTED:
        raise WrongState
    booking.staff_message = (message or "").strip()[:500] or None
    audit.record_access(client_id=booking.client_id, staff_member=member,
                        category=audit.BOOKINGS, action=audit.CHANGE)
    _set_status(booking, expected=(REQUESTED,), new=DECLINED)
    _notify(booking, "booking_declined", _l("Your booking request could not be accepted"))
    return booking


def propose(*, member: StaffMember, booking_id: uuid.UUID, slot_token: str) -> Booking:
    """Move a request to another free slot of the same staff member; the client decides."""
    booking = _staff_booking(member, booking_id)
    if booking.status != REQUESTED:
        raise WrongState
    try:
        staff_id, start = availability.parse_slot_token(slot_token)
    except availability.BadSlotToken as exc:
        raise SlotUnavailable from exc
    if staff_id != booking.staff_member_id:
        raise SlotUnavailable
    booking_id_value = booking.id
    db.session.commit()
    try:
        _lock_staff(staff_id)
        _expire_stale(staff_id)
        booking = db.session.get(Booking, booking_id_value)
        db.session.refresh(booking)
        if booking.status != REQUESTED:
            db.session.rollback()
            raise WrongState
        day = start.astimezone(availability.local_zone()).date()
        free = availability.free_slots(service=booking.service, staff_member=booking.staff_member,
                                       day=day, ignore=booking.id)
        slot = next((s for s in free if s.start == start), None)
        if slot is None:
            db.session.rollback()
            raise SlotTaken
        booking.original_start_at = booking.original_start_at or booking.start_at
        booking.start_at, booking.end_at = slot.start, slot.end
        booking.status = PROPOSED
        booking.decided_at = utcnow()
        booking.expires_at = _hold_until(slot.start)
        audit.record_access(client_id=booking.client_id, staff_member=member,
                            category=audit.BOOKINGS, action=audit.CHANGE)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise SlotTaken from exc
    _notify(booking, "booking_proposed", _l("A new time was proposed for your appointment"))
    return booking


# -- email, calendar, reminders -----------------------------------------------------------
def recipients(booking: Booking) -> list[Account]:
    """Who is told about a booking: the client's own account (not while an invited
    account's hand-over is pending), and the account that booked it only while that
    account may still see the client's bookings (a young person can withdraw that) and the
    booking is not confidential from guardians."""
    result = []
    client = booking.client
    own = household.own_account(client) if client is not None else None
    if own is not None:
        result.append(own)
    if booking.booked_by_account_id and not booking.confidential_from_guardians:
        booker = db.session.get(Account, booking.booked_by_account_id)
        if booker is not None and booker not in result:
            try:
                household.client_for(booker, booking.client_id, need=ACCESS_BOOKINGS)
            except household.NotAllowed:
                pass
            else:
                result.append(booker)
    return result


def _notify(booking: Booking, template: str, subject) -> None:
    """Emails name only date, time and service, and link to the portal."""
    zone = availability.local_zone()
    for account in recipients(booking):
        mail.send(
            to=account.email,
            subject=subject,
            template=template,
            locale=account.locale,
            start=booking.start_at.astimezone(zone),
            service_name=content_i18n.LazyServiceText(booking.service, "name"),
        )


def video_room_url(base: str) -> str:
    """A room of its own under the video platform's base address: nobody can guess it
    from the base or from another appointment's room."""
    return f"{base.rstrip('/')}/{secrets.token_urlsafe(16)}"


def _open_video_room(booking: Booking) -> None:
    """An online appointment gets its own room as it is confirmed (in the caller's
    transaction: a confirmation that fails keeps none)."""
    service = booking.service
    if service.online and service.video_url and booking.video_room is None:
        booking.video_room = video_room_url(service.video_url)


def video_link(booking: Booking) -> str | None:
    """The link to the appointment's own video room, for its client and its staff member:
    only while it is a confirmed online appointment."""
    if booking.status != CONFIRMED or not booking.service.online:
        return None
    return booking.video_room


def _notify_confirmed(booking: Booking, *,
                      replaced: tuple[Booking, bool] | None = None) -> None:
    """The confirmation: time, service, the address (or the video link of an online
    service), the cancellation rule and the appointment as an .ics attachment. When it
    moved an appointment, the old time is named as cancelled (and its staff member told
    the time is free again)."""
    zone = availability.local_zone()
    service = booking.service
    replaced_start = None
    if replaced is not None:
        old, was_confirmed = replaced
        replaced_start = old.start_at.astimezone(zone)
        if was_confirmed:
            _notify_staff_of_cancellation(old)
    for account in recipients(booking):
        # The calendar entry in the recipient's language, as the email.
        with force_locale(account.locale if account.locale in SUPPORTED_LOCALES
                          else DEFAULT_LOCALE):
            attachment = ("termin.ics", "text/calendar", ics_for([booking]))
        mail.send(
            to=account.email, subject=_l("Your appointment is confirmed"),
            template="booking_confirmed", locale=account.locale,
            start=booking.start_at.astimezone(zone),
            service_name=content_i18n.LazyServiceText(service, "name"),
            online=service.online, video_url=video_link(booking),
            location=content_i18n.LazyServiceText(service, "location"),
            organisation=_config().organisation_name,
            address=_config().organisation_address,
            cutoff_hours=cancel_cutoff_hours(), phone=household.organisation_phone(),
            replaced_start=replaced_start, attachments=[attachment],
        )


def send_expiry_notices(*, now: datetime | None = None) -> int:
    """Tell the client, once, that a request expired before staff answered it (a proposal
    the client left unanswered is not meant). Requests past their hold are marked expired
    first; each notice is claimed by a conditional update, so overlapping runs send it
    once. Notices older than a week are not sent any more."""
    now = now or utcnow()
    db.session.execute(
        update(Booking).where(Booking.status.in_((REQUESTED, PROPOSED)))
        .where(Booking.expires_at <= now)
        .values(status=EXPIRED).execution_options(synchronize_session=False)
    )
    db.session.commit()
    due = db.session.scalars(
        select(Booking.id)
        .where(Booking.status == EXPIRED)
        .where(Booking.decided_at.is_(None))  # staff never answered
        .where(Booking.expiry_notice_sent_at.is_(None))
        .where(Booking.expires_at > now - timedelta(days=7))
    ).all()
    zone = availability.local_zone()
    sent = 0
    for booking_id in due:
        claimed = db.session.execute(
            update(Booking).where(Booking.id == booking_id)
            .where(Booking.expiry_notice_sent_at.is_(None))
            .values(expiry_notice_sent_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if claimed != 1:
            continue
        booking = db.session.get(Booking, booking_id)
        kept = booking.replaces if booking.replaces is not None \
            and booking.replaces.status in ACTIVE else None
        for account in recipients(booking):
            mail.send(
                to=account.email, subject=_l("Your booking request was not answered in time"),
                template="booking_expired", locale=account.locale,
                start=booking.start_at.astimezone(zone),
                service_name=content_i18n.LazyServiceText(booking.service, "name"),
                service_id=booking.service_id, phone=household.organisation_phone(),
                kept_start=kept.start_at.astimezone(zone) if kept is not None else None,
            )
        sent += 1
    return sent


def send_reminders(*, now: datetime | None = None) -> int:
    """Remind of confirmed appointments in the next 24 h; each booking at most once, also
    when several runs overlap (the claim is an atomic conditional update)."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Booking.id)
        .where(Booking.status == CONFIRMED)
        .where(Booking.reminder_sent_at.is_(None))
        .where(Booking.start_at > now)
        .where(Booking.start_at <= now + timedelta(hours=24))
    ).all()
    sent = 0
    for booking_id in due:
        claimed = db.session.execute(
            update(Booking)
            .where(Booking.id == booking_id)
            .where(Booking.reminder_sent_at.is_(None))
            .values(reminder_sent_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if claimed == 1:
            booking = db.session.get(Booking, booking_id)
            _notify(booking, "booking_reminder", _l("Reminder: your appointment"))
            sent += 1
    db.session.execute(
        update(Booking).where(Booking.status.in_((REQUESTED, PROPOSED)))
        .where(Booking.expires_at <= now)
        .values(status=EXPIRED).execution_options(synchronize_session=False)
    )
    db.session.commit()
    return sent


def ics_for(bookings: list[Booking]) -> bytes:
    calendar_ = Calendar()
    calendar_.add("prodid", "-//Einblick//Termine//DE")
    calendar_.add("version", "2.0")
    host = _config().rp_id
    for booking in bookings:
        if booking.status != CONFIRMED:
            continue
        event = Event()
        event.add("uid", f"{booking.id}@{host}")
        event.add("dtstamp", utcnow())
        event.add("dtstart", booking.start_at)
        event.add("dtend", booking.end_at)
        # In the current language (German when a text is missing), named by LANGUAGE.
        name = content_i18n.service_text(booking.service, "name")
        event.add("summary", name.text, parameters={"LANGUAGE": name.language})
        video_url = video_link(booking)
        place = content_i18n.service_text(booking.service, "location")
        if video_url or booking.service.online:
            event.add("location", video_url or "Online")
        elif place:
            event.add("location", place.text, parameters={"LANGUAGE": place.language})
        if video_url:
            event.add("url", video_url)
        calendar_.add_component(event)
    return calendar_.to_ical()


def new_calendar_feed(account: Account) -> str:
    """A new secret feed URL token; any earlier feed of the account stops working."""
    db.session.execute(
        update(CalendarFeed).where(CalendarFeed.account_id == account.id)
        .where(CalendarFeed.revoked_at.is_(None)).values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    db.session.add(CalendarFeed(account_id=account.id, token_hash=hash_secret_token(token)))
    db.session.commit()
    return token


def feed_url(token: str) -> str:
    """The address a calendar app subscribes to for ``token``.

    Built on the configured public address (EINBLICK_BASE_URL), never on the request's
    Host header: a forged one would put another site into the secret link the client
    copies into a calendar app. The path comes from the portal's route, as in the links
    the emails carry."""
    from flask import url_for

    return _config().base_url.rstrip("/") + url_for("portal.calendar_feed", token=token)


def revoke_calendar_feed(account: Account) -> None:
    db.session.execute(
        update(CalendarFeed).where(CalendarFeed.account_id == account.id)
        .where(CalendarFeed.revoked_at.is_(None)).values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def has_calendar_feed(account: Account) -> bool:
    return db.session.scalar(
        select(CalendarFeed.id).where(CalendarFeed.account_id == account.id)
        .where(CalendarFeed.revoked_at.is_(None))
    ) is not None


def feed_account(token: str) -> Account | None:
    feed = db.session.scalar(
        select(CalendarFeed).where(CalendarFeed.token_hash == hash_secret_token(token))
        .where(CalendarFeed.revoked_at.is_(None))
    )
    return db.session.get(Account, feed.account_id) if feed else None


