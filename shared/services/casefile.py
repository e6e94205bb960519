"""The case file: who may see what, search through blind indexes, documents, notes,
break-glass. Every read or change of a client's data by staff is written to the access
log by the function that does it."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import filetype
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import literal, select
from sqlalchemy.orm import joinedload

from shared import audit, paging, policy, security_log
from shared.config import DEFAULT_LOCALE
from shared.extensions import db
from shared.models.accounts import CLIENT, Account
from shared.models.audit import AccessEvent
from shared.models.base import current_keyring, utcnow
from shared.models.bookings import CONFIRMED, Booking
from shared.models.casefile import Assignment, BreakGlassGrant, Document, Note
from shared.models.clients import Client, ClientNameToken
from shared.models.household import Guardianship
from shared.models.staff import StaffMember
from shared.services import household, transparency
from shared.services.accounts import name_tokens
from shared.services.staff import active_members
from shared.validation import InvalidEmail, InvalidPhone, normalise_email, normalise_phone

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
NOTE_EDIT_WINDOW = timedelta(hours=24)
ALLOWED_TYPES = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/heic": "heic",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/msword": "doc",
}
# Other spellings of a type's extension that a name may keep as it is.
_EXTENSION_SPELLINGS = {"image/jpeg": ("jpeg", "jpe"), "image/heic": ("heif",)}
# Dropped from names: path separators, quotes, and what Windows cannot store.
_NAME_DROPPED = set('"\'`<>:|?*')
MAX_NAME_CHARS = 200
DOCUMENT_CATEGORIES = ("application", "certificate", "correspondence", "report", "other")

# What a role sees of a file (FULL, CONTACT, MANAGE): shared/policy.py says, per role and
# per kind of data.
FULL = policy.FULL
CONTACT = policy.CONTACT
MANAGE = policy.MANAGE


class CaseFileError(Exception):
    pass


class NoAccess(CaseFileError):
    """Not this client, or not this part of the file (404 to the outside)."""


class NeedsBreakGlass(CaseFileError):
    """A caseworker opens an unassigned file: a typed reason is needed first."""


class BreakGlassNotAllowed(NoAccess):
    """This role opens this file without a reason or not at all (admins give one only for a
    restricted file): the page is refused (403), the client exists."""


class DocumentRejected(CaseFileError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "too-large" | "type" | "empty"


class NoteLocked(CaseFileError):
    """Older than 24 hours, or not the author's: write a correction instead."""


class ReasonTooShort(CaseFileError):
    """A reason of a few words is needed (break-glass, an invitation)."""


class StaffAddress(CaseFileError):
    """An invitation to the address of a staff account: never, whoever's it is."""


class AddressTaken(CaseFileError):
    """An invitation to an address that already has an account: nothing was created or
    sent to the young person (the address's owner gets a neutral note)."""


class NothingToConfirm(CaseFileError):
    """No own account whose hand-over waits for a confirmation in person."""


class InvitationNotAccepted(CaseFileError):
    """The invitation link has not been used yet: nobody holds the account so far."""


class OwnInvitation(CaseFileError):
    """The staff member who sent an invitation cannot confirm its hand-over."""


MIN_REASON_LENGTH = 10


@dataclass(frozen=True)
class FileAccess:
    level: str
    grant_id: uuid.UUID | None = None

    @property
    def notes_and_documents(self) -> bool:
        """The full file: what only it may do (invite, write notes) is allowed too."""
        return (policy.may_read(self.level, policy.NOTES)
                and policy.may_read(self.level, policy.DOCUMENTS))


def get_client(client_id: uuid.UUID) -> Client:
    client = db.session.get(Client, client_id)
    if client is None:
        raise NoAccess
    return client


def is_assigned(member: StaffMember, client_id: uuid.UUID) -> bool:
    return db.session.scalar(
        select(Assignment.id).where(Assignment.client_id == client_id)
        .where(Assignment.staff_member_id == member.id)
    ) is not None


def _appointment_window() -> timedelta:
    return timedelta(days=current_app.extensions["einblick"].config.appointment_file_days)


def _with_appointment(member: StaffMember):
    """The clients with a confirmed appointment with ``member`` whose file it opens: from
    the confirmation until the configured days after the appointment's end.

    Read from the booking itself rather than stored as a grant: a cancelled appointment
    or a moved end moves the access with it, and nothing is left to expire or clean up."""
    return (select(Booking.client_id).where(Booking.staff_member_id == member.id)
            .where(Booking.status == CONFIRMED)
            .where(Booking.end_at > utcnow() - _appointment_window()))


def has_appointment(member: StaffMember, client_id: uuid.UUID) -> bool:
    """Whether a confirmed appointment with ``member`` opens this client's file to them
    without a reason (``policy.APPOINTMENT_FILES``): the caseworker a client booked with
    prepares and follows up without "an emergency" in the client's access log."""
    if not policy.may(member.role, policy.APPOINTMENT_FILES):
        return False
    return db.session.scalar(
        _with_appointment(member).where(Booking.client_id == client_id).limit(1)
    ) is not None


def appointment_file_until(*, member: StaffMember, booking: Booking) -> datetime | None:
    """Until when this confirmed appointment opens its client's file to ``member`` without
    a reason; None when it does not (another's appointment, a role without the ability)."""
    if booking.status != CONFIRMED or booking.staff_member_id != member.id \
            or not policy.may(member.role, policy.APPOINTMENT_FILES):
        return None
    return booking.end_at + _appointment_window()


def openable_among(*, member: StaffMember, client_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Of these clients (a booking list), those whose file ``member`` opens without a
    reason, for the roles whose booking lists link to files (one statement)."""
    if not client_ids or not policy.may(member.role, policy.LINK_FILES_FROM_BOOKINGS) \
            or policy.level_for(member.role) is None:
        return set()
    unrestricted = select(Client.id).where(Client.id.in_(client_ids)) \
        .where(Client.restricted_at.is_(None))
    if policy.may(member.role, policy.ASSIGNED_FILES_ONLY):
        opened = select(Assignment.client_id).where(Assignment.staff_member_id == member.id)
        if policy.may(member.role, policy.APPOINTMENT_FILES):
            opened = opened.union(_with_appointment(member))
        unrestricted = unrestricted.where(Client.id.in_(opened))
    return set(db.session.scalars(unrestricted))


def live_grant(member: StaffMember, client_id: uuid.UUID,
               session_id: uuid.UUID | None) -> BreakGlassGrant | None:
    if session_id is None:
        return None
    return db.session.scalar(
        select(BreakGlassGrant).where(BreakGlassGrant.client_id == client_id)
        .where(BreakGlassGrant.staff_member_id == member.id)
        .where(BreakGlassGrant.session_id == session_id)
        .order_by(BreakGlassGrant.created_at.desc()).limit(1)
    )


def access_for(member: StaffMember, client_id: uuid.UUID,
               session_id: uuid.UUID | None) -> FileAccess:
    """The part of a client's file this staff member may open in this session: the
    level the policy gives the role, once the file is open to them at all."""
    level = policy.level_for(member.role)
    if level is None:
        raise NoAccess
    client = get_client(client_id)
    if client.anonymous_at is not None:
        # An anonymous contact has no file: staff meet them in the messages only, and
        # nothing is linked to them (shared/services/anonymous.py).
        raise NoAccess
    restricted_at = client.restricted_at
    if restricted_at is not None:
        # Restricted after an erasure request (§ 84 SGB X): nobody opens it in everyday
        # work; the roles the policy allows may, with a reason that is logged and
        # reviewed, given after the restriction (an earlier emergency grant does not count).
        if not policy.may(member.role, policy.OPEN_RESTRICTED):
            raise NoAccess
        grant = live_grant(member, client_id, session_id)
        if grant is None or grant.created_at < restricted_at:
            raise NeedsBreakGlass
        return FileAccess(level, grant.id)
    if not policy.may(member.role, policy.ASSIGNED_FILES_ONLY) or is_assigned(
            member, client_id) or has_appointment(member, client_id):
        return FileAccess(level)
    grant = live_grant(member, client_id, session_id)
    if grant is None:
        raise NeedsBreakGlass
    return FileAccess(level, grant.id)


def break_glass_client(*, member: StaffMember, client_id: uuid.UUID) -> Client:
    """The client whose file ``member`` asks to open with a reason, if their role may:
    an unassigned file (``policy.BREAK_GLASS``) or a restricted one (``OPEN_RESTRICTED``).
    ``NoAccess`` for an unknown client, ``BreakGlassNotAllowed`` for the wrong role."""
    client = get_client(client_id)
    ability = policy.OPEN_RESTRICTED if client.restricted_at is not None else policy.BREAK_GLASS
    if not policy.may(member.role, ability):
        raise BreakGlassNotAllowed
    return client


def break_glass(*, member: StaffMember, client_id: uuid.UUID, session_id: uuid.UUID,
                reason: str) -> BreakGlassGrant:
    """Open an unassigned file for this session only; flagged for admin review and shown
    to the client with the reason."""
    reason = _typed_reason(reason)
    client = break_glass_client(member=member, client_id=client_id)
    grant = BreakGlassGrant(client_id=client.id, data_key=client.data_key,
                            staff_member_id=member.id, session_id=session_id)
    grant.reason = reason
    db.session.add(grant)
    db.session.flush()
    audit.record_access(client_id=client.id, staff_member=member, category=audit.CASE_FILE,
                        action=audit.RESTRICTED if client.restricted_at else audit.BREAK_GLASS,
                        grant_id=grant.id)
    db.session.commit()
    security_log.record("break_glass.opened", account=member.account)
    return grant


def _typed_reason(reason: str | None) -> str:
    reason = " ".join((reason or "").split())
    if len(reason) < MIN_REASON_LENGTH:
        raise ReasonTooShort
    return reason[:500]


def unreviewed_grants(*, admin: StaffMember, page: int = 1) -> paging.Page:
    """A page of grants to review, the oldest first, with their clients; reading their
    reasons is logged for each client on the page."""
    if not policy.may(admin.role, policy.REVIEW_BREAK_GLASS):
        raise NoAccess

    def log(client_ids: list) -> None:
        for client_id in client_ids:
            audit.record_access(client_id=client_id, staff_member=admin,
                                category=audit.ACCESS_LOG)

    return paging.logged_page(
        select(BreakGlassGrant).where(BreakGlassGrant.reviewed_at.is_(None))
        .order_by(BreakGlassGrant.created_at, BreakGlassGrant.id), BreakGlassGrant, page, log)


def review_grant(*, admin: StaffMember, grant_id: uuid.UUID) -> None:
    if not policy.may(admin.role, policy.REVIEW_BREAK_GLASS):
        raise NoAccess
    grant = db.session.get(BreakGlassGrant, grant_id)
    if grant is None:
        raise NoAccess
    grant.reviewed_at = utcnow()
    grant.reviewed_by_id = admin.id
    db.session.commit()


# -- a young person's own account ----------------------------------------------------------
def invite_own_account(*, member: StaffMember, client_id: uuid.UUID,
                       session_id: uuid.UUID | None, email: str, reason: str) -> None:
    """Staff invite a young person (from the organisation's age) to an account of their
    own, so that nobody on staff gains a portal view of them through it.

    Needs the access of the full file (an assigned caseworker, or break-glass) and a typed
    reason; never to the address of a staff account, also not with a sub-address
    (``household.staff_account_for``). The reason becomes a note that the young person and
    their guardians read, the access log names the sender (who therefore cannot confirm
    the hand-over), and each guardian is emailed. The account sees nothing of the young
    person until another staff member confirms in person that the young person holds it
    (``confirm_handover``); until then it can be withdrawn (``withdraw_invitation``).

    When the address already has an account, nothing is created and ``AddressTaken`` says
    so. Unlike a guardian's invitation, this is no enumeration: the caseworker holds the
    full file and finds client addresses through the staff search anyway, and must know
    that nothing was sent."""
    _require_full(member, client_id, session_id)
    reason = _typed_reason(reason)
    if household.staff_account_for(email) is not None:
        security_log.record("invitation.sent", outcome=security_log.REFUSED,
                            account=member.account)
        raise StaffAddress
    client = get_client(client_id)
    new = household.create_own_account(child=client, email=email,
                                       invited_by=household.INVITED_BY_STAFF,
                                       locale=DEFAULT_LOCALE)
    if new is None:
        db.session.commit()
        security_log.record("invitation.sent", outcome=security_log.REFUSED,
                            account=member.account)
        raise AddressTaken
    address = household.masked_address(email)
    note = Note(client_id=client.id, data_key=client.data_key, author_id=member.id,
                visible_to_client=True, confidential_from_guardians=False)
    with force_locale(DEFAULT_LOCALE):  # the file's language, whoever reads it later
        note.body = _("Invitation to an account of their own sent to %(address)s. "
                      "Reason: %(reason)s", address=address, reason=reason)
    db.session.add(note)
    # Without the break-glass grant, if any: guardians see this line (the reason for the
    # break-glass itself stays with the young person).
    audit.record_access(client_id=client.id, staff_member=member, category=audit.HOUSEHOLD,
                        action=audit.INVITATION)
    guardians = household.guardians_of(client)
    db.session.commit()
    new.send()
    household.tell_guardians(guardians, template="invitation_by_staff",
                             subject=_l("Our team invited a young person in your household"),
                             address=address)
    security_log.record("invitation.sent", account=member.account)


def invitable_among(*, member: StaffMember, clients: list[Client]) -> set[uuid.UUID]:
    """Of these clients (an appointment list), those ``member`` could invite to an account
    of their own from the file: none unless their role holds the full file, which the
    invitation needs (with a reason)."""
    if policy.level_for(member.role) != FULL:
        return set()
    return {client.id for client in clients if household.invitable(client)}


def invitation_sender(client_id: uuid.UUID) -> uuid.UUID | None:
    """The staff member who last invited this client to an account of their own, as the
    access log (append-only, hash-chained) records it."""
    return db.session.scalar(
        select(AccessEvent.staff_member_id).where(AccessEvent.client_id == client_id)
        .where(AccessEvent.action == audit.INVITATION)
        .order_by(AccessEvent.seq.desc()).limit(1))


def confirm_handover(*, member: StaffMember, client_id: uuid.UUID,
                     session_id: uuid.UUID | None) -> Account:
    """A caseworker met the young person and checked that they hold their own account:
    from now on it sees their data (also what is confidential from guardians) and decides
    what guardians see. Not the staff member who sent the invitation; every guardian is
    told, so that two staff members working together are seen at least."""
    # The event carries no break-glass grant, so that guardians see it too.
    _require_full(member, client_id, session_id)
    account = get_client(client_id).account
    if not household.handover_pending(account):
        raise NothingToConfirm
    if account.email_confirmed_at is None:
        raise InvitationNotAccepted
    if account.invited_by == household.INVITED_BY_STAFF and invitation_sender(
            client_id) in (None, member.id):
        security_log.record("invitation.confirmed", outcome=security_log.REFUSED,
                            account=member.account)
        raise OwnInvitation
    account.handover_confirmed_at = utcnow()
    audit.record_access(client_id=client_id, staff_member=member, category=audit.HOUSEHOLD,
                        action=audit.HANDOVER)
    guardians = household.guardians_of(account.client)
    db.session.commit()
    household.tell_guardians(
        guardians, template="handover_confirmed",
        subject=_l("A young person in your household now has their own account"))
    security_log.record("invitation.confirmed", account=member.account)
    return account


def withdraw_invitation(*, member: StaffMember, client_id: uuid.UUID,
                        session_id: uuid.UUID | None) -> None:
    """Staff with the full file withdraw an open invitation (``household.withdraw_invitation``):
    for a wrong address, or an account nobody confirmed. Logged without a break-glass
    grant (guardians see it) and told to every guardian."""
    _require_full(member, client_id, session_id)
    client = get_client(client_id)
    try:
        household.withdraw_invitation(child=client)
    except household.NothingToWithdraw:
        security_log.record("invitation.withdrawn", outcome=security_log.REFUSED,
                            account=member.account)
        raise
    audit.record_access(client_id=client.id, staff_member=member, category=audit.HOUSEHOLD,
                        action=audit.INVITATION_WITHDRAWN)
    guardians = household.guardians_of(client)
    db.session.commit()
    household.tell_invitation_withdrawn(guardians, by=household.WITHDRAWN_BY_STAFF)
    security_log.record("invitation.withdrawn", account=member.account)


# -- search ------------------------------------------------------------------------------
SEARCH_LIMIT = 25  # clients one search shows; more found: the staff member narrows it


@dataclass(frozen=True)
class SearchResult:
    clients: list[Client]  # by name
    more: bool  # more than SEARCH_LIMIT matched: only these are shown (and logged)


def search(*, member: StaffMember, query: str, birth_date: date | None = None) -> SearchResult:
    """Exact search by email, phone or name tokens (every word given, optionally with the
    birth date), only through blind indexes. At most SEARCH_LIMIT clients are shown, and
    only those are logged: a common first name does not write an access event into
    hundreds of files. The same statements however many match: which ones (one query),
    the log (committed), then the clients shown."""
    keyring = current_keyring()
    query = (query or "").strip()
    # Anonymous contacts are never found (they have no file; an address added later for
    # notifications must not lead to them).
    matching = select(Client.id).where(Client.restricted_at.is_(None)) \
        .where(Client.anonymous_at.is_(None))
    if "@" in query:
        try:
            email = normalise_email(query)
        except InvalidEmail:
            email = query
        matching = matching.join(Account, Client.account_id == Account.id) \
            .where(Account.kind == CLIENT) \
            .where(Account.email_bidx == keyring.blind_index("accounts.email", email))
    elif sum(ch.isdigit() for ch in query) >= 6:
        try:
            phone = normalise_phone(query)
        except InvalidPhone:
            return SearchResult([], False)
        matching = matching.where(
            Client.phone_bidx == keyring.blind_index("clients.phone", phone))
    else:
        tokens = name_tokens(query)
        if not tokens:
            return SearchResult([], False)
        for token in tokens:  # a client with every word of the query
            if birth_date is not None:
                clause = ClientNameToken.token_birth_bidx == keyring.blind_index(
                    "clients.name_token_birth", f"{token}|{birth_date.isoformat()}")
            else:
                clause = ClientNameToken.token_bidx == keyring.blind_index(
                    "clients.name_token", token)
            matching = matching.where(Client.id.in_(
                select(ClientNameToken.client_id).where(clause)))
    ids = list(db.session.scalars(matching.order_by(Client.id).limit(SEARCH_LIMIT + 1)))
    more, ids = len(ids) > SEARCH_LIMIT, ids[:SEARCH_LIMIT]
    for client_id in sorted(ids, key=str):
        audit.record_access(client_id=client_id, staff_member=member, category=audit.CONTACT,
                            action=audit.SEARCH)
    db.session.commit()
    clients = list(db.session.scalars(select(Client).where(Client.id.in_(ids)))) if ids else []
    return SearchResult(sorted(clients, key=lambda c: (c.full_name or "").casefold()), more)


# -- the file ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OwnAccountState:
    """How a client's own account came about, as the file shows it in words."""

    invited_by: str | None  # household.INVITED_BY_*, None: registered themselves
    invited_at: datetime
    accepted: bool  # the invitation link was used
    confirmed_at: datetime | None  # hand-over confirmed in person
    sent_by_viewer: bool  # the staff member looking at the file sent the invitation

    @property
    def pending(self) -> bool:
        return self.invited_by is not None and self.confirmed_at is None


@dataclass
class CaseFile:
    client: Client
    access: FileAccess
    guardians: list[Guardianship]
    dependants: list[Guardianship]
    bookings: paging.Page  # each list a page at a time, newest first (FILE_LIST rows)
    documents: paging.Page
    notes: paging.Page
    assignments: list[Assignment]
    events: transparency.VisitPage | None  # None: the member's level does not show it
    own_account: OwnAccountState | None = None
    invitable: bool = False  # old enough for an account of their own, none yet or invited
    invitation_open: bool = False  # sent and not yet confirmed: it can be withdrawn
    invited_at: datetime | None = None  # when the (open or used) invitation was sent


_NOTHING = paging.Page([], 1, 1, 0)


def _own_account_state(client: Client, member: StaffMember) -> OwnAccountState | None:
    account = client.account
    if account is None:
        return None
    return OwnAccountState(
        invited_by=account.invited_by,
        invited_at=client.own_account_invited_at or account.created_at,
        accepted=account.email_confirmed_at is not None,
        confirmed_at=account.handover_confirmed_at,
        sent_by_viewer=(account.invited_by == household.INVITED_BY_STAFF
                        and invitation_sender(client.id) == member.id))


# Rows of each of the file's own lists (notes, documents, appointments) on one page: a
# client of many years has hundreds; the page shows the newest and leads to older ones.
FILE_LIST = 20


def open_file(*, member: StaffMember, client_id: uuid.UUID,
              session_id: uuid.UUID | None, log_page: int = 1,
              list_pages: dict[str, int] | None = None) -> CaseFile:
    """Load the parts of the file the member may see, and log each category read.

    The log is committed first and the file loaded afterwards, each list a page at a time
    (``list_pages``: the page of "notes", "documents" and "bookings", 1 when not given)
    in two statements, its count and its rows with what they name (service, staff member,
    author, uploader): rows loaded before the commit would be expired by it and read
    again one by one while the page is drawn."""
    list_pages = list_pages or {}
    access = access_for(member, client_id, session_id)
    full = access.notes_and_documents
    _log_file_read(member, client_id, access)
    db.session.commit()
    client = db.session.scalar(select(Client).where(Client.id == client_id)
                               .options(joinedload(Client.account)))
    guardians = list(db.session.scalars(
        select(Guardianship).where(Guardianship.dependant_id == client.id)
        .options(joinedload(Guardianship.guardian))))
    dependants = []
    if client.account_id:
        dependants = list(db.session.scalars(
            select(Guardianship).where(Guardianship.guardian_account_id == client.account_id)
            .options(joinedload(Guardianship.dependant))))
    return CaseFile(
        client=client,
        access=access,
        guardians=guardians,
        dependants=dependants,
        bookings=paging.paged(
            select(Booking).where(Booking.client_id == client.id)
            .order_by(Booking.start_at.desc(), Booking.id), list_pages.get("bookings", 1),
            FILE_LIST),
        documents=paging.paged(
            select(Document).where(Document.client_id == client.id)
            .order_by(Document.created_at.desc(), Document.id), list_pages.get("documents", 1),
            FILE_LIST) if full else _NOTHING,
        notes=paging.paged(
            select(Note).where(Note.client_id == client.id)
            .order_by(Note.created_at.desc(), Note.id), list_pages.get("notes", 1),
            FILE_LIST) if full else _NOTHING,
        assignments=list(db.session.scalars(
            select(Assignment).where(Assignment.client_id == client.id))),
        events=(transparency.file_visits_page(client, page=log_page)
                if policy.may_read(access.level, policy.ACCESS_LOG) else None),
        own_account=(_own_account_state(client, member)
                     if policy.may_read(access.level, policy.ACCOUNT) else None),
        invitable=full and household.invitable(client),
        invitation_open=household.invitation_open(client),
        invited_at=client.own_account_invited_at,
    )


def _log_file_read(member: StaffMember, client_id: uuid.UUID, access: FileAccess) -> None:
    """Log each category of the file the member's level shows, and the household members
    the page names (a read of their contact data)."""
    # The access log's categories are kinds of data of the policy (same names).
    categories = [category for category in (audit.CONTACT, audit.BOOKINGS, audit.HOUSEHOLD,
                                            audit.ACCESS_LOG, audit.DOCUMENTS, audit.NOTES)
                  if policy.may_read(access.level, category)]
    for category in categories:
        audit.record_access(client_id=client_id, staff_member=member, category=category,
                            grant_id=access.grant_id)
    if policy.may_read(access.level, policy.HOUSEHOLD):
        guardians, dependants = _household(client_id)
        # Opened by break-glass: the dependants named read the reason in their own log too;
        # the guardians do not (a young person's emergency stays theirs).
        for other in sorted(dependants - {client_id}, key=str):
            audit.record_access(client_id=other, staff_member=member, category=audit.CONTACT,
                                action=audit.NAMED, grant_id=access.grant_id)
        for other in sorted(guardians - dependants - {client_id}, key=str):
            audit.record_access(client_id=other, staff_member=member, category=audit.CONTACT,
                                action=audit.NAMED)


def _household(client_id: uuid.UUID) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """The file's guardians who are clients, and its dependants (one statement)."""
    guardian_clients = select(Client.id, literal(True)).join(
        Guardianship, Guardianship.guardian_account_id == Client.account_id
    ).where(Guardianship.dependant_id == client_id)
    dependants = select(Guardianship.dependant_id, literal(False)).join(
        Client, Client.account_id == Guardianship.guardian_account_id
    ).where(Client.id == client_id)
    rows = db.session.execute(guardian_clients.union_all(dependants)).all()
    return ({c for c, is_guardian in rows if is_guardian},
            {c for c, is_guardian in rows if not is_guardian})


def _require_full(member: StaffMember, client_id: uuid.UUID,
                  session_id: uuid.UUID | None) -> FileAccess:
    access = access_for(member, client_id, session_id)
    if not access.notes_and_documents:
        raise NoAccess
    return access


def document_name(filename: str | None, mime: str) -> str:
    """The name a document is stored and offered under: the last path part only, without
    control characters (CR, LF, right-to-left overrides) or quotes, Unicode letters kept
    (composed), and ending in the extension of the type detected from the content, so
    "Zeugnis.pdf.exe" uploaded as a PDF becomes "Zeugnis.pdf"."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join("".join(map(_name_char, name)).split())
    right = (ALLOWED_TYPES[mime], *_EXTENSION_SPELLINGS.get(mime, ()))
    stem, extension = name, ALLOWED_TYPES[mime]
    # Drop extensions that claim another type ("Zeugnis.pdf.exe", "Foto.png" for a JPEG);
    # "Bericht v1.2" keeps its ".2", which names no type.
    while "." in stem:
        base, last = stem.rsplit(".", 1)
        if last.lower() in right:
            stem, extension = base, last
            break
        if not (last.isalnum() and len(last) <= 5 and any(ch.isalpha() for ch in last)):
            break
        stem = base
    stem = stem.strip(" .")[:MAX_NAME_CHARS - len(extension) - 1].rstrip(" .")
    return f"{stem or 'document'}.{extension}"


def _name_char(ch: str) -> str:
    if ch in "\r\n\t":
        return " "  # a line break between two words leaves a space, not one long word
    if unicodedata.category(ch).startswith("C") or ch in _NAME_DROPPED:
        return ""
    return ch


def download_name(document: Document) -> str:
    """The name to offer a download under; also cleans names stored by older versions."""
    return document_name(document.filename, document.content_type)


def add_document(*, member: StaffMember, client_id: uuid.UUID, session_id: uuid.UUID | None,
                 filename: str, data: bytes, category: str, visible_to_client: bool,
                 confidential: bool) -> Document:
    access = _require_full(member, client_id, session_id)
    if not data:
        raise DocumentRejected("empty")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentRejected("too-large")
    kind = filetype.guess(data)  # by content, never by the name
    if kind is None or kind.mime not in ALLOWED_TYPES:
        raise DocumentRejected("type")
    client = get_client(client_id)
    document = Document(client_id=client.id, data_key=client.data_key,
                        category=category if category in DOCUMENT_CATEGORIES else "other",
                        content_type=kind.mime, size=len(data), uploaded_by_id=member.id,
                        visible_to_client=visible_to_client,
                        confidential_from_guardians=confidential)
    document.filename = document_name(filename, kind.mime)
    document.content = data
    db.session.add(document)
    audit.record_access(client_id=client.id, staff_member=member, category=audit.DOCUMENTS,
                        action=audit.CHANGE, grant_id=access.grant_id)
    db.session.commit()
    return document


def read_document(*, member: StaffMember, document_id: uuid.UUID,
                  session_id: uuid.UUID | None) -> Document:
    document = db.session.get(Document, document_id)
    if document is None:
        raise NoAccess
    access = _require_full(member, document.client_id, session_id)
    audit.record_access(client_id=document.client_id, staff_member=member,
                        category=audit.DOCUMENTS, action=audit.DOWNLOAD,
                        grant_id=access.grant_id)
    db.session.commit()
    return document


def add_note(*, member: StaffMember, client_id: uuid.UUID, session_id: uuid.UUID | None,
             body: str, visible_to_client: bool, confidential: bool,
             corrects_id: uuid.UUID | None = None) -> Note:
    if not policy.may(member.role, policy.WRITE_NOTES):
        raise NoAccess
    access = _require_full(member, client_id, session_id)
    body = (body or "").strip()
    if not body:
        raise CaseFileError("empty note")
    client = get_client(client_id)
    if corrects_id is not None:
        original = db.session.get(Note, corrects_id)
        if original is None or original.client_id != client.id:
            raise NoAccess
        # A correction is never more visible than what it corrects.
        confidential = confidential or original.confidential_from_guardians
        visible_to_client = visible_to_client and original.visible_to_client
    note = Note(client_id=client.id, data_key=client.data_key, author_id=member.id,
                visible_to_client=visible_to_client, confidential_from_guardians=confidential,
                corrects_id=corrects_id)
    note.body = body[:20000]
    db.session.add(note)
    audit.record_access(client_id=client.id, staff_member=member, category=audit.NOTES,
                        action=audit.CHANGE, grant_id=access.grant_id)
    db.session.commit()
    return note


def edit_note(*, member: StaffMember, note_id: uuid.UUID, session_id: uuid.UUID | None,
              body: str) -> Note:
    """Only the author, only within 24 hours; later, corrections are new notes."""
    note = db.session.get(Note, note_id)
    if note is None:
        raise NoAccess
    access = _require_full(member, note.client_id, session_id)
    if note.author_id != member.id or utcnow() - note.created_at > NOTE_EDIT_WINDOW:
        raise NoteLocked
    note.body = (body or "").strip()[:20000] or note.body
    note.updated_at = utcnow()
    audit.record_access(client_id=note.client_id, staff_member=member, category=audit.NOTES,
                        action=audit.CHANGE, grant_id=access.grant_id)
    db.session.commit()
    return note


def set_booking_confidential(*, member: StaffMember, booking_id: uuid.UUID,
                             session_id: uuid.UUID | None, confidential: bool) -> Booking:
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NoAccess
    access = _require_full(member, booking.client_id, session_id)
    booking.confidential_from_guardians = confidential
    audit.record_access(client_id=booking.client_id, staff_member=member,
                        category=audit.BOOKINGS, action=audit.CHANGE, grant_id=access.grant_id)
    db.session.commit()
    return booking


def assignable_staff(member: StaffMember) -> list[StaffMember]:
    """Whom ``member`` may name as a client's caseworker: the active staff whose role can
    be assigned, for a role that assigns; nobody for any other role."""
    if not policy.may(member.role, policy.ASSIGN_CASEWORKERS):
        return []
    return active_members(roles=policy.roles_with(policy.BE_ASSIGNED))


def assign(*, admin: StaffMember, client_id: uuid.UUID, staff_member_id: uuid.UUID) -> None:
    if not policy.may(admin.role, policy.ASSIGN_CASEWORKERS):
        raise NoAccess
    client = get_client(client_id)
    member = db.session.get(StaffMember, staff_member_id)
    if member is None or not policy.may(member.role, policy.BE_ASSIGNED):
        raise NoAccess
    if not is_assigned(member, client.id):
        db.session.add(Assignment(client_id=client.id, staff_member_id=member.id))
    audit.record_access(client_id=client.id, staff_member=admin, category=audit.CASE_FILE,
                        action=audit.CHANGE)
    db.session.commit()


def unassign(*, admin: StaffMember, assignment_id: uuid.UUID) -> uuid.UUID:
    """Remove an assignment; returns the client's id."""
    if not policy.may(admin.role, policy.ASSIGN_CASEWORKERS):
        raise NoAccess
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None:
        raise NoAccess
    client_id = assignment.client_id
    db.session.delete(assignment)
    audit.record_access(client_id=client_id, staff_member=admin, category=audit.CASE_FILE,
                        action=audit.CHANGE)
    db.session.commit()
    return client_id
