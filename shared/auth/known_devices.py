"""Device cookies (OWASP): a signed cookie that a browser receives after a complete
sign-in (password and second factor), so that later sign-ins from it are not held up by
someone else guessing codes elsewhere (see code_attempts for the decision).

The cookie holds a random device id and, for up to MAX_ACCOUNTS accounts signed in on
this browser, a keyed hash of the account id (never the id, an address or a name). It
is signed with the app's secret key, so it cannot be made up; it proves only that this
browser once completed a sign-in, and grants nothing by itself.
"""

from __future__ import annotations

import secrets

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from shared.models.accounts import Account
from shared.models.base import current_keyring

MAX_AGE_DAYS = 180
MAX_ACCOUNTS = 5
_SALT = "einblick.known-device"


def _config():
    return current_app.extensions["einblick"].config


def cookie_name() -> str:
    # __Host-: only over HTTPS, for this host and path "/" (as the session cookie).
    return "__Host-einblick-device" if _config().cookies_secure else "einblick-device"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_SALT)


def _account_ref(account: Account) -> str:
    return current_keyring().blind_index("known-device.account", str(account.id)).hex()[:24]


def _read() -> dict | None:
    raw = request.cookies.get(cookie_name())
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=MAX_AGE_DAYS * 86400)
    except BadSignature:  # also an expired one
        return None
    if not isinstance(data, dict) or not isinstance(data.get("d"), str) \
            or not isinstance(data.get("a"), list):
        return None
    return data


def device_for(account: Account) -> str | None:
    """This browser's device id if it completed a sign-in to ``account`` before."""
    data = _read()
    if data is None or _account_ref(account) not in data["a"]:
        return None
    return data["d"]


def remember(response: Response, account: Account) -> Response:
    """Give (or renew) the device cookie after a complete sign-in to ``account``."""
    data = _read() or {"d": secrets.token_urlsafe(16), "a": []}
    ref = _account_ref(account)
    refs = [ref] + [r for r in data["a"] if r != ref]
    value = _serializer().dumps({"d": data["d"], "a": refs[:MAX_ACCOUNTS]})
    response.set_cookie(cookie_name(), value, max_age=MAX_AGE_DAYS * 86400, path="/",
                        secure=_config().cookies_secure, httponly=True, samesite="Lax")
    return response
