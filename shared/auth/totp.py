"""TOTP second factor: enrolment, QR code, and verification that never accepts a step twice."""

from __future__ import annotations

import time

import pyotp
import segno
from sqlalchemy import or_, update

from shared.extensions import db
from shared.models.accounts import Account

STEP_SECONDS = 30


def clock() -> float:
    """The clock TOTP checks against (tests move it forward instead of waiting)."""
    return time.time()


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(*, secret: str, account_name: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """An inline SVG QR code, rendered here (no third-party request)."""
    return segno.make(uri, error="m").svg_inline(
        scale=4, border=2, dark="#000", light="#fff", omitsize=True
    )


def matching_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The time step (current or previous only) whose code equals ``code``, else None."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return None
    now = clock() if at is None else at
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_SECONDS)
    for step in (current, current - 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def verify_and_consume(account: Account, code: str, *, at: float | None = None) -> bool:
    """Check a code for an account with TOTP, and mark its time step used.

    The update is conditional on the stored step being older, so two workers racing with
    the same code cannot both succeed.
    """
    if not account.totp_secret:
        return False
    step = matching_step(account.totp_secret, code, at=at)
    if step is None:
        return False
    return consume_step(account, step)


def consume_step(account: Account, step: int) -> bool:
    result = db.session.execute(
        update(Account)
        .where(Account.id == account.id)
        .where(or_(Account.totp_last_step.is_(None), Account.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    account.totp_last_step = step
    db.session.commit()
    return True
