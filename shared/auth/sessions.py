"""Server-side sessions behind Flask-Login.

The session cookie carries a random token; the database holds its hash. Logging out
deletes the row, so a replayed cookie is dead; "log out everywhere" and a password change
delete the account's other rows. Each log-in and each step-up issues a new token.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app, g, request, session
from flask_login import login_user, logout_user
from sqlalchemy import delete, inspect, select
from sqlalchemy.orm.exc import ObjectDeletedError
from werkzeug.local import LocalProxy

from shared import security_log
from shared.auth import drafts
from shared.crypto import hash_secret_token
from shared.extensions import db
from shared.models.accounts import STAFF, Account, UserSession
from shared.models.base import utcnow

# Writing last_seen_at on every request would make every page view a write.
_TOUCH_INTERVAL = timedelta(seconds=60)
# The page warns this long before the idle limit ends the session (shared/static/js/idle.js).
WARN_SECONDS = 120
STATUS_ENDPOINT = "session.status"  # reads the time left without counting as use
# What a page asks by itself is no use of the session either: the idle warning's status
# and an open conversation asking for new messages (shared/static/js/messages.js), so an
# open tab never keeps a session alive.
NOT_USE = frozenset({STATUS_ENDPOINT, "portal.message_since", "staff.message_since"})


def _config():
    return current_app.extensions["einblick"].config


def idle_limit(account: Account) -> timedelta:
    config = _config()
    minutes = config.staff_idle_minutes if account.kind == STAFF else config.client_idle_minutes
    return timedelta(minutes=minutes)


def start(account: Account, *, second_factor: bool) -> UserSession:
    """Log the account in with a fresh token (any earlier cookie content is dropped)."""
    if isinstance(account, LocalProxy):  # current_user: keep the object, not the proxy
        account = account._get_current_object()
    previous = _current_row()
    # A form kept when the last session ended stays for the same account (drafts).
    draft_pointer = session.get(drafts.COOKIE_KEY)
    session.clear()
    # Flask-WTF caches this request's CSRF token in g: drop it with the old session, so a
    # page rendered now carries a token of the new session.
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = UserSession(
        account_id=account.id,
        token_hash=hash_secret_token(token),
        created_at=now,
        last_seen_at=now,
        authenticated_at=now,
        second_factor_at=now if second_factor else None,
    )
    if previous is not None:
        db.session.delete(previous)
    db.session.add(row)
    db.session.commit()
    _attach(account, token, row)
    session.permanent = True
    login_user(account)
    drafts.carry_over(draft_pointer, account.id)
    return row


def renew(account: Account, *, second_factor: bool | None = None) -> UserSession:
    """Step-up: a new token for the same login, with a fresh authentication time."""
    row = _current_row()
    created = row.created_at if row else utcnow()
    had_second_factor = row.second_factor_at if row else None
    new_row = start(account, second_factor=bool(had_second_factor) or bool(second_factor))
    new_row.created_at = created  # the absolute limit counts from the first log-in
    if had_second_factor and not second_factor:
        new_row.second_factor_at = had_second_factor
    db.session.commit()
    return new_row


def mark_second_factor(account: Account) -> None:
    """The signed-in account has just proved a second factor (e.g. set one up)."""
    row = _current_row()
    if row is not None:
        row.second_factor_at = utcnow()
        db.session.commit()


def load(token: str) -> Account | None:
    """Flask-Login's user loader: the account of a live session, else None."""
    row = db.session.scalar(
        select(UserSession).where(UserSession.token_hash == hash_secret_token(token))
    )
    if row is None:
        return None
    account = row.account
    now = utcnow()
    absolute = timedelta(hours=_config().session_absolute_hours)
    if now - row.last_seen_at > idle_limit(account) or now - row.created_at > absolute:
        if request.endpoint in NOT_USE:
            return None  # only asked: the row stays, so a form sent next is still kept
        drafts.session_ended(account.id)  # a form posted now is kept for this account
        db.session.delete(row)
        db.session.commit()
        return None
    # The idle warning asking how long is left, a page asking for news: no use (NOT_USE).
    if now - row.last_seen_at > _TOUCH_INTERVAL and request.endpoint not in NOT_USE:
        row.last_seen_at = now
        db.session.commit()
    _attach(account, token, row)
    return account


def end_current() -> None:
    row = _current_row()
    if row is not None:
        db.session.delete(row)
        db.session.commit()
    drafts.forget()
    logout_user()
    session.clear()


def end_all(account: Account, *, except_current: bool) -> int:
    """End the account's sessions (all, or all but this one); returns how many ended."""
    stmt = delete(UserSession).where(UserSession.account_id == account.id)
    current = _current_row() if except_current else None
    if current is not None:
        stmt = stmt.where(UserSession.id != current.id)
    result = db.session.execute(stmt.execution_options(synchronize_session=False))
    db.session.commit()
    security_log.record("sessions.ended", account=account)
    return result.rowcount


def seconds_left(account: Account) -> int | None:
    """How long the signed-in session has until the idle limit ends it (for the page's
    warning, shared/static/js/idle.js), or None when this request ended it (signing out,
    deleting the account). Reading it does not prolong the session."""
    row = account.current_session
    if row is None or inspect(row).was_deleted:
        return None
    try:
        last_seen_at, created_at = row.last_seen_at, row.created_at
    except ObjectDeletedError:  # deleted by a bulk statement (log out everywhere)
        return None
    absolute = timedelta(hours=_config().session_absolute_hours)
    left = min(last_seen_at + idle_limit(account), created_at + absolute) - utcnow()
    return max(0, int(left.total_seconds()))


def keep_alive(account: Account) -> None:
    """The user asked to stay signed in: the idle limit counts from now."""
    row = _current_row()
    if row is not None:
        row.last_seen_at = utcnow()
        db.session.commit()


def is_fresh(account: Account) -> bool:
    """Whether the log-in was (re-)confirmed recently enough for a sensitive action."""
    row = account.current_session
    if row is None:
        return False
    return utcnow() - row.authenticated_at <= timedelta(minutes=_config().step_up_minutes)


def has_second_factor_in_session(account: Account) -> bool:
    row = account.current_session
    return row is not None and row.second_factor_at is not None


def _attach(account: Account, token: str, row: UserSession) -> None:
    account.session_token = token
    account.current_session = row


def _current_row() -> UserSession | None:
    from flask_login import current_user

    if not getattr(current_user, "is_authenticated", False):
        return None
    row = current_user.current_session
    if row is None:
        return None
    return db.session.get(UserSession, row.id)


def purge_expired(now) -> int:
    """Delete sessions nobody can use any more (idle or past the absolute limit), also
    those whose cookie never came back. Returns how many went.

    An ended session stays a while longer (as long as a form draft lives): a form posted
    with it is then still kept for the account that was signed in (drafts)."""
    config = _config()
    idle = timedelta(minutes=max(config.client_idle_minutes, config.staff_idle_minutes))
    idle += drafts.DRAFT_TTL
    absolute = timedelta(hours=config.session_absolute_hours)
    return db.session.execute(
        delete(UserSession).where((UserSession.last_seen_at < now - idle)
                                  | (UserSession.created_at < now - absolute))
    ).rowcount
