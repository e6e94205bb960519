"""Admins review recent security events (sign-ins, lockouts, refusals, key rotations)."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import select

from shared import security_log
from shared.extensions import db
from shared.models.accounts import STAFF, Account
from staff import ENDPOINT_ROLES, bp
from staff.home import ROLE_NAMES


@bp.get("/security-events")
def security_events():
    page = request.args.get("page", 1, type=int) or 1
    page = max(1, min(page, 10_000))
    events, has_older = security_log.recent(page=page)
    return render_template(
        "staff/security_events.html", events=events, page=page, has_older=has_older,
        staff_names=_staff_names({e.account_ref for e in events if e.account_kind == STAFF}),
        event_types=security_log.BY_NAME, outcomes=security_log.OUTCOMES,
        role_names=ROLE_NAMES,
    )


def _staff_names(refs: set[str | None]) -> dict[str, str]:
    """Staff names for the pseudonyms on this page (staff are few; clients stay unnamed:
    naming them here would be a read of their data that nobody logged)."""
    if not refs:
        return {}
    names: dict[str, str] = {}
    for account in db.session.scalars(select(Account).where(Account.kind == STAFF)):
        ref = security_log.pseudonym(account.id)
        if ref in refs and account.staff_member is not None:
            names[ref] = account.staff_member.name or account.email
    return names


ENDPOINT_ROLES.update({"staff.security_events": frozenset({"admin"})})
