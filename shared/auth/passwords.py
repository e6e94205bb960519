"""Password hashing (Argon2id) and strength rules (length, zxcvbn)."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from flask_babel import gettext as _
from zxcvbn import zxcvbn

MIN_LENGTH = 12
# Far above any passphrase; bounds the work an attacker can make one request cost.
MAX_LENGTH = 1024
# zxcvbn rates only the first 72 characters; the hash always covers the whole password.
_ZXCVBN_PREFIX = 72  # zxcvbn refuses longer input
MIN_SCORE = 3


def _hasher() -> PasswordHasher:
    config = current_app.extensions["einblick"].config
    return PasswordHasher(
        time_cost=config.argon2_time_cost,
        memory_cost=config.argon2_memory_kib,
        parallelism=1,
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if the password matches. Without a hash, still spends the time of a check."""
    hasher = _hasher()
    if not password_hash:
        _burn(hasher, password)
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


_DUMMY: dict[tuple[int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = (hasher.time_cost, hasher.memory_cost)
    if key not in _DUMMY:
        _DUMMY[key] = hasher.hash("einblick-dummy-password")
    return _DUMMY[key]


def _burn(hasher: PasswordHasher, password: str) -> None:
    """Spend the time of a real verification so unknown accounts are not faster."""
    try:
        hasher.verify(_dummy_hash(hasher), password)
    except VerificationError:
        pass


def password_problems(password: str, *, user_inputs: tuple[str, ...] = ()) -> list[str]:
    """Messages explaining why a new password is not accepted (empty list: fine)."""
    if len(password) < MIN_LENGTH:
        return [_("Use at least %(n)d characters. A few unrelated words work well.", n=MIN_LENGTH)]
    if len(password) > MAX_LENGTH:
        return [_("Use at most %(n)d characters.", n=MAX_LENGTH)]
    result = zxcvbn(password[:_ZXCVBN_PREFIX], user_inputs=[u for u in user_inputs if u])
    if result["score"] >= MIN_SCORE:
        return []
    problems = [
        _(
            "This password is too easy to guess: it is common, or made of a pattern or "
            "names. Try a few unrelated words."
        )
    ]
    return problems
