"""Admins review recent security events (sign-ins, lockouts, refusals, key rotations)."""

from __future__ import annotations

from flask import current_app, render_template, request

from shared import security_log
from staff import bp


@bp.get("/security-events")
def security_events():
    page = request.args.get("page", 1, type=int) or 1
    page = max(1, min(page, 10_000))
    return render_template(
        "staff/security_events.html", result=security_log.review_page(page=page),
        days=current_app.extensions["einblick"].config.security_event_days,
        event_types=security_log.BY_NAME, outcomes=security_log.OUTCOMES,
    )
