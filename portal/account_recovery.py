"""A recovery staff started after checking the client's identity in person: the notice on
the start and security pages, and cancelling it (see shared/services/account_recovery.py)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import bp
from portal.guards import client_required
from shared.auth.forms import ConfirmForm
from shared.models.recovery import AccountRecovery
from shared.services import account_recovery, household


@dataclass(frozen=True)
class Notice:
    recovery: AccountRecovery
    phone: str
    form: ConfirmForm


@bp.app_template_global("account_recovery_notice")
def account_recovery_notice() -> Notice | None:
    """The signed-in client's open recovery, for ``portal/_recovery_notice.html``."""
    if not current_user.is_authenticated or not current_user.is_client:
        return None
    recovery = account_recovery.pending(current_user)
    if recovery is None:
        return None
    return Notice(recovery=recovery, phone=household.organisation_phone(), form=ConfirmForm())


@bp.app_template_global("account_recovery_for_sign_in")
def account_recovery_for_sign_in(account) -> AccountRecovery | None:
    """At the second step of a sign-in (the password was right): the account's open
    recovery, so the page can say that a new password by email gets the client in."""
    if account is None or not account.is_client:
        return None
    return account_recovery.pending(account)


@bp.post("/account/recovery/cancel")
@client_required
def account_recovery_cancel():
    """No confirmation step is asked: stopping a recovery is never the dangerous way."""
    if ConfirmForm().validate_on_submit():
        try:
            account_recovery.cancel_by_client(account=current_user)
        except account_recovery.NothingToCancel:
            flash(_("There is no recovery under way."), "info")
        else:
            flash(_("The recovery is cancelled. Your sign-in stays as it was."), "success")
    return redirect(url_for("portal.security"))
