"""The client's start page after signing in: what to do now and what comes next, for the
account's own client and the dependants it may see.

Everything is read in a fixed number of statements however many appointments, requests
and consents a household has: the household, its open bookings, the consents staff asked
for with their templates, and the last staff visits are one query each."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import joinedload

from shared.extensions import db
from shared.models.accounts import Account
from shared.models.base import utcnow
from shared.models.bookings import ACTIVE, CONFIRMED, PROPOSED, REQUESTED, Booking
from shared.models.clients import Client
from shared.models.consents import PUBLISHED, ConsentRequest, ConsentTemplate
from shared.models.household import ACCESS_BOOKINGS, ACCESS_FULL, Guardianship
from shared.services import household, transparency

# How many staff visits the start page shows; the full log is one tap away.
RECENT_VISITS = 3


@dataclass(frozen=True)
class Person:
    """Someone the account sees on the start page: itself, or a dependant."""

    client: Client
    is_self: bool
    # A guardian with ACCESS_BOOKINGS sees a dependant's appointments only.
    sees_consents: bool

    @property
    def guardian_signs(self) -> bool:
        """A guardian signs for a dependant only while the young person has no account
        of their own that staff confirmed in person (consents.signable_subject)."""
        return not self.is_self and (self.client.account is None
                                     or household.handover_pending(self.client.account))


@dataclass(frozen=True)
class ConsentAsked:
    """Staff asked for this consent; the account may sign it for ``person``."""

    template: ConsentTemplate
    person: Person
    asked_at: datetime


@dataclass(frozen=True)
class Home:
    people: dict[uuid.UUID, Person]
    next_appointment: Booking | None
    # Confirmed appointments after the next one, counted for "n more".
    later_appointments: int
    waiting_for_staff: list[Booking]
    proposals: list[Booking]
    consents_asked: list[ConsentAsked]
    visits: list[transparency.Visit] = field(default_factory=list)

    def person(self, booking: Booking) -> Person:
        return self.people[booking.client_id]


def home_for(account: Account, *, now: datetime | None = None) -> Home:
    """What the account's start page shows, read in a constant number of statements
    (the people first: the visits then find the dependants already loaded)."""
    now = now or utcnow()
    people = _people(account)
    bookings = _open_bookings(people, now=now)
    confirmed = [b for b in bookings if b.status == CONFIRMED]
    return Home(
        people=people,
        next_appointment=confirmed[0] if confirmed else None,
        later_appointments=max(len(confirmed) - 1, 0),
        waiting_for_staff=[b for b in bookings if b.status == REQUESTED],
        proposals=[b for b in bookings if b.status == PROPOSED],
        consents_asked=_consents_asked(people),
        visits=transparency.recent_visits(account, limit=RECENT_VISITS),
    )


def _people(account: Account) -> dict[uuid.UUID, Person]:
    """The account's own client and its dependants at the level the guardian may see,
    with each dependant loaded in the same query (household.visible_dependants loads them
    one by one)."""
    people: dict[uuid.UUID, Person] = {}
    own = household.own_client(account)
    if own is None:
        return people  # an invited account whose hand-over is pending sees nobody
    people[own.id] = Person(own, is_self=True, sees_consents=True)
    rows = db.session.scalars(
        select(Guardianship)
        .options(joinedload(Guardianship.dependant).joinedload(Client.account))
        .where(Guardianship.guardian_account_id == account.id)
        .where(Guardianship.access.in_((ACCESS_BOOKINGS, ACCESS_FULL)))
        .order_by(Guardianship.created_at)
    )
    for guardianship in rows:
        people[guardianship.dependant_id] = Person(
            guardianship.dependant, is_self=False,
            sees_consents=guardianship.access == ACCESS_FULL)
    return people


def _open_bookings(people: dict[uuid.UUID, Person], *, now: datetime) -> list[Booking]:
    """Bookings not yet over that hold their slot, soonest first, as bookings_for shows
    them: a dependant's bookings kept confidential from guardians are left out, and a
    request or proposal whose hold ran out counts as expired (bookings.effective_status)."""
    if not people:
        return []
    own_ids = [p.client.id for p in people.values() if p.is_self]
    dependant_ids = [p.client.id for p in people.values() if not p.is_self]
    return list(db.session.scalars(
        select(Booking)
        .where(or_(Booking.client_id.in_(own_ids),
                   and_(Booking.client_id.in_(dependant_ids),
                        Booking.confidential_from_guardians.is_(False))))
        .where(Booking.status.in_(ACTIVE))
        .where(Booking.end_at > now)
        .where(or_(Booking.status == CONFIRMED, Booking.expires_at.is_(None),
                   Booking.expires_at > now))
        .order_by(Booking.start_at)
    ))


def _consents_asked(people: dict[uuid.UUID, Person]) -> list[ConsentAsked]:
    """Open requests from staff, each with the newest published version of its template,
    for the people whose consents the account sees and may give: for a dependant, only
    templates a guardian signs, while the young person has no confirmed account."""
    subjects = {cid: p for cid, p in people.items() if p.sees_consents}
    if not subjects:
        return []
    requests = list(db.session.scalars(
        select(ConsentRequest).where(ConsentRequest.subject_id.in_(list(subjects)))
        .where(ConsentRequest.fulfilled_at.is_(None))
        .order_by(ConsentRequest.created_at)
    ))
    if not requests:
        return []
    newest: dict[str, ConsentTemplate] = {}
    for template in db.session.scalars(
        select(ConsentTemplate).where(ConsentTemplate.status == PUBLISHED)
        .where(ConsentTemplate.key.in_({r.template_key for r in requests}))
        .order_by(ConsentTemplate.key, ConsentTemplate.version.desc())
    ):
        newest.setdefault(template.key, template)
    asked: dict[tuple[uuid.UUID, str], ConsentAsked] = {}
    for request in requests:
        template = newest.get(request.template_key)
        person = subjects[request.subject_id]
        if template is None or not (person.is_self
                                    or (template.guardian_signs and person.guardian_signs)):
            continue
        # Asked twice for the same consent: one task, from the first time.
        asked.setdefault((person.client.id, template.key),
                         ConsentAsked(template, person, request.created_at))
    return list(asked.values())
