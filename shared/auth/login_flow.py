"""The step between password and second factor, and where to go afterwards."""

from __future__ import annotations

import enum
import secrets
import time
import unicodedata
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import after_this_request, current_app, request, session
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from shared.auth import known_devices, sessions
from shared.extensions import db
from shared.models.accounts import Account

PENDING_KEY = "pending_second_factor"
PENDING_SECONDS = 300


def clock() -> float:
    """The clock a pending second step is timed by (tests move it instead of waiting)."""
    return time.time()


@dataclass(frozen=True)
class PendingLogin:
    """A sign-in whose password was right and whose second step is still to come."""

    account: Account
    # Random per password entry: wrong codes are counted against it on the server (the
    # session is a client-side cookie that could be replayed), see code_attempts.
    attempt: str


def begin(account: Account, *, next_url: str | None) -> None:
    """Remember that the password was right; the second factor must follow within 5 min."""
    session[PENDING_KEY] = {
        "account": str(account.id),
        "attempt": secrets.token_urlsafe(16),
        "at": int(clock()),
        "next": safe_next(next_url),
    }


def pending_login(kind: str) -> PendingLogin | None:
    data = session.get(PENDING_KEY)
    if not data or clock() - data.get("at", 0) > PENDING_SECONDS:
        return None
    if not data.get("attempt"):  # begun before attempts had ids: sign in again
        return None
    account = db.session.get(Account, uuid.UUID(data["account"]))
    if account is None or account.kind != kind:
        return None
    return PendingLogin(account=account, attempt=data["attempt"])


def pending_account(kind: str) -> Account | None:
    pending = pending_login(kind)
    return pending.account if pending else None


def pending_key() -> str | None:
    """The pending sign-in's attempt id (limits count per sign-in, not per account, so
    someone who knows the password cannot lock the owner out)."""
    data = session.get(PENDING_KEY)
    return data.get("attempt") if data else None


def end() -> None:
    """Forget the pending sign-in: the password must be given again."""
    session.pop(PENDING_KEY, None)


class CodeOutcome(enum.Enum):
    """What a code entered at the second step of a sign-in led to."""

    SIGNED_IN = "signed-in"
    WRONG_CODE = "wrong-code"  # the form again, with WRONG_CODE_MESSAGE
    RESTARTED = "restarted"  # five wrong codes: the password again (RESTARTED_MESSAGE)
    PAUSED = "paused"  # this browser may not try codes for the account today


WRONG_CODE_MESSAGE = _l("This code is not right or was already used. Wait for the next code.")
RESTARTED_MESSAGE = _l("That was five wrong codes. For your safety, please enter your "
                       "password again, then the code your app shows now.")


@dataclass(frozen=True)
class CodeResult:
    outcome: CodeOutcome
    next_url: str | None  # where the user wanted to go; also kept for a restarted sign-in


def submit_code(pending: PendingLogin, *, code: str) -> CodeResult:
    """The second step with an authenticator or recovery code, for portal and staff alike.

    On success the session starts and the response makes this browser a known device
    (so its owner's later sign-ins are spared the daily cap on wrong codes, see
    code_attempts). A restarted or paused sign-in is forgotten: the password must be given
    again. The views only say what happened and where to go."""
    # accounts imports PendingLogin from here, so it is imported when a code arrives.
    from shared.services import accounts

    next_url = pending_next()
    try:
        accounts.verify_pending_second_factor(
            pending=pending, code=code, device=known_devices.device_for(pending.account))
    except accounts.SignInRestarted:
        end()
        return CodeResult(CodeOutcome.RESTARTED, next_url)
    except accounts.CodesPaused:
        end()
        return CodeResult(CodeOutcome.PAUSED, next_url)
    except accounts.WrongCode:
        return CodeResult(CodeOutcome.WRONG_CODE, next_url)
    sessions.start(pending.account, second_factor=True)
    account = pending.account
    after_this_request(lambda response: known_devices.remember(response, account))
    return CodeResult(CodeOutcome.SIGNED_IN, next_url)


def pending_next() -> str | None:
    data = session.get(PENDING_KEY) or {}
    return data.get("next")


def safe_next(url: str | None) -> str | None:
    """Where signing in or a confirmation (step-up) may lead: ``url`` if it is a path on
    this site that answers GET, else None and the caller goes to its home or security page.

    Only same-site paths, so a link cannot send a user elsewhere after signing in. Only
    GET-able ones, so a form posted when the session had ended (or a hand-made link) never
    sends the browser to an address that only takes a POST (405). Needs a request."""
    if not url or _browser_may_read_another_host(url):
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return None
    adapter = current_app.create_url_adapter(request)
    try:
        adapter.match(parts.path, method="GET")
    except RequestRedirect:
        return url  # e.g. a missing trailing slash: the browser follows it with GET
    except HTTPException:  # 404, or 405: the address takes no GET
        return None
    return url


def _browser_may_read_another_host(url: str) -> bool:
    """Whether a browser might read ``url`` otherwise than urlsplit does: it takes a
    backslash for a slash ("/\\evil.example" is "//evil.example", another host), drops
    tabs and line breaks anywhere ("/\\t/evil.example") and strips control characters and
    spaces at the ends. Refused outright, whatever the URL map would match, rather than
    left to urlsplit's own clean-up. No page of ours has such characters in its path."""
    return any(char == "\\" or char.isspace() or unicodedata.category(char)[0] == "C"
               for char in url)


def return_address() -> str | None:
    """For a guard that sends someone to sign in (or confirm): where to continue after.

    The page asked for, if it was a GET; for a form that was posted (its address may take
    no GET, and repeating it unasked would be wrong) the page that holds the form, when the
    browser named it in its Referer and it is on this site; else None (home)."""
    if request.method in ("GET", "HEAD"):
        return safe_next(request.full_path.rstrip("?"))
    referrer = urlsplit(request.referrer or "")
    if referrer.scheme not in ("http", "https") or referrer.netloc != request.host:
        return None
    return safe_next(referrer.path + (f"?{referrer.query}" if referrer.query else ""))
