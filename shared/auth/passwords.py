"""Password hashing (Argon2id) and strength rules (length, a list of common passwords,
zxcvbn).

Passwords are NFKC-normalised before they are hashed or checked, so the same password
typed on another keyboard (fullwidth letters, a ligature, a composed accent) still signs
in. Hashes made before that are of the raw form: ``check_password`` tries the normalised
form first, then the raw one, and says when to store a new hash. A new password must be
long and strong enough both as typed and in its NFKC form (``password_problems``).
"""

from __future__ import annotations

import gzip
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

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


def normalise(password: str) -> str:
    """The form a password is hashed and compared in (NFKC)."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return _hasher().hash(normalise(password))


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    # The stored hash is of the raw (unnormalised) form or has outdated parameters.
    rehash: bool = False


def check_password(password_hash: str | None, password: str) -> PasswordCheck:
    """Whether the password matches, trying its NFKC form first and then the raw form
    (hashes from before normalisation). Without a hash, still spends the time of a check."""
    hasher = _hasher()
    forms = [normalise(password)]
    if forms[0] != password:
        forms.append(password)
    if not password_hash:
        for form in forms:
            _burn(hasher, form)
        return PasswordCheck(False)
    for index, form in enumerate(forms):
        try:
            if hasher.verify(password_hash, form):
                return PasswordCheck(
                    True, rehash=index > 0 or hasher.check_needs_rehash(password_hash))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            continue
    return PasswordCheck(False)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if the password matches (see ``check_password``)."""
    return check_password(password_hash, password).ok


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


COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt.gz"
_common: frozenset[str] | None = None
_common_lock = threading.Lock()


def common_passwords() -> frozenset[str]:
    """The bundled list of the 100,000 most common passwords (NFKC, case-folded; see
    scripts/build_common_passwords.py), read once per process on first use."""
    global _common
    if _common is None:
        with _common_lock:
            if _common is None:
                text = gzip.decompress(COMMON_PASSWORDS_FILE.read_bytes()).decode("utf-8")
                _common = frozenset(text.splitlines())
    return _common


def _without_trailing_digits_and_punctuation(text: str) -> str:
    end = len(text)
    while end and unicodedata.category(text[end - 1])[0] in "NPSZ":
        end -= 1
    return text[:end]


def is_common(password: str) -> bool:
    """True if the password, or its stem without trailing digits and punctuation
    ("Summer2023!!" → "summer"), is on the common list; case does not matter."""
    folded = normalise(password).casefold()
    common = common_passwords()
    stem = _without_trailing_digits_and_punctuation(folded)
    return folded in common or (bool(stem) and stem in common)


def password_problems(password: str, *, user_inputs: tuple[str, ...] = ()) -> list[str]:
    """Messages explaining why a new password is not accepted (empty list: fine).

    Length and strength are measured on the password as typed (code points, without
    surrounding spaces) and on its NFKC form, and both must pass: NFKC can spell one
    character out in many ("ﷺ" becomes 18 characters), and a run that zxcvbn sees
    through as typed ("ⅰⅱⅲ…") can look random once spelt out."""
    typed = password
    normal = normalise(password)
    if min(len(typed.strip()), len(normal.strip())) < MIN_LENGTH:
        return [_("Use at least %(n)d characters. A few unrelated words work well.", n=MIN_LENGTH)]
    if max(len(typed), len(normal)) > MAX_LENGTH:
        return [_("Use at most %(n)d characters.", n=MAX_LENGTH)]
    if is_common(password):
        return [_("This password is one of the most used passwords, or only adds numbers "
                  "or signs to one, so it is tried first. Please choose another: a few "
                  "unrelated words work well.")]
    inputs = [u for u in user_inputs if u]
    for form in dict.fromkeys((normal, typed)):  # the typed form only if it differs
        if zxcvbn(form[:_ZXCVBN_PREFIX], user_inputs=inputs)["score"] < MIN_SCORE:
            return [_("This password is too easy to guess: it is common, or made of a pattern "
                      "or names. Try a few unrelated words.")]
    return []
