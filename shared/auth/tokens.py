"""Single-use emailed link tokens: only their hash is stored.

A token is 32 random bytes (``secrets.token_urlsafe``); the row keeps its SHA-256, or, for
the purposes in ``KEYED``, a keyed hash (the keyring's blind index of that SHA-256), so that
the database alone neither gives a link back nor lets anyone who can write to it make one.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update

from shared.crypto import hash_secret_token
from shared.extensions import db
from shared.models.accounts import Account, AccountToken
from shared.models.base import current_keyring, utcnow

CONFIRM_EMAIL = "confirm-email"
RESET_PASSWORD = "reset-password"  # noqa: S105 - a purpose name, not a secret
STAFF_INVITATION = "staff-invitation"
# An anonymous contact's address for notifications (shared/services/anonymous.py).
NOTIFICATION_EMAIL = "notification-email"

# Purposes stored as a keyed hash. The older purposes keep the plain SHA-256, so that links
# sent before an upgrade still work.
KEYED = frozenset({NOTIFICATION_EMAIL})


class TokenInvalid(Exception):
    """The link is unknown, used, expired, or for another purpose."""


def token_hash(token: str, purpose: str) -> bytes:
    """What the row stores for ``token``. The blind index is taken of the SHA-256 in hex:
    it casefolds what it is given, and a token must not match in another case."""
    digest = hash_secret_token(token)
    if purpose in KEYED:
        return current_keyring().blind_index(f"account_tokens.{purpose}", digest.hex())
    return digest


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
            token_hash=token_hash(token, purpose),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return token


def peek(token: str, purpose: str) -> Account:
    """The account a still-valid token belongs to, without using it up."""
    row = db.session.scalar(
        select(AccountToken).where(AccountToken.token_hash == token_hash(token, purpose))
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
        .where(AccountToken.token_hash == token_hash(token, purpose))
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
