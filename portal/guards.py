"""Access checks for portal views."""

from __future__ import annotations

from functools import wraps

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shared.auth import login_flow, sessions

# What an account made by an invitation reaches before staff have confirmed in person that
# the young person holds it: how it signs in, and the notice. Everything else (the young
# person's data, appointments, consents, household, export, requests) leads to the notice;
# the services refuse as well (shared.services.household.own_client).
OPEN_WHILE_HANDOVER_PENDING = frozenset({
    "portal.handover_notice", "portal.security", "portal.totp_setup", "portal.totp_disable",
    "portal.recovery_codes", "portal.change_password", "portal.end_other_sessions",
    "portal.reauth", "portal.passkey_setup", "portal.first_recovery_codes",
})

# What an anonymous contact (shared/services/anonymous.py) reaches: their conversations,
# their account and its security, "my data", the export and deletion. Appointments,
# consents and the household need a person the organisation knows; those pages lead to
# the messages (and the ordinary account page to the anonymous one).
OPEN_TO_ANONYMOUS = OPEN_WHILE_HANDOVER_PENDING - {"portal.handover_notice"} | frozenset({
    "portal.anonymous_account", "portal.anonymous_email", "portal.anonymous_email_remove",
    "portal.messages_index", "portal.message_new",
    "portal.message_thread", "portal.message_reply", "portal.message_since",
    "portal.message_attachment", "portal.my_data", "portal.my_data_access",
    "portal.my_data_export", "portal.my_data_delete",
})


def client_required(view):
    """The view needs a signed-in client (a staff account is not a client), and one whose
    hand-over is not pending unless the view is about signing in. After signing in, the
    client continues where they were going (see login_flow.return_address)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            flash(_("Please sign in to continue."), "info")
            return redirect(url_for("portal.login", next=login_flow.return_address()))
        if not current_user.is_client:
            flash(_("You are signed in with a staff account. The portal is for clients."),
                  "warning")
            return redirect(url_for("staff.home"))
        if (current_user.handover_pending
                and request.endpoint not in OPEN_WHILE_HANDOVER_PENDING):
            return redirect(url_for("portal.handover_notice"))
        if current_user.is_pseudonymous and request.endpoint not in OPEN_TO_ANONYMOUS:
            return redirect(url_for("portal.anonymous_account"
                                    if request.endpoint == "portal.account"
                                    else "portal.messages_index"))
        return view(*args, **kwargs)

    return wrapper


def fresh_required(view):
    """The view changes something sensitive: the log-in must have been confirmed recently.
    After the confirmation the user comes back to this page, or, when a form was posted,
    to the page that holds it (else the security page): the form is shown again and
    nothing is done that was not asked for after confirming."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not sessions.is_fresh(current_user):
            back = login_flow.return_address() or url_for("portal.security")
            return redirect(url_for("portal.reauth", next=back))
        return view(*args, **kwargs)

    return wrapper
