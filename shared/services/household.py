"""Households: a guardian adds, edits and removes dependent children; from the age the
organisation sets, a dependant gets an account of their own and decides what the
guardian still sees.

An account made by an invitation may be held by whoever chose the address (a guardian, a
staff member). Until staff confirm in person that the young person holds it, it is no way
into the young person's data at all: ``own_client`` is the one check every service passes
through to reach an account's own client, and the portal's guard shows such an account
only its sign-in settings and a notice (portal.guards)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from shared import audit, mail, security_log
from shared.auth import tokens
from shared.extensions import db
from shared.models.accounts import CLIENT, STAFF, Account, AccountToken, RecoveryCode, UserSession
from shared.models.base import utcnow
from shared.models.bookings import Booking, CalendarFeed
from shared.models.clients import Client
from shared.models.consents import Consent
from shared.models.household import (
    ACCESS_BOOKINGS,
    ACCESS_FULL,
    GUARDIAN_ACCESS,
    EmergencyContact,
    Guardianship,
)
from shared.models.keys import DataKey
from shared.models.passkeys import PasskeyChallenge, PasskeyCredential
from shared.services import reports
from shared.services.accounts import find_account, set_client_name
from shared.validation import InvalidPhone, normalise_phone  # noqa: F401 (re-exported)

OPTIONAL_FIELDS = ("birth_date", "allergies", "medical_notes", "group_name", "emergency_contact")


class HouseholdError(Exception):
    pass


class NotAllowed(HouseholdError):
    """The account may not see or change this client (or not this much of it)."""


class MissingFields(HouseholdError):
    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


class TooYoung(HouseholdError):
    pass


class HandoverPending(NotAllowed):
    """An invited account whose hand-over staff have not yet confirmed in person: it sees
    none of the young person's data and does nothing in their name yet."""


class NothingToWithdraw(HouseholdError):
    """No invitation that is still open: none was sent, it was withdrawn, or staff have
    confirmed the account in person (then it is the young person's)."""


# Who sent the invitation that created a young person's own account (accounts.invited_by).
INVITED_BY_GUARDIAN = "guardian"
INVITED_BY_STAFF = "staff"


@dataclass
class ContactInput:
    name: str
    phone: str


@dataclass
class DependantInput:
    full_name: str
    birth_date: date | None = None
    allergies: str | None = None
    medical_notes: str | None = None
    group_name: str | None = None
    contacts: tuple[ContactInput, ...] = ()


def _config():
    return current_app.extensions["einblick"].config


def own_account_age() -> int:
    return _config().own_account_age


def organisation_phone() -> str:
    return _config().organisation_phone


def required_fields() -> set[str]:
    raw = _config().household_required_fields
    return {f.strip() for f in raw.split(",") if f.strip() in OPTIONAL_FIELDS}


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


# -- who may see whom -------------------------------------------------------------------
def own_client(account: Account | None) -> Client | None:
    """The client this account holder is, for seeing their data and acting in their name:
    None while an invited account's hand-over is pending (whoever chose the address may
    hold it). Services reach an account's own client only through this."""
    if account is None or account.handover_pending:
        return None
    return account.client


def own_account(client: Client) -> Account | None:
    """The client's own account where it may be told about their data (an email about an
    appointment, a consent to give): not while its hand-over is pending."""
    account = client.account
    return None if account is None or account.handover_pending else account


def guardianships(account: Account) -> list[Guardianship]:
    if account.handover_pending:
        return []  # nothing is done through an account nobody has confirmed yet
    return list(
        db.session.scalars(
            select(Guardianship)
            .where(Guardianship.guardian_account_id == account.id)
            .order_by(Guardianship.created_at)
            .options(joinedload(Guardianship.dependant))  # one statement for all children
        )
    )


def visible_dependants(account: Account, *, need: str = ACCESS_BOOKINGS) -> list[Client]:
    """Dependants whose data this guardian may see at the level ``need``."""
    levels = {ACCESS_BOOKINGS: (ACCESS_BOOKINGS, ACCESS_FULL), ACCESS_FULL: (ACCESS_FULL,)}
    return [g.dependant for g in guardianships(account) if g.access in levels[need]]


def client_for(account: Account, client_id: uuid.UUID, *, need: str = ACCESS_FULL) -> Client:
    """The account's own client, or a dependant it may act for at level ``need``. An
    invited account whose hand-over is pending gets HandoverPending for its own client."""
    own = own_client(account)
    if own is not None and own.id == client_id:
        return own
    if handover_pending(account):
        raise HandoverPending
    for dependant in visible_dependants(account, need=need):
        if dependant.id == client_id:
            return dependant
    raise NotAllowed


def household_clients(account: Account) -> list[Client]:
    """The account's own client and the dependants it may book for."""
    own = own_client(account)
    return ([own] if own is not None else []) + visible_dependants(account, need=ACCESS_BOOKINGS)


# -- guardian actions ---------------------------------------------------------------------
def _check_required(data: DependantInput) -> None:
    missing = [f for f in required_fields()
               if (f == "emergency_contact" and not data.contacts)
               or (f != "emergency_contact" and not getattr(data, f))]
    if not data.full_name.strip():
        missing.insert(0, "full_name")
    if missing:
        raise MissingFields(missing)


def _apply(child: Client, data: DependantInput) -> None:
    if inspect(child).persistent:
        reports.birth_date_changed(child, child.birth_date, data.birth_date)
    child.birth_date = data.birth_date
    set_client_name(client=child, full_name=data.full_name)  # tokens use the birth date
    child.allergies = (data.allergies or "").strip() or None
    child.medical_notes = (data.medical_notes or "").strip() or None
    child.group_name = (data.group_name or "").strip() or None
    normalised = [(c.name.strip(), normalise_phone(c.phone)) for c in data.contacts]
    db.session.execute(delete(EmergencyContact).where(EmergencyContact.client_id == child.id))
    for name, phone in normalised:
        contact = EmergencyContact(client_id=child.id, data_key=child.data_key)
        contact.name = name
        contact.phone = phone
        db.session.add(contact)


def add_dependant(*, guardian: Account, data: DependantInput) -> Client:
    """A child as a client of their own (own data key) with the account as guardian."""
    if handover_pending(guardian):
        raise HandoverPending
    _check_required(data)
    for contact in data.contacts:
        normalise_phone(contact.phone)  # fail before anything is written
    data_key = DataKey.generate()
    child = Client(data_key=data_key)
    db.session.add_all([data_key, child])
    _apply(child, data)
    db.session.add(Guardianship(guardian_account_id=guardian.id, dependant_id=child.id,
                                access=ACCESS_FULL))
    db.session.commit()
    return child


def update_dependant(*, guardian: Account, client_id: uuid.UUID, data: DependantInput) -> Client:
    child = client_for(guardian, client_id, need=ACCESS_FULL)
    if child.id == getattr(own_client(guardian), "id", None):
        raise NotAllowed
    _check_required(data)
    for contact in data.contacts:
        normalise_phone(contact.phone)  # fail before anything is changed
    _apply(child, data)
    child.updated_at = utcnow()
    db.session.commit()
    return child


def contacts_of(child: Client) -> list[EmergencyContact]:
    return list(db.session.scalars(
        select(EmergencyContact).where(EmergencyContact.client_id == child.id)
        .order_by(EmergencyContact.created_at)
    ))


def remove_dependant(*, guardian: Account, client_id: uuid.UUID) -> None:
    """End the guardianship. A child with no other guardian and no account of their own
    is erased (see shared.services.erasure): their data key goes, so nothing of them stays
    readable, except what a duty keeps, which is restricted until it is purged."""
    # The same lock as deleting an account takes: two guardians letting go of one child at
    # the same moment must not both leave them behind with nobody (PostgreSQL; SQLite
    # serialises writers).
    db.session.execute(select(Client.id).where(Client.id == client_id).with_for_update())
    link = db.session.scalar(
        select(Guardianship)
        .where(Guardianship.guardian_account_id == guardian.id)
        .where(Guardianship.dependant_id == client_id)
    )
    if link is None or handover_pending(guardian):
        raise NotAllowed
    child = link.dependant
    db.session.delete(link)
    db.session.flush()
    others = db.session.scalar(
        select(Guardianship.id).where(Guardianship.dependant_id == child.id).limit(1)
    )
    if others is None and child.account_id is None:
        # The same erasure as deleting an account: journalled, crypto-shredded, and what
        # a duty keeps (case notes, appointments that took place) is restricted.
        from shared.services import erasure

        now = utcnow()
        erasure.journal_append([child.id], at=now)
        erasure.erase_client(child.id, at=now)
    db.session.commit()


def invite_dependant(*, inviter: Account, client_id: uuid.UUID, email: str) -> None:
    """A guardian gives a dependant who reached the organisation's age an account of their
    own.

    Nothing the guardian sees afterwards depends on whether the address already had an
    account (its owner gets a neutral note instead): the invitation is recorded on the
    child either way (``own_account_invited_at``: no second one, the same household page,
    the same withdrawal), and a guardian never sees the child's account itself. Until
    staff confirm in person that the young person holds the account, it sees nothing of
    them (``own_client``): the guardian may control the address. The access log and every
    guardian are told."""
    child = client_for(inviter, client_id, need=ACCESS_FULL)
    if child.id == getattr(own_client(inviter), "id", None):
        raise NotAllowed
    new = create_own_account(child=child, email=email, invited_by=INVITED_BY_GUARDIAN,
                             locale=inviter.locale or "de")
    child.own_account_invited_at = child.own_account_invited_at or utcnow()
    audit.record_access(client_id=child.id, staff_member=None, role=audit.GUARDIAN,
                        category=audit.HOUSEHOLD, action=audit.INVITATION)
    guardians = guardians_of(child)
    db.session.commit()
    if new is not None:
        new.send()
    tell_guardians(guardians, template="invitation_by_guardian",
                   subject=_l("An invitation to an account of their own in your household"),
                   address=masked_address(email))
    security_log.record("invitation.sent", account=inviter,
                        outcome=security_log.OK if new else security_log.REFUSED)


@dataclass(frozen=True)
class NewOwnAccount:
    """An invited account, flushed but not committed, and its confirmation link's token:
    the caller logs what it must, commits, then calls ``send``."""

    account: Account
    token: str

    def send(self) -> None:
        mail.send(
            to=self.account.email,
            subject=_l("Your own Einblick account"),
            template="dependant_invitation",
            locale=self.account.locale,
            token=self.token,
            hours=_config().confirm_token_hours,  # how long the token issued for it lasts
            phone=organisation_phone(),
        )


def create_own_account(*, child: Client, email: str, invited_by: str,
                       locale: str) -> NewOwnAccount | None:
    """Create the young person's account (sharing the child's data key: it is their data)
    with a confirmation link, with which they choose a password or passkey.

    None if the address already belongs to an account of any kind (a staff account's also
    with a sub-address, see ``staff_account_for``): nothing is created and the owner gets
    a neutral note; callers answer exactly as if the invitation went out. NotAllowed while
    an earlier invitation is open or the child has an account."""
    # One invitation per child, even when two are sent at the same moment (PostgreSQL;
    # SQLite serialises writers).
    db.session.execute(select(Client.id).where(Client.id == child.id).with_for_update())
    db.session.refresh(child)
    if child.account_id is not None or child.own_account_invited_at is not None:
        raise NotAllowed
    if child.birth_date is None or age_on(child.birth_date, date.today()) < own_account_age():
        raise TooYoung
    existing = find_account(email=email, kind=CLIENT) or staff_account_for(email)
    if existing is not None:
        _send_address_taken(existing)
        return None
    account = Account(kind=CLIENT, data_key=child.data_key, locale=locale,
                      invited_by=invited_by)
    account.email = email
    db.session.add(account)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:  # the address was registered at this very moment
        return None
    child.account_id = account.id
    child.own_account_invited_at = utcnow()
    token = tokens.issue(account, tokens.CONFIRM_EMAIL, hours=_config().confirm_token_hours)
    return NewOwnAccount(account, token)


def staff_account_for(email: str) -> Account | None:
    """The staff account that receives mail sent to ``email``: the address itself, or the
    same mailbox with a sub-address ("kw.weber+lara@example.org" arrives at
    kw.weber@example.org), compared by blind index in both forms."""
    local, at, domain = email.rpartition("@")
    forms = [email]
    if "+" in local:
        forms.append(f"{local.split('+', 1)[0]}{at}{domain}")
    for form in forms:
        account = find_account(email=form, kind=STAFF)
        if account is not None:
            return account
    return None


def invitable(client: Client) -> bool:
    """Old enough for an account of their own, none yet and no invitation open."""
    return (client.account_id is None and client.own_account_invited_at is None
            and client.birth_date is not None and client.restricted_at is None
            and age_on(client.birth_date, date.today()) >= own_account_age())


def invitation_open(client: Client) -> bool:
    """An invitation was sent and can still be withdrawn: no account came of it (the
    address had one) or its account waits for the hand-over in person."""
    return client.own_account_invited_at is not None and (
        client.account is None or client.account.handover_pending)


def withdraw_invitation(*, child: Client) -> None:
    """Undo an open invitation: the account made with it goes, with everything it signs in
    with (sessions, passkeys, links, recovery codes, calendar links); the young person,
    their data and their data key stay, and they can be invited again. Commits nothing."""
    db.session.execute(select(Client.id).where(Client.id == child.id).with_for_update())
    db.session.refresh(child)
    if not invitation_open(child):
        raise NothingToWithdraw
    account = child.account
    child.own_account_invited_at = None
    if account is None:
        return
    child.account = None
    db.session.flush()
    for model in (UserSession, AccountToken, RecoveryCode, PasskeyCredential,
                  PasskeyChallenge, CalendarFeed):
        db.session.execute(delete(model).where(model.account_id == account.id))
    db.session.execute(delete(Guardianship).where(Guardianship.guardian_account_id == account.id))
    db.session.execute(update(Booking).where(Booking.booked_by_account_id == account.id)
                       .values(booked_by_account_id=None))
    db.session.execute(update(Consent).where(Consent.signer_account_id == account.id)
                       .values(signer_account_id=None))
    db.session.delete(account)
    db.session.flush()


def withdraw_dependant_invitation(*, guardian: Account, client_id: uuid.UUID) -> None:
    """A guardian withdraws the open invitation of a child they fully see: the same for an
    address that had an account as for one that did not. Logged and told to every
    guardian."""
    child = client_for(guardian, client_id, need=ACCESS_FULL)
    if child.id == getattr(own_client(guardian), "id", None):
        raise NotAllowed
    withdraw_invitation(child=child)
    audit.record_access(client_id=child.id, staff_member=None, role=audit.GUARDIAN,
                        category=audit.HOUSEHOLD, action=audit.INVITATION_WITHDRAWN)
    guardians = guardians_of(child)
    db.session.commit()
    tell_invitation_withdrawn(guardians, by=WITHDRAWN_BY_GUARDIAN)
    security_log.record("invitation.withdrawn", account=guardian)


# Who withdrew an invitation, as the guardians' email says it.
WITHDRAWN_BY_GUARDIAN = _l("a parent or guardian")
WITHDRAWN_BY_STAFF = _l("our team")


def guardians_of(child: Client) -> list[Account]:
    return [link.guardian for link in db.session.scalars(
        select(Guardianship).where(Guardianship.dependant_id == child.id)
        .order_by(Guardianship.created_at))]


def tell_guardians(guardians: list[Account], *, template: str, subject, **values) -> None:
    """Each guardian hears of an invitation, a confirmation or a withdrawal, so that none
    of them can happen unseen, not even by two staff members working together. The
    emails name nobody (a masked address at most)."""
    for guardian in guardians:
        mail.send(to=guardian.email, subject=subject, template=template,
                  locale=guardian.locale, phone=organisation_phone(), **values)


def tell_invitation_withdrawn(guardians: list[Account], *, by) -> None:
    tell_guardians(guardians, template="invitation_withdrawn",
                   subject=_l("An invitation to an account of their own was withdrawn"),
                   by=by)


def _send_address_taken(account: Account) -> None:
    mail.send(
        to=account.email,
        subject=_l("An invitation to an address that already has an account"),
        template="invitation_address_taken",
        locale=account.locale,
    )


def masked_address(email: str) -> str:
    """The address as a hint that names nobody: "l…@example.org"."""
    local, _, domain = (email or "").partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"


def handover_pending(account: Account | None) -> bool:
    """True for an account created by an invitation until staff confirm in person that
    the young person holds it. Until then it sees nothing of them and does nothing in
    their name (``own_client``), since whoever sent the invitation (a guardian, a staff
    member) may control the address. Accounts that registered themselves (``invited_by``
    NULL) are never pending."""
    return account is not None and account.handover_pending


# -- the young person's own choice ------------------------------------------------------------
def my_guardians(account: Account) -> list[Guardianship]:
    own = own_client(account)
    if own is None:
        return []
    return list(db.session.scalars(
        select(Guardianship).where(Guardianship.dependant_id == own.id)
    ))


def set_guardian_access(*, account: Account, guardianship_id: uuid.UUID, access: str) -> None:
    """A young person with their own account decides what a guardian still sees."""
    if access not in GUARDIAN_ACCESS:
        raise NotAllowed
    if handover_pending(account):
        raise HandoverPending
    link = db.session.get(Guardianship, guardianship_id)
    if link is None or account.client is None or link.dependant_id != account.client.id:
        raise NotAllowed
    link.access = access
    db.session.commit()


