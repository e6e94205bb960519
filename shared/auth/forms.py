"""Forms used by both the portal and the staff sign-in pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

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


def code_field(label=None, description=None, *, required: bool = True) -> StringField:
    """The six digits of an authenticator app: a number pad on phones (inputmode), and
    the phone may fill in a code it received (one-time-code)."""
    return StringField(
        label or _l("Code"),
        validators=[DataRequired(_l("Please enter the code.")) if required else Optional(),
                    Length(max=32)],
        description=description,
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                   "spellcheck": "false", "autocapitalize": "none"},
    )


def recovery_code_field() -> StringField:
    """A recovery code has letters, so it has a field of its own with a full keyboard
    (the app's code field asks for a number pad)."""
    return StringField(
        _l("Recovery code"),
        validators=[Optional(), Length(max=32)],
        description=_l("Ten letters and digits, for example abcde-23456."),
        render_kw={"autocomplete": "one-time-code", "inputmode": "text",
                   "spellcheck": "false", "autocapitalize": "none"},
    )


class _CodeOrRecoveryCode:
    """A form with the app's code and, folded away, a recovery code: whichever was given
    is checked as ``code`` (the services tell the two apart)."""

    def validate(self, extra_validators=None) -> bool:
        if not (self.code.data or "").strip() and (self.recovery_code.data or "").strip():
            self.code.data = self.recovery_code.data.strip()
        return super().validate(extra_validators)


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


class SecondFactorForm(_CodeOrRecoveryCode, FlaskForm):
    code = code_field(_l("Code from your authenticator app"), _l("Six digits."))
    recovery_code = recovery_code_field()
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
    )
    submit = SubmitField(_l("Turn on"))


class ReauthForm(_CodeOrRecoveryCode, FlaskForm):
    password = current_password_field()
    code = code_field(_l("Code from your authenticator app"), _l("Six digits."),
                      required=False)
    recovery_code = recovery_code_field()
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
