"""Households: a guardian adds, edits and removes dependent children; from the age the
organisation sets, a dependant gets an account of their own and decides what the
guardian still sees."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from shared import mail, security_log
from shared.auth import tokens
from shared.extensions import db
from shared.models.accounts import CLIENT, STAFF, Account
from shared.models.base import utcnow
from shared.models.clients import Client
from shared.models.household import (
    ACCESS_BOOKINGS,
    ACCESS_FULL,
    GUARDIAN_ACCESS,
    EmergencyContact,
    Guardianship,
)
from shared.models.keys import DataKey
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


class HandoverPending(HouseholdError):
    """An invited account whose hand-over staff have not yet confirmed in person: it may
    not yet decide what a guardian sees."""


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
def guardianships(account: Account) -> list[Guardianship]:
    return list(
        db.session.scalars(
            select(Guardianship)
            .where(Guardianship.guardian_account_id == account.id)
            .order_by(Guardianship.created_at)
        )
    )


def visible_dependants(account: Account, *, need: str = ACCESS_BOOKINGS) -> list[Client]:
    """Dependants whose data this guardian may see at the level ``need``."""
    levels = {ACCESS_BOOKINGS: (ACCESS_BOOKINGS, ACCESS_FULL), ACCESS_FULL: (ACCESS_FULL,)}
    return [g.dependant for g in guardianships(account) if g.access in levels[need]]


def client_for(account: Account, client_id: uuid.UUID, *, need: str = ACCESS_FULL) -> Client:
    """The account's own client, or a dependant it may act for at level ``need``."""
    own = account.client
    if own is not None and own.id == client_id:
        return own
    for dependant in visible_dependants(account, need=need):
        if dependant.id == client_id:
            return dependant
    raise NotAllowed


def household_clients(account: Account) -> list[Client]:
    """The account's own client and the dependants it may book for."""
    own = [account.client] if account.client is not None else []
    return own + visible_dependants(account, need=ACCESS_BOOKINGS)


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
    if child.id == getattr(guardian.client, "id", None):
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
    if link is None:
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

    The answer is the same whether or not the address already has an account (the owner
    of a taken address gets a neutral note instead), so the form reveals nothing. Until
    staff confirm in person that the young person holds the account, it sees only what a
    guardian sees (see ``handover_pending``): the guardian may control the address."""
    child = client_for(inviter, client_id, need=ACCESS_FULL)
    if child.id == getattr(inviter.client, "id", None):
        raise NotAllowed
    new = create_own_account(child=child, email=email, invited_by=INVITED_BY_GUARDIAN,
                             locale=inviter.locale or "de")
    db.session.commit()
    if new is not None:
        new.send()
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

    None if the address already belongs to an account of any kind: nothing is created and
    the owner gets a neutral note; callers answer exactly as if the invitation went out."""
    # One invitation per child, even when two are sent at the same moment (PostgreSQL;
    # SQLite serialises writers).
    db.session.execute(select(Client.id).where(Client.id == child.id).with_for_update())
    db.session.refresh(child)
    if child.account_id is not None:
        raise NotAllowed
    if child.birth_date is None or age_on(child.birth_date, date.today()) < own_account_age():
        raise TooYoung
    existing = find_account(email=email, kind=CLIENT) or find_account(email=email, kind=STAFF)
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
    token = tokens.issue(account, tokens.CONFIRM_EMAIL, hours=_config().confirm_token_hours)
    return NewOwnAccount(account, token)


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
    the young person holds it. Until then it sees only what a guardian would see, since
    whoever sent the invitation (a guardian, a staff member) may control the address.
    Accounts that registered themselves (``invited_by`` NULL) are never pending."""
    return (account is not None and account.invited_by is not None
            and account.handover_confirmed_at is None)


# -- the young person's own choice ------------------------------------------------------------
def my_guardians(account: Account) -> list[Guardianship]:
    if account.client is None:
        return []
    return list(db.session.scalars(
        select(Guardianship).where(Guardianship.dependant_id == account.client.id)
    ))


def set_guardian_access(*, account: Account, guardianship_id: uuid.UUID, access: str) -> None:
    """A young person with their own account decides what a guardian still sees."""
    if access not in GUARDIAN_ACCESS:
        raise NotAllowed
    link = db.session.get(Guardianship, guardianship_id)
    if link is None or account.client is None or link.dependant_id != account.client.id:
        raise NotAllowed
    if handover_pending(account):
        raise HandoverPending
    link.access = access
    db.session.commit()


