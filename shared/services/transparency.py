"""What a client sees about themselves (and the dependants they may see): the access log,
and which notes and documents exist about them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from shared import audit
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.bookings import Booking
from shared.models.casefile import BreakGlassGrant, Document, Note
from shared.models.clients import Client
from shared.models.household import ACCESS_FULL
from shared.models.staff import StaffMember
from shared.services import household


@dataclass
class AccessLine:
    at: datetime
    staff_name: str
    role: str
    category: str
    action: str
    reason: str | None


@dataclass
class Subject:
    client: Client
    is_self: bool
    events: list[AccessLine]
    notes: list[Note]
    documents: list[Document]
    # Shown only what a guardian may see: a dependant's data.
    as_guardian: bool = False


def subjects(account: Account) -> list[Subject]:
    """The account's own client and each dependant it may fully see. Anything marked
    confidential from guardians is left out of a dependant's part. An invited account
    whose hand-over staff have not confirmed in person has no part at all
    (``household.own_client``)."""
    people = []
    own = household.own_client(account)
    if own is not None:
        people.append((own, True, False))
    people += [(c, False, True)
               for c in household.visible_dependants(account, need=ACCESS_FULL)]
    return [_subject(client, is_self, as_guardian) for client, is_self, as_guardian in people]


def _subject(client: Client, is_self: bool, as_guardian: bool) -> Subject:
    names: dict[uuid.UUID, StaffMember] = {}

    def staff(staff_id):
        if staff_id and staff_id not in names:
            names[staff_id] = db.session.get(StaffMember, staff_id)
        return names.get(staff_id)

    confidential_bookings = as_guardian and db.session.scalar(
        select(Booking.id).where(Booking.client_id == client.id)
        .where(Booking.confidential_from_guardians.is_(True)).limit(1)) is not None
    lines = []
    for event in audit.events_for(client.id):
        if as_guardian and not _guardian_may_see(event, confidential_bookings):
            continue
        member = staff(event.staff_member_id)
        reason = None
        if event.grant_id and not as_guardian:
            grant = db.session.get(BreakGlassGrant, event.grant_id)
            reason = grant.reason if grant else None
        if member is not None:
            name = member.name or "?"
        elif event.category == audit.EXPORT:
            name = str(_("Account holder"))
        elif event.role == audit.GUARDIAN:
            name = str(_("A parent or guardian"))
        else:
            name = "Einblick"
        lines.append(AccessLine(event.created_at, name,
                                event.role, event.category, event.action, reason))
    notes = list(db.session.scalars(select(Note).where(Note.client_id == client.id)
                                    .order_by(Note.created_at.desc())))
    documents = list(db.session.scalars(select(Document).where(Document.client_id == client.id)
                                        .where(Document.visible_to_client.is_(True))
                                        .order_by(Document.created_at.desc())))
    if as_guardian:
        notes = [n for n in notes if not n.confidential_from_guardians]
        documents = [d for d in documents if not d.confidential_from_guardians]
    return Subject(client, is_self, lines, notes, documents, as_guardian)


def _guardian_may_see(event, confidential_bookings: bool) -> bool:
    """A guardian sees who looked at the child's contact, household and booking data, but
    nothing that would reveal confidential work (notes, documents, break-glass reasons,
    changes to bookings kept from them)."""
    if event.grant_id or event.action == audit.BREAK_GLASS:
        return False
    if event.category in (audit.CONTACT, audit.HOUSEHOLD):
        return True
    return event.category == audit.BOOKINGS and not confidential_bookings


def client_document(account: Account, document_id: uuid.UUID) -> Document | None:
    for subject in subjects(account):
        for document in subject.documents:
            if document.id == document_id:
                return document
    return None
