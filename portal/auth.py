"""Registration, email confirmation, sign-in, sign-out and password reset for clients."""

from __future__ import annotations

import json

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import Length, Optional

from portal import bp
from portal.bookings import carry_hold, held_slot_address
from shared.auth import login_flow, passkeys, ratelimits, sessions, tokens
from shared.auth.forms import (
    ConfirmForm,
    LoginForm,
    NewPasswordForm,
    ResetRequestForm,
    SecondFactorForm,
    email_field,
    new_password_field,
)
from shared.extensions import limiter
from shared.models.accounts import CLIENT
from shared.passkey_views import bp_json, failure_message
from shared.services import account_recovery, accounts
from shared.services import passkeys as passkey_service


class RegisterForm(FlaskForm):
    email = email_field()
    submit = SubmitField(_l("Continue"))


class ChooseSignInForm(FlaskForm):
    """On the confirmation link: a password (the passkey is created by passkeys.js)."""

    password = new_password_field(_l("Choose a password"))
    submit = SubmitField(_l("Save password and continue"))


class RecoveryResetForm(NewPasswordForm):
    """The reset once a recovery staff started has taken effect: with the hand-over code
    they gave in person it completes the recovery; without it, a normal reset."""

    handover_code = StringField(
        _l("Code from our team"),
        validators=[Optional(), Length(max=40)],
        description=_l("The code our team gave you in person, on paper or told to you (it is "
                       "never emailed), for example ABCDE-FGH23."),
        render_kw={"autocomplete": "off", "autocapitalize": "characters",
                   "spellcheck": "false"})


WRONG_HANDOVER_CODE = _l("This code is not right. Please check it against the paper from our "
                         "team, or leave the field empty to save the password with your "
                         "second step as before.")


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
@limiter.limit(ratelimits.MAIL_SENDING, methods=["POST"], key_func=ratelimits.submitted_email_key)
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        accounts.register_client(email=form.email.data, locale=str(get_locale()))
        return render_template("portal/check_email.html", purpose="register",
                               email=form.email.data)
    return render_template("portal/register.html", form=form)


@bp.route("/confirm/<token>", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
def confirm(token: str):
    """The emailed link: confirm the address and choose a password or a passkey.

    The passkey is created on this page (the JSON endpoints below) and only a stored
    passkey confirms the address; the password form stays on the same page, so a browser
    that cannot create one, or a passkey cancelled or refused, leads to a password
    instead of an account without a way in."""
    try:
        account = accounts.registration_account(token=token)
    except tokens.TokenInvalid:
        return render_template("portal/link_invalid.html"), 400
    form = ChooseSignInForm()
    if form.validate_on_submit():
        try:
            # A time held before registering (booking picker) survives the new session.
            carry_hold(lambda: accounts.complete_registration(
                token=token, password=form.password.data))
        except accounts.WeakPassword as exc:
            form.password.errors.extend(exc.problems)
        except tokens.TokenInvalid:
            return render_template("portal/link_invalid.html"), 400
        else:
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(held_slot_address() or url_for("portal.account"))
    return render_template("portal/choose_sign_in.html", form=form, token=token,
                           email=account.email)


def _link_expired(token: str):
    """The page of the link then says that it is no longer valid and what to do."""
    return jsonify({"error": "", "redirect": url_for("portal.confirm", token=token)}), 400


@bp.post("/confirm/<token>/passkey/begin")
@limiter.limit(ratelimits.PER_ADDRESS)
def confirm_passkey_begin(token: str):
    """Options to create the first passkey of the account this link confirms."""
    try:
        account = accounts.registration_account(token=token)
    except tokens.TokenInvalid:
        return _link_expired(token)
    return bp_json(passkey_service.begin_adding(account))


@bp.post("/confirm/<token>/passkey/finish")
@limiter.limit(ratelimits.PER_ADDRESS)
def confirm_passkey_finish(token: str):
    data = request.get_json(silent=True)
    credential = data.get("credential") if isinstance(data, dict) else None
    if not isinstance(credential, dict):
        return jsonify({"error": failure_message(passkeys.VerificationFailed())}), 400
    try:
        carry_hold(lambda: accounts.complete_registration_with_passkey(
            token=token, response=json.dumps(credential), name=str(data.get("name") or "")
        ))
    except tokens.TokenInvalid:
        return _link_expired(token)
    except passkeys.PasskeyError as exc:
        return jsonify({"error": failure_message(exc)}), 400
    flash(_("Welcome! Your account is ready. You sign in with your passkey."), "success")
    # Then the recovery codes, shown once: the way back if the passkey is ever lost.
    return jsonify({"redirect": url_for("portal.first_recovery_codes")})


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
            email=form.email.data, password=form.password.data, kind=CLIENT
        )
        if result.account is None:
            ratelimits.mark_failure()
            form.password.errors.append(_("Email address or password is not right."))
        elif result.unconfirmed:
            flash(
                _("Please confirm your email address first: open the link we emailed you. "
                  "You can ask for a new link by registering again."),
                "warning",
            )
        elif result.needs_second_factor:
            login_flow.begin(result.account, next_url=next_url)
            return redirect(url_for("portal.login_second_factor"))
        else:
            carry_hold(lambda: sessions.start(result.account, second_factor=False))
            return redirect(held_slot_address() or next_url or url_for("portal.home"))
    return render_template("auth/login.html", form=form, area="portal")


# Why the second step sends someone back to the password.
BACK_TO_PASSWORD = {
    login_flow.CodeOutcome.RESTARTED: login_flow.RESTARTED_MESSAGE,
    login_flow.CodeOutcome.PAUSED:
    _l("Too many wrong codes were entered for this account today, so this device cannot "
       "sign in with a code for now. Sign in on a device you have used for Einblick before, "
       "or choose a new password with “Forgot your password?”: then signing in works here "
       "again."),
}


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
def login_second_factor():
    """Wrong codes count per pending sign-in and per browser, never lock the account
    (see shared.auth.code_attempts)."""
    pending = login_flow.pending_login(CLIENT)
    if pending is None:
        flash(_("Please sign in again."), "info")
        return redirect(url_for("portal.login"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        result = carry_hold(lambda: login_flow.submit_code(pending, code=form.code.data))
        if result.outcome is login_flow.CodeOutcome.SIGNED_IN:
            return redirect(held_slot_address() or result.next_url or url_for("portal.home"))
        if result.outcome is login_flow.CodeOutcome.WRONG_CODE:
            form.code.errors.append(str(login_flow.WRONG_CODE_MESSAGE))
        else:
            flash(str(BACK_TO_PASSWORD[result.outcome]), "warning")
            return redirect(url_for("portal.login", next=result.next_url))
    return render_template("auth/second_factor.html", form=form, area="portal",
                           account=pending.account)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        sessions.end_current()
        flash(_("You are signed out."), "success")
        return redirect(url_for("portal.login"))
    if not current_user.is_authenticated:
        return redirect(url_for("portal.login"))
    return render_template("auth/logout.html", form=form, area="portal")


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
@limiter.limit(ratelimits.MAIL_SENDING, methods=["POST"], key_func=ratelimits.submitted_email_key)
def reset_request():
    form = ResetRequestForm()
    if form.validate_on_submit():
        accounts.request_password_reset(email=form.email.data, kind=CLIENT)
        return render_template("portal/check_email.html", purpose="reset",
                               email=form.email.data)
    return render_template("auth/reset_request.html", form=form, area="portal")


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
def reset_password(token: str):
    try:
        account = tokens.peek(token, tokens.RESET_PASSWORD)
    except tokens.TokenInvalid:
        return render_template("portal/link_invalid.html"), 400
    with_code = account_recovery.ready_to_complete(account)
    form = RecoveryResetForm() if with_code else NewPasswordForm()
    if form.validate_on_submit():
        code = (form.handover_code.data or "").strip() if with_code else ""
        if code:
            try:
                account_recovery.check_handover_code(account=account, code=code)
            except account_recovery.WrongHandoverCode:
                form.handover_code.errors.append(str(WRONG_HANDOVER_CODE))
                return render_template("auth/reset_password.html", form=form, area="portal",
                                       with_code=True), 400
            except account_recovery.TooManyWrongCodes:
                flash(_("Too many wrong codes: the recovery of your account is cancelled and "
                        "we emailed you. Please contact our team."), "warning")
                return redirect(url_for("portal.reset_password", token=token))
            except account_recovery.NotReady:
                code = ""
        try:
            accounts.reset_password(token=token, new=form.password.data)
        except accounts.WeakPassword as exc:
            form.password.errors.extend(exc.problems)
        except tokens.TokenInvalid:
            return render_template("portal/link_invalid.html"), 400
        else:
            sessions.end_current()
            # A recovery staff started (identity checked in person) that has taken effect:
            # this once, the new password signs in without the lost second factor.
            if code and account_recovery.complete_after_reset(account=account,
                                                              handover_code=code):
                sessions.start(account, second_factor=False)
                flash(_("Your account is recovered and you are signed in. Your old "
                        "authenticator app, passkeys and recovery codes no longer work: "
                        "please set up a new second step now."), "success")
                return redirect(url_for("portal.security"))
            flash(_("Your new password is saved. Please sign in."), "success")
            return redirect(url_for("portal.login"))
    return render_template("auth/reset_password.html", form=form, area="portal",
                           recovery_from=account_recovery.waiting_until(account),
                           with_code=with_code)
