"""The staff blueprint. Closed by default: every endpoint needs a signed-in staff member
with a second factor, except the short list of open ones below."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shared.auth import login_flow, sessions

bp = Blueprint("staff", __name__)

OPEN_ENDPOINTS = frozenset(
    {
        "staff.login",
        "staff.login_second_factor",
        "staff.invitation",
        "staff.logout",
        "staff.passkey_login_begin",
        "staff.passkey_login_finish",
        "staff.passkey_second_factor_begin",
        "staff.passkey_second_factor_finish",
    }
)
# Reachable after the password but before a second factor exists.
SETUP_ENDPOINTS = frozenset(
    {
        "staff.setup_second_factor",
        "staff.logout",
        "staff.passkey_add_begin",
        "staff.passkey_add_finish",
    }
)
# Endpoints limited to some roles; any other staff endpoint is open to every role.
ENDPOINT_ROLES: dict[str, frozenset[str]] = {}


@bp.before_request
def closed_by_default():
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        # After signing in: the page asked for, or for a posted form the page holding it.
        return redirect(url_for("staff.login", next=login_flow.return_address()))
    if not current_user.is_staff:
        abort(403)
    member = current_user.staff_member
    if member is None or not member.active:
        sessions.end_current()
        flash(_("This staff account is not active."), "error")
        return redirect(url_for("staff.login"))
    if not current_user.has_second_factor or not sessions.has_second_factor_in_session(
        current_user
    ):
        if request.endpoint in SETUP_ENDPOINTS and not current_user.has_second_factor:
            return None
        if request.endpoint == "staff.logout":
            return None
        return redirect(url_for("staff.setup_second_factor"))
    allowed = ENDPOINT_ROLES.get(request.endpoint or "")
    if allowed is not None and member.role not in allowed:
        abort(403)
    return None


from staff import (  # noqa: E402,F401  (views register on bp)
    auth,
    availability,
    bookings,
    clients,
    consents,
    corrections,
    home,
    security,
    security_events,
    services,
    team,
)
