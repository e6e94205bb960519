"""The client's account: profile, security (TOTP, recovery codes, password, sessions)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import Length

from portal import bp
from portal.guards import client_required, fresh_required
from shared.auth import ratelimits, recovery, sessions, totp
from shared.auth.forms import (
    ChangePasswordForm,
    ConfirmForm,
    NewPasswordForm,
    RemoveFactorForm,
    TotpSetupForm,
)
from shared.extensions import limiter
from shared.passkey_views import reauth_page
from shared.services import accounts
from shared.validation import InvalidPhone


class ProfileForm(FlaskForm):
    full_name = StringField(
        _l("Full name (optional)"),
        validators=[Length(max=200)],
        description=_l("Only needed when a service asks for it."),
        render_kw={"autocomplete": "name"},
    )
    phone = StringField(
        _l("Phone number (optional)"),
        validators=[Length(max=40)],
        description=_l("So we can call you about an appointment."),
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    submit = SubmitField(_l("Save"))


@bp.route("/account", methods=["GET", "POST"])
@client_required
def account():
    client = current_user.client
    form = ProfileForm(data={"full_name": client.full_name, "phone": client.phone})
    if form.validate_on_submit():
        try:
            accounts.update_profile(client=client, full_name=form.full_name.data,
                                    phone=form.phone.data, keep_phone=False)
        except InvalidPhone:
            form.phone.errors.append(
                _("This is not a phone number we can call. Please check it, e.g. 0170 1234567."))
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("portal.account"))
    return render_template("portal/account.html", form=form, client=client)


@bp.get("/account/security")
@client_required
def security():
    return render_template(
        "auth/security.html",
        area="portal",
        remaining_codes=recovery.remaining(current_user),
        end_sessions_form=ConfirmForm(),
        disable_form=RemoveFactorForm(),
        codes_form=ConfirmForm(),
    )


@bp.route("/account/security/totp", methods=["GET", "POST"])
@client_required
@fresh_required
@limiter.limit(
    ratelimits.SECOND_FACTOR, methods=["POST"], key_func=ratelimits.signed_in_account_key
)
def totp_setup():
    if current_user.has_totp:
        return redirect(url_for("portal.security"))
    secret = accounts.begin_totp_setup(account=current_user)
    form = TotpSetupForm()
    if form.validate_on_submit():
        try:
            codes = accounts.enable_totp(account=current_user, code=form.code.data)
        except accounts.WrongCode:
            form.code.errors.append(_("This code is not right. Check the time on your phone "
                                      "and enter the code currently shown."))
        else:
            return render_template("auth/recovery_codes.html", codes=codes, area="portal",
                                   first_time=True)
    uri = totp.provisioning_uri(
        secret=secret, account_name=current_user.email or current_user.pseudonym,
        issuer="Einblick"
    )
    return render_template(
        "auth/totp_setup.html", form=form, secret=secret, qr_svg=totp.qr_svg(uri),
        otpauth_uri=uri, area="portal"
    )


@bp.post("/account/security/totp/off")
@client_required
@fresh_required
def totp_disable():
    form = RemoveFactorForm()
    if form.validate_on_submit():
        ended = accounts.disable_totp(account=current_user,
                                      sign_out_others=form.sign_out_others.data)
        flash(_("Two-step sign-in is off.") if ended is None else
              _("Two-step sign-in is off, and you were signed out on all other devices."),
              "success")
    return redirect(url_for("portal.security"))


@bp.post("/account/security/recovery-codes")
@client_required
@fresh_required
def recovery_codes():
    if not ConfirmForm().validate_on_submit() or not current_user.has_second_factor:
        return redirect(url_for("portal.security"))
    codes = accounts.renew_recovery_codes(account=current_user)
    return render_template("auth/recovery_codes.html", codes=codes, area="portal",
                           first_time=False)


@bp.get("/account/security/recovery-codes/first")
@client_required
@fresh_required
def first_recovery_codes():
    """Where a new passkey leads: the first recovery codes, shown once (see passkey lists
    and the passkey sign-up), or the security page when the account has them already."""
    codes = accounts.first_recovery_codes(account=current_user)
    if codes is None:
        return redirect(url_for("portal.security"))
    return render_template("auth/recovery_codes.html", codes=codes, area="portal")


@bp.route("/account/password", methods=["GET", "POST"])
@client_required
@limiter.limit(ratelimits.PER_ADDRESS, methods=["POST"])
def change_password():
    if not current_user.has_password:
        return set_first_password()
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(
                account=current_user, current=form.current.data, new=form.password.data
            )
        except accounts.WrongPassword:
            form.current.errors.append(_("This is not your current password."))
        except accounts.WeakPassword as exc:
            form.password.errors.extend(exc.problems)
        else:
            flash(_("Your password is changed. You were signed out on all other devices."),
                  "success")
            return redirect(url_for("portal.security"))
    return render_template("auth/change_password.html", form=form, area="portal")


@fresh_required
def set_first_password():
    """A passkey-only account adds a password (after confirming with the passkey)."""
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(account=current_user, current=None,
                                     new=form.password.data)
        except accounts.WeakPassword as exc:
            form.password.errors.extend(exc.problems)
        else:
            flash(_("Your password is saved."), "success")
            return redirect(url_for("portal.security"))
    return render_template("auth/reset_password.html", form=form, area="portal",
                           first_password=True)


@bp.post("/account/sessions/end-others")
@client_required
def end_other_sessions():
    if ConfirmForm().validate_on_submit():
        count = sessions.end_all(current_user, except_current=True)
        flash(
            ngettext(
                "Signed out on all other devices (%(num)d session ended).",
                "Signed out on all other devices (%(num)d sessions ended).",
                count,
            ),
            "success",
        )
    return redirect(url_for("portal.security"))


@bp.route("/account/confirm", methods=["GET", "POST"])
@client_required
@limiter.limit(
    ratelimits.SECOND_FACTOR, methods=["POST"], key_func=ratelimits.signed_in_account_key,
    deduct_when=ratelimits.only_failures,
)
def reauth():
    return reauth_page(area="portal")
