"""What a client sees about themselves (and the dependants they may see): the access log,
and which notes and documents exist about them."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, false, func, not_, or_, select

from shared import audit, catalogue, policy
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.audit import AccessEvent
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
    notes: list[Note]
    documents: list[Document]
    # Shown only what a guardian may see: a dependant's data.
    as_guardian: bool = False

    @functools.cached_property
    def events(self) -> list[AccessLine]:
        """The whole access log, newest first (the export); pages use ``visits_page``."""
        return _access_lines(self.client, self.as_guardian)


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
    if not people:
        return []
    # Everyone's notes and documents in one statement each, however many children.
    ids = [client.id for client, _is_self, _as_guardian in people]
    notes: dict[uuid.UUID, list[Note]] = {i: [] for i in ids}
    for note in db.session.scalars(select(Note).where(Note.client_id.in_(ids))
                                   .order_by(Note.created_at.desc())):
        notes[note.client_id].append(note)
    documents: dict[uuid.UUID, list[Document]] = {i: [] for i in ids}
    for document in db.session.scalars(select(Document).where(Document.client_id.in_(ids))
                                       .where(Document.visible_to_client.is_(True))
                                       .order_by(Document.created_at.desc())):
        documents[document.client_id].append(document)
    subjects = []
    for client, is_self, as_guardian in people:
        mine, files = notes[client.id], documents[client.id]
        if as_guardian:
            mine = [n for n in mine if not n.confidential_from_guardians]
            files = [d for d in files if not d.confidential_from_guardians]
        subjects.append(Subject(client, is_self, mine, files, as_guardian))
    return subjects


def _access_lines(client: Client, as_guardian: bool) -> list[AccessLine]:
    return list(access_lines(client, as_guardian))


# Events read per fetch by ``access_lines`` (a server-side cursor on PostgreSQL).
LINES_PER_FETCH = 500


def access_lines(client: Client, as_guardian: bool) -> Iterator[AccessLine]:
    """The client's whole access log, newest first, read in batches so a long history is
    never held at once (the export)."""
    names: dict[uuid.UUID, StaffMember] = {}

    def staff(staff_id):
        if staff_id and staff_id not in names:
            names[staff_id] = db.session.get(StaffMember, staff_id)
        return names.get(staff_id)

    confidential_bookings = as_guardian and db.session.scalar(
        select(Booking.id).where(Booking.client_id == client.id)
        .where(Booking.confidential_from_guardians.is_(True)).limit(1)) is not None
    events = db.session.scalars(
        select(AccessEvent).where(AccessEvent.client_id == client.id)
        .order_by(AccessEvent.seq.desc()).execution_options(yield_per=LINES_PER_FETCH))
    for event in events:
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
        categories = audit.categories_of(event)
        if as_guardian:
            categories = [c for c in categories if c in _guardian_categories(
                confidential_bookings)]
        yield AccessLine(event.created_at, name, event.role, ",".join(categories),
                         event.action, reason)


def _guardian_categories(confidential_bookings: bool) -> tuple[str, ...]:
    """A guardian sees who looked at the child's contact, household and booking data, but
    nothing that would reveal confidential work (notes, documents, break-glass reasons,
    changes to bookings kept from them)."""
    if confidential_bookings:
        return (audit.CONTACT, audit.HOUSEHOLD)
    return (audit.CONTACT, audit.HOUSEHOLD, audit.BOOKINGS)


def _guardian_may_see(event, confidential_bookings: bool) -> bool:
    actions = audit.actions_of(event)
    if event.grant_id or audit.BREAK_GLASS in actions or audit.RESTRICTED in actions:
        return False
    return any(c in _guardian_categories(confidential_bookings)
               for c in audit.categories_of(event))


def client_document(account: Account, document_id: uuid.UUID) -> Document | None:
    for subject in subjects(account):
        for document in subject.documents:
            if document.id == document_id:
                return document
    return None


# -- the access log as visits -------------------------------------------------------------
# One access event is one staff request's visit to one client's data. Pages show them
# newest first, grouped by person and day, in words; each page costs the same statements
# however long the history (one count, one page of events, one query each for the names
# and the break-glass reasons on that page). Words are lazy (_l): the case file's page is
# built by the service and its words drawn in the reader's language by the template.
VISITS_PER_PAGE = 25
COUNT_UP_TO = 1000


def category_label(code: str) -> str:
    """The catalogue's words for an access-log category (one list for the log and "my
    data")."""
    return catalogue.BY_COLUMN["access_events.category"].values.get(code, _l("other data"))


# The categories a person may pick in the access log's filter.
FILTER_CATEGORIES = (audit.CONTACT, audit.BOOKINGS, audit.HOUSEHOLD, audit.DOCUMENTS,
                     audit.NOTES, audit.CASE_FILE, audit.CONSENTS, audit.MESSAGES,
                     audit.ACCESS_LOG)


def role_label(role: str) -> str | None:
    return policy.ROLE_NAMES.get(role)


def _summary(event: AccessEvent) -> str:
    """What was done, as a sentence without its subject ("opened the file")."""
    actions = set(audit.actions_of(event))
    categories = set(audit.categories_of(event))
    whole = {audit.INVITATION: _l("sent an invitation to an account of their own"),
             audit.INVITATION_WITHDRAWN: _l("withdrew an invitation to an account of their own"),
             audit.HANDOVER: _l("confirmed in person that the young person holds their own "
                               "account"),
             audit.RECOVERY_STARTED: _l("started a recovery of the account after checking "
                                        "the identity in person"),
             audit.RECOVERY_CANCELLED: _l("cancelled a recovery of the account"),
             audit.PURGE: _l("deleted data because the retention period ended")}
    for action, sentence in whole.items():
        if action in actions:
            return sentence
    if audit.BREAK_GLASS in actions:
        return _l("opened the file in an emergency")
    if audit.RESTRICTED in actions:
        return _l("opened the restricted file, giving a reason")
    if audit.SEARCH in actions:
        return _l("found in a staff search")
    if audit.NAMED in actions and not actions - {audit.NAMED, audit.VIEW}:
        if event.grant_id is not None:
            return _l("saw the name during an emergency opening of a household member's file")
        return _l("saw the name in the file of a household member")
    if audit.EXPORT in categories:
        return _l("downloaded all data")
    if event.purpose == audit.MESSAGE_WORK:
        if audit.DOWNLOAD in actions:
            return _l("downloaded a file sent with a message")
        if audit.CHANGE in actions:
            return _l("answered a message")
        return _l("read messages")
    purpose = {audit.OPEN_FILE: _l("opened the file"),
               audit.BOOKING_LISTS: _l("looked at the appointment lists"),
               audit.BOOKING_DECISION: _l("answered an appointment request"),
               audit.CONSENT_WORK: _l("worked on consents"),
               audit.CORRECTION_WORK: _l("answered a correction request"),
               audit.ERASURE_WORK: _l("decided on a deletion request"),
               audit.REVIEW: _l("checked an emergency opening"),
               audit.ACCOUNT_RECOVERY: _l("looked at a recovery of the account")
               }.get(event.purpose)
    if purpose:
        return purpose
    if audit.DOWNLOAD in actions:
        return _l("downloaded a document")
    if audit.CHANGE in actions:
        return _l("changed data")
    return _l("looked at data")


@dataclass
class Visit:
    at: datetime  # UTC; pages format it in the organisation's time zone
    who: str
    role: str | None  # translated, for staff
    summary: str  # translated: "opened the file"
    categories: list[str]  # translated: ["contact data", "appointments"]
    subject: str  # whose data: the client's name
    is_self: bool
    reason: str | None  # the break-glass reason given
    emergency: bool
    staff_member_id: uuid.UUID | None


@dataclass
class VisitGroup:
    """Consecutive visits of one person on one day to one person's data."""

    who: str
    role: str | None
    day: datetime
    subject: str
    is_self: bool
    visits: list[Visit]


@dataclass
class VisitPage:
    groups: list[VisitGroup]
    page: int
    pages: int
    total: int | None  # None where pages go by "newer"/"older" and nothing is counted
    people: list[tuple[str, str]]  # (filter value, name) of staff who looked
    categories: list[tuple[str, str]]  # (filter value, label)
    # Paging by position (``visits_page``): the first and the last visit of this page, for
    # the links to the newer and the older visits; None where there are none.
    newer: str | None = None
    older: str | None = None
    # Paging by position: how many visits match, counted up to COUNT_UP_TO (beyond that
    # the page says "more than"): a bounded cost however long the history.
    counted: int | None = None

    @property
    def more_than_counted(self) -> bool:
        return self.counted is not None and self.counted > COUNT_UP_TO

    @property
    def visits(self) -> list[Visit]:
        return [visit for group in self.groups for visit in group.visits]


@dataclass
class _Scope:
    client: Client
    is_self: bool
    # None: everything; otherwise the categories a guardian may see of a dependant.
    categories: tuple[str, ...] | None


def _scopes(account: Account) -> list[_Scope]:
    scopes = []
    own = household.own_client(account)
    if own is not None:
        scopes.append(_Scope(own, True, None))
    dependants = household.visible_dependants(account, need=ACCESS_FULL)
    confidential = set(db.session.scalars(
        select(Booking.client_id).where(Booking.client_id.in_([c.id for c in dependants]))
        .where(Booking.confidential_from_guardians.is_(True)))) if dependants else set()
    scopes += [_Scope(c, False, _guardian_categories(c.id in confidential))
               for c in dependants]
    return scopes


def _condition(scope: _Scope):
    condition = AccessEvent.client_id == scope.client.id
    if scope.categories is None:
        return condition
    return and_(condition, AccessEvent.grant_id.is_(None),
                not_(AccessEvent.action.contains(audit.BREAK_GLASS)),
                not_(AccessEvent.action.contains(audit.RESTRICTED)),
                or_(*[AccessEvent.category.contains(c) for c in scope.categories]))


def visits_page(account: Account, *, older: str = "", newer: str = "", person: str = "",
                category: str = "", per_page: int = VISITS_PER_PAGE) -> VisitPage:
    """One page of the visits to the account's own data and its dependants' (what a
    guardian may see of them), filtered by staff member and category: the newest, or
    those just older or newer than the visit ``older``/``newer`` names. Nothing is
    counted and nothing skipped, so a page costs the same with 1,000 or 50,000 visits."""
    return _page(_scopes(account), page=None, person=person, category=category,
                 per_page=per_page, cursor=_cursor(older or newer), newer=not older)


def file_visits_page(client: Client, *, page: int = 1,
                     per_page: int = VISITS_PER_PAGE) -> VisitPage:
    """The client's own access log as staff see it in the case file (everything)."""
    return _page([_Scope(client, True, None)], page=page, person="", category="",
                 per_page=per_page)


def recent_visits(account: Account, limit: int = 3) -> list[Visit]:
    """The latest visits by staff to the account's data (and its dependants'), for the
    home page."""
    scopes = _scopes(account)
    if not scopes:
        return []
    return _page(scopes, page=None, person="", category="", per_page=limit,
                 staff_only=True, filters=False).visits


def _cursor(value: str) -> AccessEvent | None:
    """The visit a "newer"/"older" link names (its event id); None for the first page."""
    try:
        return db.session.get(AccessEvent, uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _named():
    return case((AccessEvent.action.contains(audit.NAMED), 1), else_=0)


def _after(event: AccessEvent, *, older: bool):
    """The visits after ``event`` in the page order (newest first; of one request, the
    file opened before the relatives it named; then by sequence and client), or before
    it (``older=False``), as a condition an index on (client, time) serves."""
    named = 1 if audit.NAMED in audit.actions_of(event) else 0
    # (column, its value at the cursor, does the page order go down it?), most significant
    # first; "after" is lexicographic on these keys.
    keys = [(AccessEvent.created_at, event.created_at, True), (_named(), named, False),
            (AccessEvent.seq, event.seq, True), (AccessEvent.client_id, event.client_id, False)]
    condition = None
    for column, value, descending in reversed(keys):
        beyond = column < value if descending == older else column > value
        condition = beyond if condition is None else or_(beyond, and_(column == value,
                                                                      condition))
    bound = (AccessEvent.created_at <= event.created_at if older
             else AccessEvent.created_at >= event.created_at)
    return and_(bound, condition)


def _ordered(query, *, newest_first: bool = True):
    if newest_first:
        return query.order_by(AccessEvent.created_at.desc(), _named(), AccessEvent.seq.desc(),
                              AccessEvent.client_id)
    return query.order_by(AccessEvent.created_at, _named().desc(), AccessEvent.seq,
                          AccessEvent.client_id.desc())


def _page(scopes: list[_Scope], *, page: int | None, person: str, category: str,
          per_page: int, staff_only: bool = False, filters: bool = True,
          cursor: AccessEvent | None = None, newer: bool = False) -> VisitPage:
    """A page by number (``page``: counted, for the case file) or by position (``page``
    None: the newest, or those after or before ``cursor``; nothing counted)."""
    categories = [(c, category_label(c)) for c in FILTER_CATEGORIES]
    if not scopes:
        return VisitPage([], 1, 1, 0 if page is not None else None, [], categories)
    where = or_(*[_condition(scope) for scope in scopes])
    people_ids = set(db.session.scalars(
        select(AccessEvent.staff_member_id).distinct().where(where)
        .where(AccessEvent.staff_member_id.is_not(None)))) if filters else set()
    filtered = where
    if person:
        chosen = next((p for p in people_ids if str(p) == person), None)
        filtered = and_(filtered, AccessEvent.staff_member_id == chosen) \
            if chosen is not None else false()
    if category in FILTER_CATEGORIES:
        filtered = and_(filtered, AccessEvent.category.contains(category))
    if staff_only:
        filtered = and_(filtered, AccessEvent.staff_member_id.is_not(None))
    if cursor is not None and cursor.client_id not in {scope.client.id for scope in scopes}:
        cursor = None
    first = last = counted = None
    if page is not None:
        total = db.session.scalar(select(func.count()).select_from(AccessEvent)
                                  .where(filtered))
        pages = max(1, -(-total // per_page))
        page = min(max(page, 1), pages)
        # Newest first; of one request, the file opened before the relatives it named.
        events = list(db.session.scalars(_ordered(select(AccessEvent).where(filtered))
                                         .limit(per_page).offset((page - 1) * per_page)))
    else:
        total, page, pages = None, 1, 1
        counted = db.session.scalar(select(func.count()).select_from(
            select(AccessEvent.id).where(filtered).limit(COUNT_UP_TO + 1).subquery())) \
            if filters else None
        events = []
        if cursor is not None and newer:
            # The visits just newer than the cursor, nearest first; fewer than a page
            # left: the first page instead.
            events = list(db.session.scalars(
                _ordered(select(AccessEvent).where(filtered, _after(cursor, older=False)),
                         newest_first=False).limit(per_page + 1)))
            if len(events) > per_page:
                events = events[:per_page][::-1]
                first, last = events[0], events[-1]
            else:
                cursor, events = None, []
        if not events:
            older = [_after(cursor, older=True)] if cursor is not None else []
            events = list(db.session.scalars(
                _ordered(select(AccessEvent).where(filtered, *older)).limit(per_page + 1)))
            first = events[0] if cursor is not None and events else None
            last = events[per_page - 1] if len(events) > per_page else None
            events = events[:per_page]
    wanted = people_ids | {e.staff_member_id for e in events if e.staff_member_id}
    staff = {m.id: m for m in db.session.scalars(
        select(StaffMember).where(StaffMember.id.in_(wanted)))} if wanted else {}
    grant_ids = {e.grant_id for e in events if e.grant_id}
    grants = {g.id: g for g in db.session.scalars(
        select(BreakGlassGrant).where(BreakGlassGrant.id.in_(grant_ids)))} if grant_ids else {}
    by_client = {scope.client.id: scope for scope in scopes}
    visits: list[Visit] = []
    previous = None
    for event in events:
        visit = _visit(event, by_client[event.client_id], staff, grants)
        if previous is not None and _same_request(previous, event):
            # Events from before 0012 were written one per category: one visit again.
            visits[-1].categories += [c for c in visit.categories
                                      if c not in visits[-1].categories]
        else:
            visits.append(visit)
        previous = event
    people = sorted(((str(i), staff[i].name or "?") for i in people_ids if i in staff),
                    key=lambda p: p[1].lower())
    return VisitPage(_grouped(visits), page, pages, total, people, categories,
                     newer=str(first.id) if first is not None else None,
                     older=str(last.id) if last is not None else None,
                     counted=counted)


def _same_request(one: AccessEvent, other: AccessEvent) -> bool:
    return (one.purpose is None and other.purpose is None
            and (one.client_id, one.staff_member_id, one.role, one.grant_id, one.created_at)
            == (other.client_id, other.staff_member_id, other.role, other.grant_id,
                other.created_at)
            and audit.SEARCH not in audit.actions_of(one) + audit.actions_of(other))


def _visit(event: AccessEvent, scope: _Scope, staff: dict, grants: dict) -> Visit:
    member = staff.get(event.staff_member_id)
    if member is not None:
        who = member.name or "?"
    elif audit.EXPORT in audit.categories_of(event):
        who = _l("Account holder")
    elif event.role == audit.GUARDIAN:
        who = _l("A parent or guardian")
    else:
        who = "Einblick"
    order = {code: n for n, code in enumerate(FILTER_CATEGORIES)}
    codes = sorted(audit.categories_of(event), key=lambda c: order.get(c, len(order)))
    if scope.categories is not None:
        codes = [c for c in codes if c in scope.categories]
    grant = grants.get(event.grant_id)
    actions = audit.actions_of(event)
    return Visit(
        at=event.created_at, who=who,
        role=role_label(event.role) if member is not None else None,
        summary=_summary(event),
        categories=[category_label(c) for c in codes if c != audit.EXPORT],
        subject=scope.client.full_name or "?", is_self=scope.is_self,
        # The reason was given for the file opened: it is that person's, not the
        # relatives' whose names the file shows (nor their caseworkers').
        reason=(grant.reason if grant is not None and grant.client_id == event.client_id
                and scope.categories is None else None),
        emergency=event.grant_id is not None or audit.BREAK_GLASS in actions
        or audit.RESTRICTED in actions,
        staff_member_id=event.staff_member_id)


def _grouped(visits: list[Visit]) -> list[VisitGroup]:
    groups: list[VisitGroup] = []
    for visit in visits:
        day = _local_day(visit.at)
        last = groups[-1] if groups else None
        if last is not None and (last.who, last.role, _local_day(last.day), last.subject) == (
                visit.who, visit.role, day, visit.subject):
            last.visits.append(visit)
        else:
            groups.append(VisitGroup(visit.who, visit.role, visit.at, visit.subject,
                                     visit.is_self, [visit]))
    return groups


def _local_day(at: datetime):
    from flask_babel import to_user_timezone

    return to_user_timezone(at).date()
