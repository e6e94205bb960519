"""The security event log: one JSON line per event for the log shipper, and a row that
admins can review at /staff/security-events.

A line holds the UTC time, the event's name, the outcome, a pseudonymous account id
(an HMAC of the account id under a key derived from the index key, so lines about one
account can be correlated without naming it), the client's address and user agent.
Never a name, an email address, a code, a token or a password. ``json.dumps`` escapes
CR and LF, so nothing a client sends can forge a line.

Events are written as JSON at once. The database rows are collected per app context and
stored after the request has finished (``store_pending``), in a transaction of their own,
so an event survives the rollback of the request that raised it (a failed sign-in) and a
rolled-back request never takes a half-written row with it.

The destination is opened once at start-up (``open_log``), so a wrong path stops the app
with a clear message instead of failing sign-ins later; a write that fails afterwards (a
full disk, a folder removed) is reported to the normal log and never fails the request.

Anonymous floods write JSON lines but few rows: ``ratelimit.exceeded`` keeps at most one
row per client address, endpoint and minute, a failed sign-in without an account at most
one row per client address and minute (``ROWS_PER_SOURCE``). The count lives in the rate
limiter's storage, so with Redis all workers share it.
"""

from __future__ import annotations

import json
import logging
import sys
import typing
import uuid
from dataclasses import dataclass
from datetime import datetime
from logging.handlers import WatchedFileHandler

from flask import Flask, current_app, g, has_app_context, has_request_context, request
from flask_babel import lazy_gettext as _l
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import delete, select

from shared.config import ConfigError
from shared.models.accounts import STAFF
from shared.models.base import current_keyring, utcnow
from shared.models.security import SecurityEvent
from shared.models.staff import StaffMember

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"
REFUSED = "refused"
OUTCOMES = {OK: _l("succeeded"), FAILED: _l("failed"), REFUSED: _l("refused")}
# Stored rows for events anyone can cause without an account (the JSON line is always
# written): see the module docstring.
ROWS_PER_SOURCE = parse("1 per minute")
RATE_LIMITED = "ratelimit.exceeded"
SIGN_IN_EVENTS = frozenset({"login.password", "login.passkey"})


@dataclass(frozen=True)
class EventType:
    name: str
    label: object
    meaning: str  # English, for the README and the operator reading the JSON lines


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("login.password", _l("Sign-in with password"),
              "A password was checked at sign-in (ok: right password; failed: wrong password, "
              "or an address without an account: then `account` is empty and `account_kind` "
              "says which sign-in was tried)."),
    EventType("login.second_factor", _l("Second step of sign-in"),
              "An authenticator or recovery code was checked after the right password "
              "(failed: wrong or already used code; refused: not checked, because this "
              "pending sign-in had used its five tries already, as with a replayed session "
              "cookie, or because too many wrong codes for the account came today from "
              "unknown browsers, or from this known device)."),
    EventType("login.passkey", _l("Sign-in with a passkey"),
              "A passkey was checked at sign-in or as the second step (failed: not accepted, "
              "as an unknown passkey, an expired challenge, a bad signature or a counter that "
              "went backwards; `account` is empty if the passkey belongs to no account; "
              "refused: a valid passkey whose account may not sign in there, as one of the "
              "other area, an unconfirmed address or a deactivated staff member, or a "
              "passkey marked as possibly copied)."),
    EventType("login.restarted", _l("Sign-in restarted after too many wrong codes"),
              "Five wrong codes ended a pending sign-in; the password must be given again "
              "(always refused)."),
    EventType("login.password_known", _l("Right password, then wrong codes"),
              "The owner was emailed that someone seems to know their password: the right "
              "password was followed by five wrong codes in one sign-in, or by five since the "
              "account's last complete sign-in, or by a code refused because of too many "
              "wrong codes today (at most one email an hour)."),
    EventType("ratelimit.exceeded", _l("Too many attempts"),
              "A rate limit answered 429 (sign-in, codes, registration, reset, exports, "
              "requests); always refused."),
    EventType("access.denied", _l("Access denied"),
              "A signed-in user was refused a page or action: HTTP 403, or 404 where the "
              "answer does not tell whether the thing exists (always refused)."),
    EventType("password.changed", _l("Password changed"),
              "A password was changed while signed in (failed: the current password given "
              "was wrong; nothing changed)."),
    EventType("password.reset", _l("Password reset by email link"),
              "A password was set through an emailed reset link."),
    EventType("reauth", _l("Confirmation before a security change"),
              "A signed-in user confirmed that it is them before a sensitive change (a second "
              "factor, the password, sessions), with the password (and code) or a passkey "
              "(failed: wrong password, code or passkey; refused: a passkey marked as "
              "possibly copied)."),
    EventType("totp.enabled", _l("Authenticator app turned on"), "TOTP was turned on."),
    EventType("totp.disabled", _l("Authenticator app turned off"), "TOTP was turned off."),
    EventType("recovery_codes.renewed", _l("New recovery codes"),
              "Ten new recovery codes replaced the old ones, which no longer work."),
    EventType("account_recovery.started", _l("Account recovery started by staff"),
              "A staff member started a recovery of a client's account after checking their "
              "identity in person; the client was emailed, and it takes effect after the "
              "waiting period (`recovery_wait_hours`)."),
    EventType("account_recovery.cancelled", _l("Account recovery cancelled"),
              "A pending recovery was cancelled, by the client or by staff."),
    EventType("account_recovery.completed", _l("Account recovered"),
              "After the waiting period a password reset with the hand-over code staff gave "
              "in person signed the client in without a second factor, once; their "
              "authenticator app, passkeys and recovery codes were removed (failed: a wrong "
              "hand-over code; the fifth cancels the recovery)."),
    EventType("passkey.added", _l("Passkey added"), "A passkey was registered."),
    EventType("passkey.removed", _l("Passkey removed"), "A passkey was removed."),
    EventType("passkey.anomaly", _l("Passkey counter went backwards"),
              "A passkey's signature counter did not increase (a possible copy); the "
              "sign-in was refused and the passkey flagged, so that it is refused everywhere "
              "until the owner removes it; the first time, every session of the account "
              "ended and the owner was emailed (always refused)."),
    EventType("sessions.ended", _l("Signed out everywhere else"),
              "Sessions of an account were ended: sign out everywhere else (also offered "
              "when a factor is removed), a password change or reset, a new second factor."),
    EventType("staff.changed", _l("Staff account changed"),
              "An admin changed a staff account's role, deactivated or reactivated it, or a "
              "new invitation was sent to it (also by `flask staff invite`); `account` is the "
              "staff account changed (refused: an admin tried to change their own role or "
              "deactivate themselves; then `account` is the admin)."),
    EventType("break_glass.opened", _l("File opened with a reason (break-glass)"),
              "A staff member opened a file they are not assigned to, giving a reason."),
    EventType("invitation.sent", _l("Invitation to an account of their own"),
              "A guardian or staff member invited a young person to their own account "
              "(refused: the address already has an account, or staff gave the address of "
              "a staff account; no invitation went out)."),
    EventType("invitation.confirmed", _l("Own account confirmed in person"),
              "Staff confirmed in person that the young person holds their account "
              "(refused: the staff member who sent the invitation tried to confirm it)."),
    EventType("invitation.withdrawn", _l("Invitation to an account of their own withdrawn"),
              "A guardian or a staff member with the full file withdrew an invitation that "
              "staff had not yet confirmed in person; the account made with it, if any, was "
              "deleted with its sessions, passkeys, links and recovery codes (refused: staff "
              "found no open invitation)."),
    EventType("consent.given", _l("Consent signed"), "A consent was signed."),
    EventType("consent.withdrawn", _l("Consent withdrawn"), "A consent was withdrawn."),
    EventType("export.downloaded", _l("Data export downloaded"),
              "A client downloaded the export of their data."),
    EventType("erasure.done", _l("Account deleted"),
              "A client's account was erased (and kept items restricted), or an admin "
              "erased what a restricted file still kept (account: the admin)."),
    EventType("keys.rotated", _l("Master key rotated"),
              "Every data key was re-wrapped under a new key-encryption key."),
    EventType("keys.retired", _l("Old master keys retired"),
              "Every key-encryption key but the primary was retired: no data key and no "
              "running process used them any more."),
)
BY_NAME = {event.name: event for event in EVENT_TYPES}

_EXTENSION = "einblick.security_log"


class _RaisingHandlerMixin:
    """Let a failed write reach ``record`` (logging would print the line to stderr)."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # logging calls this inside its ``except`` block: re-raises that error


class _StderrHandler(_RaisingHandlerMixin, logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test runner may swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


class _FileHandler(_RaisingHandlerMixin, WatchedFileHandler):
    """Reopens the file after logrotate moved it."""


@dataclass(frozen=True)
class _Destination:
    logger: logging.Logger
    rows: FixedWindowRateLimiter  # counts stored rows per source (see ROWS_PER_SOURCE)


def open_log(app: Flask) -> None:
    """Start-up step: open the configured destination once and bind it to ``app``.

    Raises ConfigError if the file cannot be opened, so a wrong path stops the start
    instead of failing the first sign-in."""
    config = app.extensions["einblick"].config
    destination = config.security_log
    handler: logging.Handler
    if destination == "stderr":
        handler = _StderrHandler()
    elif destination == "none":
        handler = logging.NullHandler()
    else:
        try:
            handler = _FileHandler(destination, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"EINBLICK_SECURITY_LOG: cannot open {destination} for writing "
                f"({exc.strerror}). Give a file in a folder this user may write to, or "
                "set EINBLICK_SECURITY_LOG=stderr.") from exc
    handler.setFormatter(logging.Formatter("%(message)s"))
    # Not registered with logging's global manager: each app owns its handler, and
    # nothing a library configures on the root logger can redirect these lines.
    logger = logging.Logger("einblick.security_events", logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    from shared.extensions import limiter_storage_options

    rows = FixedWindowRateLimiter(storage_from_string(config.ratelimit_storage_uri,
                                                      **limiter_storage_options(config)))
    app.extensions[_EXTENSION] = _Destination(logger=logger, rows=rows)


def pseudonym(account_id: uuid.UUID | str | None) -> str | None:
    """A stable, non-reversible stand-in for an account id (32 hex digits)."""
    if account_id is None:
        return None
    return current_keyring().blind_index("security.account", str(account_id)).hex()[:32]


def record(event: str, *, outcome: str = OK, account=None,
           account_id: uuid.UUID | None = None, account_kind: str | None = None) -> None:
    """Write one security event (see EVENT_TYPES). ``account`` or ``account_id`` names
    whom it is about; neither is written in clear. Never fails the caller over a write."""
    if event not in BY_NAME:
        raise KeyError(f"unknown security event {event!r}: declare it in EVENT_TYPES")
    if outcome not in OUTCOMES:
        raise KeyError(f"unknown outcome {outcome!r}")
    if account is not None:
        account_id = account.id
        account_kind = account.kind
    at = utcnow()
    ref = pseudonym(account_id)
    line = {
        "time": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": event,
        "outcome": outcome,
        "account": ref,
        "account_kind": account_kind,
    }
    if has_request_context():
        line["ip"] = request.remote_addr
        line["user_agent"] = (request.user_agent.string or "")[:256]
        # The endpoint, not the path: paths can carry tokens (/reset/<token>).
        line["endpoint"] = request.endpoint
    destination = current_app.extensions[_EXTENSION]
    try:
        destination.logger.info(json.dumps(line, ensure_ascii=True, separators=(",", ":")))
    except Exception as exc:  # a full disk or a removed folder must not fail a sign-in
        # Only the reason: the event itself (address, user agent) stays out of this log.
        log.error("could not write a security event to %s: %s",
                  current_app.extensions["einblick"].config.security_log, _reason(exc))
    if has_app_context() and _deserves_row(destination.rows, event=event, outcome=outcome,
                                           account_id=account_id):
        g.setdefault("security_events", []).append(
            {"at": at, "event": event, "outcome": outcome, "account_kind": account_kind,
             "account_ref": ref})


def _deserves_row(rows: FixedWindowRateLimiter, *, event: str, outcome: str,
                  account_id: uuid.UUID | None) -> bool:
    """False for a repeat, within a minute, of an event anyone can cause from one address
    without an account (an anonymous flood must not fill the table admins read)."""
    if not has_request_context():
        return True
    address = request.remote_addr or "-"
    if event == RATE_LIMITED:
        key: tuple[str, ...] = ("rate-limited", address, request.endpoint or "-")
    elif event in SIGN_IN_EVENTS and outcome == FAILED and account_id is None:
        key = ("sign-in-without-account", address)
    else:
        return True
    try:
        return rows.hit(ROWS_PER_SOURCE, "security-event-row", *key)
    except Exception as exc:  # storage unreachable: keep the row rather than lose it
        log.error("could not count security event rows: %s", _reason(exc))
        return True


def _reason(exc: Exception) -> str:
    """Why a write failed, without the text that was being written."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def store_pending(_exc: BaseException | None = None) -> None:
    """Store the app context's events in their own transaction (teardown hook)."""
    events = g.pop("security_events", None)
    if not events:
        return
    from shared.extensions import db

    try:
        # What the request left uncommitted is discarded at teardown anyway; ending it
        # here also releases SQLite's write lock before the events are written.
        db.session.rollback()
        db.session.add_all([SecurityEvent(**event) for event in events])
        db.session.commit()
    except Exception:  # the JSON lines are already out; never fail a response over this
        db.session.rollback()
        log.exception("could not store %d security events", len(events))


@dataclass(frozen=True)
class EventPage:
    """One page of stored events for the admins' review page."""

    events: list[SecurityEvent]
    page: int
    has_older: bool
    # Pseudonym -> name, for the staff accounts on this page. Clients stay unnamed:
    # naming them here would be a read of their data that nobody logged.
    staff_names: dict[str, str]


def review_page(*, page: int, per_page: int = 50) -> EventPage:
    """Stored events, newest first, with the names of the staff members they are about.

    Two queries whatever the page holds: the events, and (if any is about staff) every
    staff member with account and keys joined, matched by pseudonym in Python (a
    pseudonym cannot be looked up; staff are few)."""
    from shared.extensions import db

    rows = list(db.session.scalars(
        select(SecurityEvent).order_by(SecurityEvent.at.desc(), SecurityEvent.id)
        .offset((page - 1) * per_page).limit(per_page + 1)))
    events = rows[:per_page]
    refs = {e.account_ref for e in events if e.account_kind == STAFF and e.account_ref}
    names: dict[str, str] = {}
    if refs:
        for member in db.session.scalars(select(StaffMember)).unique():
            ref = pseudonym(member.account_id)
            if ref in refs:
                names[ref] = member.name or member.account.email
    return EventPage(events=events, page=page, has_older=len(rows) > per_page,
                     staff_names=names)


def purge_before(cutoff: datetime) -> int:
    """Delete stored events older than ``cutoff`` (the retention purge calls this)."""
    from shared.extensions import db

    return db.session.execute(delete(SecurityEvent).where(SecurityEvent.at < cutoff)).rowcount


def deny(status: int = 404) -> typing.NoReturn:
    """Refuse the current request as an authorization denial: ``access.denied`` (refused)
    for the signed-in user, then abort with ``status``.

    For what the services say a user may not see or do (casefile.NoAccess,
    household.NotAllowed, …), answered 404 where not even its existence is to be told.
    An object that simply is not there is a plain ``abort(404)``. A 403 is recorded by the
    app's 403 handler, so it is not recorded twice here."""
    from flask import abort
    from flask_login import current_user

    if status != 403 and current_user.is_authenticated:
        record("access.denied", outcome=REFUSED, account=current_user)
    abort(status)
