"""Rate-limit keys and rules. State lives in the limiter's storage (memory or Redis)."""

from __future__ import annotations

from flask import g, request

from shared.auth import login_flow
from shared.extensions import client_address
from shared.models.base import current_keyring
from shared.validation import email_identity

PER_ADDRESS = "30 per minute; 300 per hour"
PER_ACCOUNT_FAILURES = "10 per 15 minutes"
# Step-ups of a signed-in user, and per pending sign-in (pending_account_key). Wrong codes
# at sign-in are counted in shared.auth.code_attempts, never per account. Always used with
# deduct_when=only_failures (the view calls mark_failure for a wrong code or password):
# a caseworker confirms it's them many times a day, and right codes must never add up to
# a refusal.
SECOND_FACTOR = "5 per 5 minutes; 20 per day"
MAIL_SENDING = "5 per 15 minutes"


def retry_time(limit) -> str:
    """For a page that answers a breached limit (``on_breach``): when the fullest of the
    limits this request breached frees up again, as the reader says it ("15:40", or
    "Mittwoch, 03:15" on another day)."""
    from datetime import UTC, datetime

    from shared.i18n import format_clock, format_day
    from shared.models.base import utcnow

    g.retry_at = max(g.get("retry_at", 0), limit.reset_at)
    at = datetime.fromtimestamp(g.retry_at, UTC)
    if format_day(at) == format_day(utcnow()):
        return format_clock(at, "short")
    return f"{format_day(at, 'EEEE')}, {format_clock(at, 'short')}"


def submitted_email_key() -> str:
    """The blind index of the submitted address in its one normal form
    (``email_identity``), so every way of writing it shares one budget."""
    email = email_identity(request.form.get("email") or "")
    if not email:
        return "no-email:" + client_address()
    return "email:" + current_keyring().blind_index("ratelimit.email", email).hex()


def pending_account_key() -> str:
    """Per pending sign-in (its random attempt id), so that someone who knows the password
    cannot lock the owner's account by failing on purpose."""
    return "second-factor:" + (login_flow.pending_key() or client_address())


def signed_in_account_key() -> str:
    """Per account, so people sharing one address (an office, a mobile network) do not
    block each other."""
    from flask_login import current_user

    if getattr(current_user, "is_authenticated", False):
        return "account:" + str(current_user.id)
    return "anonymous:" + client_address()


def mark_failure() -> None:
    """Count this request against limits that use ``only_failures``."""
    g.auth_failed = True


def only_failures(_response) -> bool:
    """deduct_when for limits on wrong answers: requests that succeeded cost nothing."""
    return bool(g.get("auth_failed"))


# Per signed-in account (signed_in_account_key), counting only what was done: an export
# builds a ZIP of everything, a correction request lands in a caseworker's queue.
EXPORT_DOWNLOADS = "3 per hour; 10 per day"
CORRECTION_REQUESTS = "10 per hour; 30 per day"
# A child added in the portal is a client of their own who can hold booking requests; the
# cap per account on those holds is the guard, this keeps made-up households small.
DEPENDANTS_ADDED = "10 per day"
