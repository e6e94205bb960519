"""The staff start page: what needs doing today, by what the member's role may see.

Today's own appointments and the first open booking requests show clients by name (each
logged as a look at the booking lists, like the queue); the corrections, erasure checks and
break-glass openings waiting are counts and dates only, so no client's data is read for
them. Every part costs a fixed number of statements however large the organisation is:
lists are bounded and counted in SQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from shared import policy
from shared.extensions import db
from shared.models.base import utcnow
from shared.models.bookings import Booking
from shared.models.casefile import BreakGlassGrant
from shared.models.clients import Client
from shared.models.staff import StaffMember
from shared.services import availability, bookings, casefile, corrections

# How many open requests the start page names; the queue has them all.
FIRST_REQUESTS = 5


@dataclass(frozen=True)
class Waiting:
    """A queue summed up: how many wait, the first date one is due (or was opened), and
    how many are past their answer-by date."""

    count: int
    first: datetime | None
    overdue: int = 0


@dataclass
class StaffHome:
    today: list[Booking] | None  # None: the role holds no appointments (reception)
    requests: list[Booking]
    requests_total: int
    corrections: Waiting | None  # None: the role does not answer them
    erasures: Waiting | None
    break_glass: Waiting | None
    openable: set[uuid.UUID] = field(default_factory=set)  # names that link to the file


def start_page(*, member: StaffMember, now: datetime | None = None) -> StaffHome:
    """What the member's start page shows (each part only where the policy allows it)."""
    now = now or utcnow()
    zone = availability.local_zone()
    midnight = datetime.combine(now.astimezone(zone).date(), datetime.min.time(), zone)
    # One person's day is bounded by the unique (staff member, start) index.
    today, requests = bookings.own_day_and_queue(
        member, start=midnight, end=midnight + timedelta(days=1), limit=FIRST_REQUESTS)
    openable = casefile.openable_among(
        member=member, client_ids={b.client_id for b in [*(today or []), *requests]})
    return StaffHome(
        today=today if policy.may(member.role, policy.OFFER_SERVICES) else None,
        requests=requests,
        requests_total=bookings.queue_length(member),
        corrections=(Waiting(*corrections.open_summary(member))
                     if policy.may_use(member.role, "staff.corrections_queue") else None),
        erasures=(_erasure_checks(now)
                  if policy.may_use(member.role, "staff.erasures_queue") else None),
        break_glass=(_break_glass_openings()
                     if policy.may(member.role, policy.REVIEW_BREAK_GLASS) else None),
        openable=openable,
    )


def _erasure_checks(now: datetime) -> Waiting:
    """Restricted files not checked yet (erasure.review_page lists them): how many, the
    first check-by date, how many are overdue."""
    cutoff = now - (corrections.answer_by(now) - now)
    total, oldest, overdue = db.session.execute(
        select(func.count(), func.min(Client.restricted_at),
               func.coalesce(func.sum(case((Client.restricted_at < cutoff, 1), else_=0)), 0))
        .where(Client.restricted_at.is_not(None))
        .where(Client.erasure_reviewed_at.is_(None))).one()
    return Waiting(total, corrections.answer_by(oldest) if oldest else None, overdue)


def _break_glass_openings() -> Waiting:
    """Openings not reviewed yet: how many, and when the oldest was made."""
    total, oldest = db.session.execute(
        select(func.count(), func.min(BreakGlassGrant.created_at))
        .where(BreakGlassGrant.reviewed_at.is_(None))).one()
    return Waiting(total, oldest)
