"""Staff accounts: creation by invitation, invitation acceptance, and the admins' changes
(role, active, new invitation), each recorded as a ``staff.changed`` security event."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update

from shared import mail, paging, security_log
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


def may_still_set_up_second_factor(account: Account) -> bool:
    """Password-only sign-in (to set up the mandatory second factor) is possible only for
    as long as an invitation is valid after the password was set; later, a new
    invitation is needed, so a leaked password alone can never bind an attacker's key."""
    hours = current_app.extensions["einblick"].config.invitation_token_hours
    changed = account.password_changed_at
    return changed is not None and utcnow() - changed <= timedelta(hours=hours)


def reinvite(*, email: str) -> str:
    """A fresh invitation link for an existing staff member (sets a new password)."""
    member = find_staff(email=email)
    if member is None:
        raise StaffError("no such staff member")
    hours = current_app.extensions["einblick"].config.invitation_token_hours
    token = tokens.issue(member.account, tokens.STAFF_INVITATION, hours=hours)
    db.session.commit()
    security_log.record("staff.changed", account=member.account)
    mail.send(
        to=member.account.email,
        subject=_l("Your Einblick staff account"),
        template="staff_invitation",
        locale=member.account.locale,
        token=token,
        role=member.role,
    )
    return token


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


def team_page(page: int = 1) -> paging.Page:
    """A page of the team, the oldest accounts first (account and data key come joined):
    the same two statements for every page."""
    return paging.paged(select(StaffMember).order_by(StaffMember.created_at, StaffMember.id),
                        page)


def get_member(member_id) -> StaffMember | None:
    return db.session.get(StaffMember, member_id)


def active_members(*, roles: tuple[str, ...] | None = None) -> list[StaffMember]:
    """The active staff (of these roles, e.g. ``policy.roles_with(...)``), oldest first;
    one statement (account and data key come joined)."""
    stmt = select(StaffMember).where(StaffMember.active.is_(True)) \
        .order_by(StaffMember.created_at)
    if roles is not None:
        stmt = stmt.where(StaffMember.role.in_(roles))
    return list(db.session.scalars(stmt))


def set_active(*, admin: StaffMember, member_id, active: bool) -> StaffMember:
    """Deactivation ends every session of the person at once."""
    from shared.auth import sessions

    member = db.session.get(StaffMember, member_id)
    if member is None:
        raise StaffError("unknown")
    if member.id == admin.id and not active:
        security_log.record("staff.changed", outcome=security_log.REFUSED, account=admin.account)
        raise StaffError("self")
    member.active = active
    db.session.commit()
    security_log.record("staff.changed", account=member.account)
    if not active:
        sessions.end_all(member.account, except_current=False)
    return member


def set_role(*, admin: StaffMember, member_id, role: str) -> StaffMember:
    if role not in ROLES:
        raise UnknownRole(role)
    member = db.session.get(StaffMember, member_id)
    if member is None:
        raise StaffError("unknown")
    if member.id == admin.id and role != admin.role:
        security_log.record("staff.changed", outcome=security_log.REFUSED, account=admin.account)
        raise StaffError("self")
    if role != member.role:
        # Access that came with the old role does not travel to the new one.
        from shared.models.casefile import Assignment, BreakGlassGrant

        db.session.execute(delete(Assignment).where(Assignment.staff_member_id == member.id))
        db.session.execute(update(BreakGlassGrant).where(
            BreakGlassGrant.staff_member_id == member.id).values(session_id=None))
    changed = role != member.role
    member.role = role
    db.session.commit()
    if changed:
        security_log.record("staff.changed", account=member.account)
    return member
