"""Forms used by both the portal and the staff sign-in pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from shared.auth.passwords import MAX_LENGTH
from shared.validation import InvalidEmail, normalise_email


class NormalisedEmail:
    """Validates an address and replaces the field's data with its normal form."""

    def __call__(self, form, field) -> None:
        try:
            field.data = normalise_email(field.data or "")
        except InvalidEmail as exc:
            raise ValidationError(
                _l("Please enter a valid email address, like name@example.org.")
            ) from exc


def email_field(label=None) -> EmailField:
    return EmailField(
        label or _l("Email address"),
        validators=[DataRequired(_l("Please enter your email address.")), NormalisedEmail()],
        render_kw={"autocomplete": "email", "inputmode": "email", "spellcheck": "false",
                   "autocapitalize": "none"},
    )


def current_password_field(label=None) -> PasswordField:
    return PasswordField(
        label or _l("Password"),
        validators=[DataRequired(_l("Please enter your password.")), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )


def new_password_field(label=None) -> PasswordField:
    return PasswordField(
        label or _l("New password"),
        validators=[DataRequired(_l("Please choose a password."))],
        description=_l("At least 12 characters. Best: a few words that do not belong together."),
        render_kw={"autocomplete": "new-password", "minlength": "12",
                   "aria-describedby": "password-hint"},
    )


def code_field(label=None, description=None, *, digits_only: bool = False) -> StringField:
    # Recovery codes have letters: only the set-up field (six digits) asks for a number pad.
    return StringField(
        label or _l("Code"),
        validators=[DataRequired(_l("Please enter the code.")), Length(max=32)],
        description=description,
        render_kw={"autocomplete": "one-time-code",
                   "inputmode": "numeric" if digits_only else "text",
                   "spellcheck": "false", "autocapitalize": "none"},
    )


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Email address"),
        validators=[DataRequired(_l("Please enter your email address.")), NormalisedEmail()],
        # "webauthn" lets the browser offer saved passkeys right in this field.
        render_kw={"autocomplete": "email webauthn", "inputmode": "email",
                   "spellcheck": "false", "autocapitalize": "none"},
    )
    password = current_password_field()
    submit = SubmitField(_l("Sign in"))


class SecondFactorForm(FlaskForm):
    code = code_field(
        _l("Code from your authenticator app"),
        _l("Six digits. Lost your phone? Enter one of your recovery codes instead."),
    )
    submit = SubmitField(_l("Confirm"))


class ResetRequestForm(FlaskForm):
    email = email_field()
    submit = SubmitField(_l("Send reset link"))


class NewPasswordForm(FlaskForm):
    password = new_password_field()
    submit = SubmitField(_l("Save password"))


class TotpSetupForm(FlaskForm):
    code = code_field(
        _l("Code shown in your app"),
        _l("Enter the six digits your authenticator app shows for Einblick."),
        digits_only=True,
    )
    submit = SubmitField(_l("Turn on"))


class ReauthForm(FlaskForm):
    password = current_password_field()
    code = StringField(
        _l("Code from your authenticator app"),
        validators=[Length(max=32)],
        description=_l("Or one of your recovery codes."),
        render_kw={"autocomplete": "one-time-code", "inputmode": "text",
                   "autocapitalize": "none"},
    )
    submit = SubmitField(_l("Confirm"))


class ChangePasswordForm(FlaskForm):
    current = current_password_field(_l("Current password"))
    password = new_password_field()
    submit = SubmitField(_l("Change password"))


class ConfirmForm(FlaskForm):
    """A button with CSRF protection and nothing else (log out, end sessions, …)."""

    submit = SubmitField(_l("Confirm"))


class RemoveFactorForm(FlaskForm):
    """Removing a way to sign in (the authenticator app, a passkey): whoever might hold it
    may be signed in elsewhere, so signing out everywhere else is offered, ticked."""

    sign_out_others = BooleanField(_l("Also sign out on all other devices"), default=True)
    submit = SubmitField(_l("Confirm"))
