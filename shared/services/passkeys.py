"""Managing an account's passkeys: add, rename, remove (never the last way in)."""

from __future__ import annotations

import uuid

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from shared import mail, security_log
from shared.auth import passkeys, sessions
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.passkeys import PasskeyCredential


class LastSignInMethod(Exception):
    """Removing this passkey would leave the account without a way to sign in."""


class LastStaffSecondFactor(Exception):
    """Staff must keep a second factor; this passkey is their last one."""


class NotFound(Exception):
    pass


def begin_adding(account: Account) -> str:
    # An anonymous contact has no address: the passkey carries the name they chose.
    user_name = account.email or account.pseudonym or "Einblick"
    display = user_name
    member = getattr(account, "staff_member", None)
    if member is not None and member.name:
        display = member.name
    return passkeys.begin_registration(account, user_name=user_name, display_name=display)


def finish_adding(account: Account, *, response: str, name: str) -> PasskeyCredential:
    credential = passkeys.finish_registration(account, response=response, name=name)
    security_log.record("passkey.added", account=account)
    sessions.renew(account, second_factor=True)
    sessions.end_all(account, except_current=True)
    mail.send(
        to=account.email,
        subject=_l("A passkey was added to your account"),
        template="passkey_added",
        locale=account.locale,
        staff=account.is_staff,
    )
    return credential


def _owned(account: Account, credential_id: uuid.UUID) -> PasskeyCredential:
    credential = db.session.scalar(
        select(PasskeyCredential)
        .where(PasskeyCredential.id == credential_id)
        .where(PasskeyCredential.account_id == account.id)
    )
    if credential is None:
        raise NotFound
    return credential


def rename(account: Account, *, credential_id: uuid.UUID, name: str) -> None:
    credential = _owned(account, credential_id)
    credential.name = passkeys.clean_name(name)
    db.session.commit()


def remove(account: Account, *, credential_id: uuid.UUID, sign_out_others: bool) -> int | None:
    """Delete a passkey unless it is the account's last way to sign in (or staff's last
    second factor); one marked as possibly copied may always go. With ``sign_out_others``
    every other session ends too (whoever held a copy of the key may be signed in);
    returns how many, or None if not asked."""
    credential = _owned(account, credential_id)
    if credential.flagged_at is None:  # a flagged passkey is no way in: it may always go
        others = [c for c in account.usable_passkeys if c.id != credential.id]
        if not account.has_password and not others:
            raise LastSignInMethod
        if account.is_staff and not account.has_totp and not others:
            raise LastStaffSecondFactor
    db.session.delete(credential)
    db.session.commit()
    security_log.record("passkey.removed", account=account)
    ended = sessions.end_all(account, except_current=True) if sign_out_others else None
    mail.send(
        to=account.email,
        subject=_l("A passkey was removed from your account"),
        template="passkey_removed",
        locale=account.locale,
        staff=account.is_staff,
    )
    return ended
