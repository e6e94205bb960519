"""Staff accounts: creation by invitation, invitation acceptance."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from shared import mail
from shared.auth import passwords, tokens
from shared.extensions import db
from shared.models.accounts import STAFF, Account
from shared.models.base import current_keyring, utcnow
from shared.models.keys import DataKey
from shared.models.staff import ROLES, StaffMember
from shared.services.accounts import check_new_password


class StaffError(Exception):
    """Base for staff-management errors."""


class UnknownRole(StaffError):
    pass


class StaffExists(StaffError):
    pass


def find_staff(*, email: str) -> StaffMember | None:
    bidx = current_keyring().blind_index("accounts.email", email)
    return db.session.scalar(
        select(StaffMember)
        .join(Account, StaffMember.account_id == Account.id)
        .where(Account.kind == STAFF)
        .where(Account.email_bidx == bidx)
    )


def create_staff(
    *, email: str, role: str, name: str | None = None, locale: str = "de", invite: bool = True
) -> tuple[StaffMember, str | None]:
    """Create a staff member and (by default) email a single-use invitation link."""
    if role not in ROLES:
        raise UnknownRole(role)
    if find_staff(email=email) is not None:
        raise StaffExists(email)
    data_key = DataKey.generate()
    account = Account(kind=STAFF, data_key=data_key, locale=locale)
    account.email = email
    member = StaffMember(account=account, data_key=data_key, role=role)
    member.name = name or None
    db.session.add_all([data_key, account, member])
    db.session.flush()
    token = None
    if invite:
        hours = current_app.extensions["einblick"].config.invitation_token_hours
        token = tokens.issue(account, tokens.STAFF_INVITATION, hours=hours)
    db.session.commit()
    if token:
        mail.send(
            to=email,
            subject=_l("Your Einblick staff account"),
            template="staff_invitation",
            locale=locale,
            token=token,
            role=role,
        )
    return member, token


def invitation_account(*, token: str) -> Account:
    """The account an invitation is for (raises tokens.TokenInvalid)."""
    return tokens.peek(token, tokens.STAFF_INVITATION)


def accept_invitation(*, token: str, password: str) -> Account:
    """Set the staff member's password; the second factor is set up next."""
    account = tokens.peek(token, tokens.STAFF_INVITATION)
    check_new_password(password, email=account.email)
    account = tokens.consume(token, tokens.STAFF_INVITATION)
    account.password_hash = passwords.hash_password(password)
    account.password_changed_at = utcnow()
    account.email_confirmed_at = utcnow()
    db.session.commit()
    return account
