"""Counting wrong second-factor codes at sign-in so that they lock the pending sign-in,
not the account.

Why like this
  A per-account limit on codes (it was "5 per 5 minutes; 20 per day") lets anyone who
  knows the password lock the real owner out for a day. Instead:

  * Per pending sign-in: five wrong codes end it, and the password must be given again.
    The count lives in the limiter's storage (memory or Redis, shared by all workers)
    under the pending sign-in's random attempt id: the Flask session is a signed cookie
    on the client, and replaying an older copy of it must not buy fresh tries.
  * Per account, for browsers that never completed a sign-in to it: at most
    NEW_BROWSER_CODES wrong codes a day. Without this, someone who knows the password
    could restart endlessly and guess codes (OWASP "device cookies"). The count is keyed
    on the account and its current password hash, so a password reset (or a staff
    re-invitation) opens new browsers at once: whoever caused the lock no longer knows
    the password.
  * Browsers with a device cookie (known_devices, given after a complete sign-in with
    password and second factor) skip the per-account cap: the owner on their own phone
    or computer is never locked out by someone else's guessing. Each such cookie has its
    own daily cap (KNOWN_DEVICE_CODES, also per password), in case the cookie itself was
    copied.
  * When a sign-in is ended by five wrong codes, the owner is emailed that someone seems
    to know their password, at most once an hour (WARNING_MAILS).

The counters apply whether or not the HTTP rate limits are switched on.
"""

from __future__ import annotations

import threading

from flask import current_app
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from shared.models.accounts import Account
from shared.models.base import current_keyring

CODES_PER_SIGN_IN = 5
# Outlives the five minutes a pending sign-in lasts, so a replayed cookie stays refused.
PER_SIGN_IN = parse(f"{CODES_PER_SIGN_IN} per 15 minutes")
NEW_BROWSER_CODES = parse("20 per day")
KNOWN_DEVICE_CODES = parse("50 per day")
WARNING_MAILS = parse("1 per hour")

_lock = threading.Lock()
_EXTENSION = "einblick.code_attempts"


def _counter() -> FixedWindowRateLimiter:
    """One counter per app, in the rate limiter's storage (Redis in production)."""
    counter = current_app.extensions.get(_EXTENSION)
    if counter is None:
        with _lock:
            counter = current_app.extensions.get(_EXTENSION)
            if counter is None:
                uri = current_app.extensions["einblick"].config.ratelimit_storage_uri
                counter = FixedWindowRateLimiter(storage_from_string(uri))
                current_app.extensions[_EXTENSION] = counter
    return counter


def _password_generation(account: Account) -> str:
    """Changes whenever a new password is set (salted hash), without storing the hash."""
    return current_keyring().blind_index(
        "code-attempts.password", f"{account.id}|{account.password_hash or ''}").hex()[:32]


def take_try(attempt: str) -> bool:
    """Count one code for this pending sign-in before it is checked (so parallel requests
    cannot slip past the count); False once its five tries are used up."""
    return _counter().hit(PER_SIGN_IN, "sign-in", attempt)


def sign_in_used_up(attempt: str) -> bool:
    """True once a pending sign-in has had its five tries."""
    return not _counter().test(PER_SIGN_IN, "sign-in", attempt)


def paused(*, account: Account, device: str | None) -> bool:
    """True if this browser may not try codes for this account now: an unknown browser
    after NEW_BROWSER_CODES wrong codes for the account, a known device after its own cap.
    Only wrong codes count here, so signing in often (even from browsers that forget
    their cookies) never adds up."""
    if device is None:
        return not _counter().test(NEW_BROWSER_CODES, "new-browsers",
                                   _password_generation(account))
    return not _counter().test(KNOWN_DEVICE_CODES, "device", device,
                               _password_generation(account))


def count_wrong_code(*, account: Account, device: str | None) -> None:
    counter = _counter()
    if device is None:
        counter.hit(NEW_BROWSER_CODES, "new-browsers", _password_generation(account))
    else:
        counter.hit(KNOWN_DEVICE_CODES, "device", device, _password_generation(account))


def may_warn_owner(account: Account) -> bool:
    """True (and counted) if the owner was not warned in the last hour."""
    return _counter().hit(WARNING_MAILS, "password-known-mail", str(account.id))
