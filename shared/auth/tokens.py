"""Single-use emailed link tokens: only their hash is stored."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update

from shared.crypto import hash_secret_token
from shared.extensions import db
from shared.models.accounts import Account, AccountToken
from shared.models.base import utcnow

CONFIRM_EMAIL = "confirm-email"
RESET_PASSWORD = "reset-password"  # noqa: S105 - a purpose name, not a secret
STAFF_INVITATION = "staff-invitation"


class TokenInvalid(Exception):
    """The link is unknown, used, expired, or for another purpose."""


def issue(account: Account, purpose: str, *, hours: int) -> str:
    """A new token for a link; earlier unused tokens of the same purpose stop working."""
    now = utcnow()
    db.session.execute(
        update(AccountToken)
        .where(AccountToken.account_id == account.id)
        .where(AccountToken.purpose == purpose)
        .where(AccountToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    db.session.add(
        AccountToken(
            account_id=account.id,
            purpose=purpose,
            token_hash=hash_secret_token(token),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return token


def peek(token: str, purpose: str) -> Account:
    """The account a still-valid token belongs to, without using it up."""
    row = db.session.scalar(
        select(AccountToken).where(AccountToken.token_hash == hash_secret_token(token))
    )
    if row is None or row.purpose != purpose or row.used_at is not None:
        raise TokenInvalid
    if row.expires_at <= utcnow():
        raise TokenInvalid
    return db.session.get(Account, row.account_id)


def consume(token: str, purpose: str) -> Account:
    """Use a token once; a second use (also racing, in another worker) raises TokenInvalid."""
    account = peek(token, purpose)
    result = db.session.execute(
        update(AccountToken)
        .where(AccountToken.token_hash == hash_secret_token(token))
        .where(AccountToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise TokenInvalid
    return account


def purge_spent(now) -> int:
    """Delete links that were used or have expired (they only ever answer "invalid")."""
    return db.session.execute(
        delete(AccountToken).where((AccountToken.expires_at < now)
                                   | AccountToken.used_at.is_not(None))
    ).rowcount
