"""The staff blueprint. Closed by default: every endpoint needs a signed-in staff member
with a second factor and a role that ``shared/policy.py`` names for it, except the short
list of open ones there; an endpoint the policy does not name is refused to every role."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shared import audit, policy
from shared.auth import login_flow, sessions

bp = Blueprint("staff", __name__)

# What the staff member is doing on each page that reads or changes client data: the
# client reads it in their access log ("opened the file", "a staff search").
PURPOSES = {
    # The start page names the clients of today's appointments and of the first requests.
    "staff.home": audit.BOOKING_LISTS,
    "staff.client_file": audit.OPEN_FILE,
    "staff.client_break_glass": audit.OPEN_FILE,
    "staff.clients": audit.FIND,
    "staff.bookings_queue": audit.BOOKING_LISTS,
    "staff.bookings_day": audit.BOOKING_LISTS,
    "staff.bookings_week": audit.BOOKING_LISTS,
    "staff.booking_decide": audit.BOOKING_DECISION,
    "staff.booking_propose": audit.BOOKING_DECISION,
    "staff.client_assign": audit.CASE_WORK,
    "staff.assignment_remove": audit.CASE_WORK,
    "staff.client_invite": audit.CASE_WORK,
    "staff.client_handover": audit.CASE_WORK,
    "staff.client_withdraw_invitation": audit.CASE_WORK,
    "staff.document_upload": audit.CASE_WORK,
    "staff.document_download": audit.CASE_WORK,
    "staff.note_add": audit.CASE_WORK,
    "staff.note_edit": audit.CASE_WORK,
    "staff.booking_confidential": audit.CASE_WORK,
    "staff.consent_request": audit.CONSENT_WORK,
    "staff.consent_receipt_staff": audit.CONSENT_WORK,
    "staff.corrections_queue": audit.CORRECTION_WORK,
    "staff.correction_answer": audit.CORRECTION_WORK,
    "staff.erasures_queue": audit.ERASURE_WORK,
    "staff.erasure_decide": audit.ERASURE_WORK,
    "staff.break_glass_review": audit.REVIEW,
    "staff.break_glass_reviewed": audit.REVIEW,
    "staff.account_recovery": audit.ACCOUNT_RECOVERY,
    "staff.account_recovery_cancel": audit.ACCOUNT_RECOVERY,
    "staff.messages_inbox": audit.MESSAGE_WORK,
    "staff.messages_mine": audit.MESSAGE_WORK,
    "staff.messages_all": audit.MESSAGE_WORK,
    "staff.message_take": audit.MESSAGE_WORK,
    "staff.message_join": audit.MESSAGE_WORK,
    "staff.message_thread": audit.MESSAGE_WORK,
    "staff.message_reply": audit.MESSAGE_WORK,
    "staff.message_since": audit.MESSAGE_WORK,
    "staff.message_attachment": audit.MESSAGE_WORK,
}
# Staff pages that read no client's data (so they log no visit); every page the policy
# names is either here or in PURPOSES (tests/portal/test_access_visits.py).
WITHOUT_CLIENT_DATA = frozenset({
    "staff.security", "staff.reauth", "staff.setup_second_factor",
    "staff.passkey_add_begin", "staff.passkey_add_finish", "staff.passkey_remove",
    "staff.passkey_rename", "staff.passkey_step_up_begin", "staff.passkey_step_up_finish",
    "staff.availability", "staff.availability_delete", "staff.services", "staff.service_edit",
    "staff.consent_templates", "staff.consent_template_edit", "staff.consent_template_publish",
    "staff.team", "staff.team_change", "staff.security_events", "staff.funder_reports",
    "staff.funder_reports_csv", "staff.message_notifications",
})


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
    audit.set_purpose(PURPOSES.get(request.endpoint))
    return None


from staff import (  # noqa: E402,F401  (views register on bp)
    auth,
    availability,
    bookings,
    clients,
    consents,
    corrections,
    home,
    messages,
    recovery,
    security,
    security_events,
    services,
    team,
)
