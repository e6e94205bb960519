"""Staff security: passkeys, the authenticator app, and step-up confirmation."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shared.auth import login_flow, ratelimits
from shared.auth.forms import ReauthForm
from shared.extensions import limiter
from shared.models.accounts import STAFF
from shared.passkey_views import add_passkey_routes
from shared.services import accounts
from staff import bp

add_passkey_routes(
    bp,
    kind=STAFF,
    account_prefix="/account",
    signed_in=lambda: current_user.is_authenticated and current_user.is_staff,
    security_endpoint="staff.security",
    home_endpoint="staff.home",
    reauth_endpoint="staff.reauth",
)


@bp.get("/account/security")
def security():
    return render_template("staff/security.html", area="staff")


@bp.route("/account/confirm", methods=["GET", "POST"])
@limiter.limit(
    ratelimits.SECOND_FACTOR, methods=["POST"], key_func=ratelimits.signed_in_account_key
)
def reauth():
    form = ReauthForm()
    next_url = login_flow.safe_next(request.args.get("next")) or url_for("staff.security")
    password_allowed = accounts.password_step_up_allowed(current_user)
    if password_allowed and form.validate_on_submit():
        try:
            accounts.reauthenticate(
                account=current_user, password=form.password.data, code=form.code.data
            )
        except accounts.WrongPassword:
            form.password.errors.append(_("This is not your password."))
        except accounts.WrongCode:
            form.code.errors.append(_("This code is not right or was already used."))
        else:
            return redirect(next_url)
    return render_template("auth/reauth.html", form=form, area="staff", next_url=next_url,
                           password_allowed=password_allowed)
