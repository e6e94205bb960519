"""Account recovery from the case file: after checking a client's identity in person, staff
start a recovery that takes effect after a waiting period (see
shared/services/account_recovery.py), or cancel one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from shared import security_log
from shared.auth import ratelimits
from shared.auth.forms import ConfirmForm
from shared.extensions import limiter
from shared.models.recovery import AccountRecovery
from shared.services import account_recovery, casefile
from staff import bp, current_session_id

NOTE_TOO_SHORT = _l("Please write down how you checked the identity, e.g. “ID card seen”.")


class StartRecoveryForm(FlaskForm):
    identity_check = StringField(
        _l("How did you check the identity?"),
        validators=[DataRequired(NOTE_TOO_SHORT),
                    Length(min=account_recovery.MIN_NOTE_LENGTH, message=NOTE_TOO_SHORT),
                    Length(max=account_recovery.MAX_NOTE_LENGTH)],
        description=_l("For example “ID card seen”. The client can read this note."),
        render_kw={"autocomplete": "off"})
    submit = SubmitField(_l("Start the recovery"))


@dataclass(frozen=True)
class FileOffer:
    """The case file's part on recovery: the open one, if any, and the cancel button's form."""

    pending: AccountRecovery | None
    form: ConfirmForm


@bp.app_template_global("account_recovery_offer")
def account_recovery_offer(client) -> FileOffer | None:
    """For the case file (``staff/_recovery.html``): None unless the signed-in staff member
    may recover this client's account. The file's visit is already logged by then."""
    member = current_user.staff_member
    if client.account is None or client.restricted_at is not None \
            or not account_recovery.may_recover(member, client.id):
        return None
    return FileOffer(pending=account_recovery.pending(client.account), form=ConfirmForm())


@bp.route("/clients/<uuid:client_id>/recovery", methods=["GET", "POST"],
          endpoint="account_recovery")
# Each start emails the client: started and cancelled again and again, it must not flood them.
@limiter.limit(ratelimits.MAIL_SENDING, key_func=ratelimits.signed_in_account_key,
               methods=["POST"])
def account_recovery_page(client_id: uuid.UUID):
    """What a recovery does, the open one if any, and the form to start one."""
    member = current_user.staff_member
    form = StartRecoveryForm()
    started = None
    if form.validate_on_submit():
        try:
            started = account_recovery.start(member=member, client_id=client_id,
                                   session_id=current_session_id(),
                                   identity_check=form.identity_check.data)
        except casefile.NeedsBreakGlass:
            return redirect(url_for("staff.client_break_glass", client_id=client_id))
        except casefile.NoAccess:
            security_log.deny()
        except account_recovery.NoteTooShort:
            form.identity_check.errors.append(str(NOTE_TOO_SHORT))
        except account_recovery.NoOwnAccount:
            abort(404)
        except account_recovery.AlreadyPending:
            flash(_("A recovery of this account is already under way."), "warning")
            return redirect(url_for("staff.account_recovery", client_id=client_id))
        else:
            flash(_("The recovery is started. The client was emailed. Once the waiting time "
                    "is over they can set a new password and, with the hand-over code below, "
                    "sign in without the second step."), "success")
    try:
        view = account_recovery.for_staff(member=member, client_id=client_id,
                                          session_id=current_session_id())
    except casefile.NeedsBreakGlass:
        return redirect(url_for("staff.client_break_glass", client_id=client_id))
    except casefile.NoAccess:
        security_log.deny()
    # The hand-over code is on this one answer only (never redirected to, stored or mailed).
    response = make_response(render_template(
        "staff/account_recovery.html", view=view, form=form, cancel_form=ConfirmForm(),
        handover_code=started.handover_code if started else None),
        400 if form.errors else 200)
    if started is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/clients/<uuid:client_id>/recovery/cancel")
def account_recovery_cancel(client_id: uuid.UUID):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        account_recovery.cancel_by_staff(member=current_user.staff_member, client_id=client_id,
                                         session_id=current_session_id())
    except casefile.NeedsBreakGlass:
        return redirect(url_for("staff.client_break_glass", client_id=client_id))
    except casefile.NoAccess:
        security_log.deny()
    except (account_recovery.NothingToCancel, account_recovery.NoOwnAccount):
        flash(_("There is no recovery under way to cancel."), "warning")
    else:
        flash(_("The recovery is cancelled. The client was emailed."), "success")
    return redirect(url_for("staff.account_recovery", client_id=client_id))
