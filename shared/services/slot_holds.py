"""Holds: a visitor who picks a free time before having an account keeps it for a while.

The visitor's browser keeps a random token (in the session); the database keeps its hash,
the slot and when the hold runs out, so every worker sees the same holds. While a hold is
live the slot is busy for everyone else (shared.services.availability counts holds like
requests). A hold is written under the same staff-member row lock that a booking request
takes, after checking that the slot is free, so a hold and a request never both win.
Expired holds are deleted whenever a new hold is written: the table holds at most the
live holds and the few that ran out since, without a scheduled job.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.crypto import hash_secret_token
from shared.extensions import db
from shared.models.base import utcnow
from shared.models.bookings import Service, SlotHold
from shared.models.staff import StaffMember
from shared.services import availability

# The portal's texts say "30 minutes" (portal/bookings.py, booking_confirm.html).
HOLD_FOR = timedelta(minutes=30)


class HoldError(Exception):
    pass


class SlotNotFree(HoldError):
    """The slot is taken, held by someone else, or not one we offer."""


@dataclass(frozen=True)
class NewHold:
    token: str  # goes to the visitor's session only
    service_id: uuid.UUID
    slot_token: str
    start_at: datetime
    expires_at: datetime


def token_hash(token: str | None) -> bytes | None:
    """What availability compares to find the asker's own hold."""
    return hash_secret_token(token) if token else None


def _lock_staff(staff_id: uuid.UUID) -> None:
    # The row lock shared.services.bookings.request_booking takes as well (a no-op
    # UPDATE: a row lock on PostgreSQL, the write lock on SQLite).
    db.session.execute(
        update(StaffMember).where(StaffMember.id == staff_id).values(id=StaffMember.id)
        .execution_options(synchronize_session=False)
    )


def hold(*, service: Service, slot_token: str, replacing: str | None = None) -> NewHold:
    """Hold a free slot of ``service`` for ``HOLD_FOR`` (never past its start). The
    visitor's earlier hold (``replacing``) is let go: one visitor holds one slot."""
    try:
        staff_id, start = availability.parse_slot_token(slot_token)
    except availability.BadSlotToken as exc:
        raise SlotNotFree from exc
    member = next((m for m in availability.offering_staff(service) if m.id == staff_id), None)
    if member is None:
        raise SlotNotFree
    db.session.commit()  # end any read transaction: the lock below must come first
    try:
        _lock_staff(staff_id)
        now = utcnow()
        db.session.execute(delete(SlotHold).where(SlotHold.expires_at <= now))
        if replacing:
            db.session.execute(delete(SlotHold)
                               .where(SlotHold.token_hash == hash_secret_token(replacing)))
        day = start.astimezone(availability.local_zone()).date()
        slot = next((s for s in availability.free_slots(service=service, staff_member=member,
                                                        day=day, now=now)
                     if s.start == start), None)
        if slot is None:
            db.session.rollback()
            raise SlotNotFree
        token = secrets.token_urlsafe(32)
        row = SlotHold(token_hash=hash_secret_token(token), service_id=service.id,
                       staff_member_id=staff_id, start_at=slot.start, end_at=slot.end,
                       expires_at=min(now + HOLD_FOR, slot.start), created_at=now)
        db.session.add(row)
        db.session.commit()
    except (IntegrityError, OperationalError) as exc:
        db.session.rollback()
        raise SlotNotFree from exc
    return NewHold(token, service.id, slot.token, slot.start, row.expires_at)


def live_hold(token: str | None) -> SlotHold | None:
    """The hold of this token if it has not run out."""
    if not token:
        return None
    return db.session.scalar(
        select(SlotHold).where(SlotHold.token_hash == hash_secret_token(token))
        .where(SlotHold.expires_at > utcnow()))


def release(token: str | None) -> None:
    """Let the slot go (the visitor booked it, or chose another)."""
    if not token:
        return
    db.session.execute(delete(SlotHold).where(SlotHold.token_hash == hash_secret_token(token)))
    db.session.commit()
