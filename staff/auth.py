"""Staff sign-in, invitation acceptance and mandatory second-factor set-up."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from shared.auth import login_flow, ratelimits, sessions, tokens, totp
from shared.auth.forms import (
    ConfirmForm,
    LoginForm,
    NewPasswordForm,
    SecondFactorForm,
    TotpSetupForm,
)
from shared.extensions import limiter
from shared.models.accounts import STAFF
from shared.services import accounts, staff
from staff import bp


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
@limiter.limit(
    ratelimits.PER_ACCOUNT_FAILURES,
    methods=["POST"],
    key_func=ratelimits.submitted_email_key,
    deduct_when=ratelimits.only_failures,
)
def login():
    form = LoginForm()
    next_url = login_flow.safe_next(request.args.get("next"))
    if form.validate_on_submit():
        result = accounts.authenticate(
            email=form.email.data, password=form.password.data, kind=STAFF
        )
        member = result.account.staff_member if result.account else None
        if member is None or not member.active:
            ratelimits.mark_failure()
            form.password.errors.append(_("Email address or password is not right."))
        elif result.needs_second_factor:
            login_flow.begin(result.account, next_url=next_url)
            return redirect(url_for("staff.login_second_factor"))
        elif not staff.may_still_set_up_second_factor(result.account):
            form.password.errors.append(
                _("Your account has no second factor and its set-up time is over. Please ask "
                  "your administrator for a new invitation.")
            )
        else:
            sessions.start(result.account, second_factor=False)
            return redirect(url_for("staff.setup_second_factor"))
    return render_template("auth/login.html", form=form, area="staff")


# Why the second step sends someone back to the password.
BACK_TO_PASSWORD = {
    login_flow.CodeOutcome.RESTARTED: login_flow.RESTARTED_MESSAGE,
    login_flow.CodeOutcome.PAUSED:
    _l("Too many wrong codes were entered for your account today, so this device cannot "
       "sign in with a code for now. Sign in on a device you have used for Einblick before, "
       "or ask your administrator for a new invitation."),
}


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
def login_second_factor():
    """Wrong codes count per pending sign-in and per browser, never lock the account
    (see shared.auth.code_attempts)."""
    pending = login_flow.pending_login(STAFF)
    if pending is None:
        flash(_("Please sign in again."), "info")
        return redirect(url_for("staff.login"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        result = login_flow.submit_code(pending, code=form.code.data)
        if result.outcome is login_flow.CodeOutcome.SIGNED_IN:
            return redirect(result.next_url or url_for("staff.home"))
        if result.outcome is login_flow.CodeOutcome.WRONG_CODE:
            form.code.errors.append(str(login_flow.WRONG_CODE_MESSAGE))
        else:
            flash(str(BACK_TO_PASSWORD[result.outcome]), "warning")
            return redirect(url_for("staff.login", next=result.next_url))
    return render_template("auth/second_factor.html", form=form, area="staff",
                           account=pending.account)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        sessions.end_current()
        flash(_("You are signed out."), "success")
        return redirect(url_for("staff.login"))
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login"))
    return render_template("auth/logout.html", form=form, area="staff")


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
def invitation(token: str):
    try:
        account = staff.invitation_account(token=token)
    except tokens.TokenInvalid:
        return render_template("portal/link_invalid.html", area="staff"), 400
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            account = staff.accept_invitation(token=token, password=form.password.data)
        except accounts.WeakPassword as exc:
            form.password.errors.extend(exc.problems)
        except tokens.TokenInvalid:
            return render_template("portal/link_invalid.html", area="staff"), 400
        else:
            sessions.start(account, second_factor=False)
            flash(_("Your password is set. Now set up your second factor."), "success")
            return redirect(url_for("staff.setup_second_factor"))
    return render_template("staff/invitation.html", form=form, email=account.email)


@bp.route("/setup/second-factor", methods=["GET", "POST"])
@limiter.limit(ratelimits.SECOND_FACTOR, methods=["POST"],
               deduct_when=ratelimits.only_failures)
def setup_second_factor():
    if current_user.has_second_factor:
        if sessions.has_second_factor_in_session(current_user):
            return redirect(url_for("staff.home"))
        # The factor exists but this session has not proved it: sign in properly.
        sessions.end_current()
        return redirect(url_for("staff.login"))
    secret = accounts.begin_totp_setup(account=current_user)
    form = TotpSetupForm()
    if form.validate_on_submit():
        try:
            codes = accounts.enable_totp(account=current_user, code=form.code.data)
        except accounts.WrongCode:
            ratelimits.mark_failure()
            form.code.errors.append(_("This code is not right. Check the time on your phone "
                                      "and enter the code currently shown."))
        else:
            return render_template("auth/recovery_codes.html", codes=codes, area="staff",
                                   first_time=True)
    uri = totp.provisioning_uri(
        secret=secret, account_name=current_user.email, issuer="Einblick Staff"
    )
    return render_template(
        "auth/totp_setup.html", form=form, secret=secret, qr_svg=totp.qr_svg(uri),
        otpauth_uri=uri, area="staff",
        mandatory=True,
    )
