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
"""

from __future__ import annotations

import json
import logging
import sys
import typing
import uuid
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, g, has_app_context, has_request_context, request
from flask_babel import lazy_gettext as _l

from shared.models.base import current_keyring, utcnow

OK = "ok"
FAILED = "failed"
REFUSED = "refused"
OUTCOMES = {OK: _l("succeeded"), FAILED: _l("failed"), REFUSED: _l("refused")}


@dataclass(frozen=True)
class EventType:
    name: str
    label: object
    meaning: str  # English, for the README and the operator reading the JSON lines


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("login.password", _l("Sign-in with password"),
              "A password was checked at sign-in (ok: right password; failed: wrong address "
              "or password)."),
    EventType("login.second_factor", _l("Second step of sign-in"),
              "An authenticator or recovery code was checked after the right password "
              "(failed: wrong or already used code)."),
    EventType("login.passkey", _l("Sign-in with a passkey"),
              "A passkey assertion was checked at sign-in or as the second step."),
    EventType("login.restarted", _l("Sign-in restarted after too many wrong codes"),
              "Five wrong codes ended a pending sign-in; the password must be given again."),
    EventType("login.password_known", _l("Right password, then wrong codes"),
              "The owner was emailed that someone seems to know their password."),
    EventType("ratelimit.exceeded", _l("Too many attempts"),
              "A rate limit answered 429 (sign-in, codes, registration, reset, exports, "
              "requests)."),
    EventType("access.denied", _l("Page refused"),
              "A signed-in user was refused a page or action: HTTP 403, or 404 where the "
              "answer does not tell whether the thing exists (always refused)."),
    EventType("password.changed", _l("Password changed"),
              "A password was changed while signed in."),
    EventType("password.reset", _l("Password reset by email link"),
              "A password was set through an emailed reset link."),
    EventType("totp.enabled", _l("Authenticator app turned on"), "TOTP was turned on."),
    EventType("totp.disabled", _l("Authenticator app turned off"), "TOTP was turned off."),
    EventType("passkey.added", _l("Passkey added"), "A passkey was registered."),
    EventType("passkey.removed", _l("Passkey removed"), "A passkey was removed."),
    EventType("passkey.anomaly", _l("Passkey counter went backwards"),
              "A passkey's signature counter did not increase (a possible copy); the "
              "sign-in was refused, the owner emailed and the passkey flagged."),
    EventType("sessions.ended", _l("Signed out everywhere else"),
              "Sessions of an account were ended: sign out everywhere else (also offered "
              "when a factor is removed), a password change or reset, a new second factor."),
    EventType("break_glass.opened", _l("File opened with a reason (break-glass)"),
              "A staff member opened a file they are not assigned to, giving a reason."),
    EventType("invitation.sent", _l("Invitation to an account of their own"),
              "A guardian or staff member invited a young person to their own account."),
    EventType("invitation.confirmed", _l("Own account confirmed in person"),
              "Staff confirmed in person that the young person holds their account."),
    EventType("consent.given", _l("Consent signed"), "A consent was signed."),
    EventType("consent.withdrawn", _l("Consent withdrawn"), "A consent was withdrawn."),
    EventType("export.downloaded", _l("Data export downloaded"),
              "A client downloaded the export of their data."),
    EventType("erasure.done", _l("Account deleted"),
              "A client's account was erased (and kept items restricted), or an admin "
              "erased what a restricted file still kept (account: the admin)."),
    EventType("keys.rotated", _l("Master key rotated"),
              "Every data key was re-wrapped under a new key-encryption key."),
)
BY_NAME = {event.name: event for event in EVENT_TYPES}

_LOGGER_NAME = "einblick.security"


def pseudonym(account_id: uuid.UUID | str | None) -> str | None:
    """A stable, non-reversible stand-in for an account id (32 hex digits)."""
    if account_id is None:
        return None
    return current_keyring().blind_index("security.account", str(account_id)).hex()[:32]


def record(event: str, *, outcome: str = OK, account=None,
           account_id: uuid.UUID | None = None, account_kind: str | None = None) -> None:
    """Write one security event (see EVENT_TYPES). ``account`` or ``account_id`` names
    whom it is about; neither is written in clear."""
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
    _logger().info(json.dumps(line, ensure_ascii=True, separators=(",", ":")))
    if has_app_context():
        g.setdefault("security_events", []).append(
            {"at": at, "event": event, "outcome": outcome, "account_kind": account_kind,
             "account_ref": ref})


def store_pending(_exc: BaseException | None = None) -> None:
    """Store the app context's events in their own transaction (teardown hook)."""
    events = g.pop("security_events", None)
    if not events:
        return
    from shared.extensions import db
    from shared.models.security import SecurityEvent

    try:
        # What the request left uncommitted is discarded at teardown anyway; ending it
        # here also releases SQLite's write lock before the events are written.
        db.session.rollback()
        db.session.add_all([SecurityEvent(**event) for event in events])
        db.session.commit()
    except Exception:  # the JSON lines are already out; never fail a response over this
        db.session.rollback()
        logging.getLogger(__name__).exception("could not store %d security events",
                                              len(events))


def _logger() -> logging.Logger:
    """The JSON-lines logger, bound once per destination (stderr, a file, or none)."""
    destination = current_app.extensions["einblick"].config.security_log
    logger = logging.getLogger(f"{_LOGGER_NAME}.{destination}")
    if not getattr(logger, "_einblick_bound", False):
        logger.propagate = False
        logger.setLevel(logging.INFO)
        if destination == "stderr":
            handler: logging.Handler = logging.StreamHandler(sys.stderr)
        elif destination == "none":
            handler = logging.NullHandler()
        else:
            from logging.handlers import WatchedFileHandler

            handler = WatchedFileHandler(destination, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger._einblick_bound = True  # type: ignore[attr-defined]
    return logger


def recent(*, page: int, per_page: int = 50) -> tuple[list, bool]:
    """One page of stored events, newest first, and whether an older page exists."""
    from sqlalchemy import select

    from shared.extensions import db
    from shared.models.security import SecurityEvent

    rows = list(db.session.scalars(
        select(SecurityEvent).order_by(SecurityEvent.at.desc(), SecurityEvent.id)
        .offset((page - 1) * per_page).limit(per_page + 1)))
    return rows[:per_page], len(rows) > per_page


def purge_before(cutoff: datetime) -> int:
    """Delete stored events older than ``cutoff`` (the retention purge calls this)."""
    from sqlalchemy import delete

    from shared.extensions import db
    from shared.models.security import SecurityEvent

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
