"""Ten single-use recovery codes per account, stored as keyed hashes."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select, update

from shared.extensions import db
from shared.models.accounts import Account, RecoveryCode
from shared.models.base import current_keyring, utcnow

CODE_COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _hash(code: str) -> bytes:
    return current_keyring().blind_index("recovery_codes.code", _normalise(code))


def delete_all(account: Account) -> None:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))


def new_codes(account: Account) -> list[str]:
    """Replace the account's codes with ten fresh ones; the caller shows them once."""
    delete_all(account)
    codes = []
    for _ in range(CODE_COUNT):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        code = f"{raw[:5]}-{raw[5:]}"
        codes.append(code)
        db.session.add(RecoveryCode(account_id=account.id, code_hash=_hash(code)))
    db.session.commit()
    return codes


def looks_like_recovery_code(text: str) -> bool:
    return len(_normalise(text)) == 10 and not _normalise(text).isdigit()


def consume(account: Account, code: str) -> bool:
    """Use a code once; a second use of the same code fails, also across workers."""
    result = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.account_id == account.id)
        .where(RecoveryCode.code_hash == _hash(code))
        .where(RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def issued(account: Account) -> bool:
    """Whether the account was ever given codes (used ones count: they were given)."""
    return db.session.scalar(
        select(RecoveryCode.id).where(RecoveryCode.account_id == account.id).limit(1)
    ) is not None


def remaining(account: Account) -> int:
    return len(
        db.session.scalars(
            select(RecoveryCode.id)
            .where(RecoveryCode.account_id == account.id)
            .where(RecoveryCode.used_at.is_(None))
        ).all()
    )
