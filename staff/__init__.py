"""The staff blueprint. Closed by default: every endpoint needs a signed-in staff member
with a second factor and a role that ``shared/policy.py`` names for it, except the short
list of open ones there; an endpoint the policy does not name is refused to every role."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shared import policy
from shared.auth import login_flow, sessions

bp = Blueprint("staff", __name__)


def current_session_id():
    """The signed-in staff member's session id: break-glass grants hold for one session."""
    return current_user.current_session.id if current_user.current_session else None


@bp.before_request
def closed_by_default():
    if request.endpoint in policy.OPEN_ENDPOINTS:
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
        if request.endpoint in policy.SETUP_ENDPOINTS and not current_user.has_second_factor:
            return None
        if request.endpoint == "staff.logout":
            return None
        return redirect(url_for("staff.setup_second_factor"))
    if not policy.may_use(member.role, request.endpoint):
        abort(403)  # also for an endpoint the policy does not name
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
