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
  * The owner is emailed that someone seems to know their password, at most once an hour
    (WARNING_MAILS), when a sign-in is ended by five wrong codes, when the account has had
    WRONG_CODES_BEFORE_WARNING wrong codes since its last complete sign-in (someone who
    restarts after four codes each time is noticed too), and when a code is refused
    because the daily cap is used up.

Every code reserves its try before it is checked (``reserve``: one atomic increment in
the storage, refused once it passes the cap), so codes checked at the same time by several
workers cannot all slip past a cap that each of them read as not yet reached. A right
code gives its try back (``give_back``) where the storage can take one back (memory and
Redis); with another storage a right code counts as well.

The counters apply whether or not the HTTP rate limits are switched on.
"""

from __future__ import annotations

import threading

from flask import current_app
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from shared.extensions import limiter_storage_options
from shared.models.accounts import Account
from shared.models.base import current_keyring

CODES_PER_SIGN_IN = 5
# Outlives the five minutes a pending sign-in lasts, so a replayed cookie stays refused.
PER_SIGN_IN = parse(f"{CODES_PER_SIGN_IN} per 15 minutes")
NEW_BROWSER_CODES = parse("20 per day")
KNOWN_DEVICE_CODES = parse("50 per day")
WARNING_MAILS = parse("1 per hour")
WRONG_CODES_BEFORE_WARNING = 5
# Wrong codes since the account's last complete sign-in (which clears the count); a month
# without any sign-in starts it again.
SINCE_LAST_SIGN_IN = parse(f"{WRONG_CODES_BEFORE_WARNING} per 30 days")

_lock = threading.Lock()
_EXTENSION = "einblick.code_attempts"


def _counter() -> FixedWindowRateLimiter:
    """One counter per app, in the rate limiter's storage (Redis in production)."""
    counter = current_app.extensions.get(_EXTENSION)
    if counter is None:
        with _lock:
            counter = current_app.extensions.get(_EXTENSION)
            if counter is None:
                config = current_app.extensions["einblick"].config
                counter = FixedWindowRateLimiter(storage_from_string(
                    config.ratelimit_storage_uri, **limiter_storage_options(config)))
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


def _daily_cap(*, account: Account, device: str | None) -> tuple[RateLimitItem, tuple[str, ...]]:
    """The cap a code from this browser counts against, and its key."""
    if device is None:
        return NEW_BROWSER_CODES, ("new-browsers", _password_generation(account))
    return KNOWN_DEVICE_CODES, ("device", device, _password_generation(account))


def reserve(*, account: Account, device: str | None) -> bool:
    """Count one code against this browser's daily cap before it is checked; False (the
    code must not be checked) once the cap is used up: an unknown browser after
    NEW_BROWSER_CODES codes for the account, a known device after its own cap.

    One atomic increment, so parallel requests cannot all read "not yet reached"."""
    item, key = _daily_cap(account=account, device=device)
    return _counter().hit(item, *key)


def give_back(*, account: Account, device: str | None) -> None:
    """A right code: take its reservation back, so only wrong codes add up and signing in
    often (even from browsers that forget their cookies) never pauses anyone."""
    item, key = _daily_cap(account=account, device=device)
    storage = _counter().storage
    storage_key = item.key_for(*key)
    if isinstance(storage, MemoryStorage):
        storage.decr(storage_key)
    elif isinstance(storage, RedisStorage):  # also Sentinel and Cluster
        if storage.incr(storage_key, item.get_expiry(), amount=-1) < 0:
            # The window ended between reserve and now: do not leave a credit behind.
            storage.incr(storage_key, item.get_expiry(), amount=1)
    # Another storage cannot take a count back: there a right code counts as well.


def count_wrong_code_since_sign_in(account: Account) -> bool:
    """Count a wrong code for the account; True once WRONG_CODES_BEFORE_WARNING have come
    since its last complete sign-in (whatever browser they came from)."""
    counter = _counter()
    counter.hit(SINCE_LAST_SIGN_IN, "since-sign-in", str(account.id))
    return not counter.test(SINCE_LAST_SIGN_IN, "since-sign-in", str(account.id))


def signed_in(account: Account) -> None:
    """A complete sign-in (password and second factor, or a passkey): start the count of
    wrong codes since the last sign-in again."""
    _counter().clear(SINCE_LAST_SIGN_IN, "since-sign-in", str(account.id))


def may_warn_owner(account: Account) -> bool:
    """True (and counted) if the owner was not warned in the last hour."""
    return _counter().hit(WARNING_MAILS, "password-known-mail", str(account.id))
