"""Client accounts: registration, confirmation, log-in, passwords, TOTP, profile."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from shared import mail, security_log
from shared.auth import code_attempts, passwords, recovery, sessions, tokens, totp
from shared.auth.login_flow import PendingLogin
from shared.extensions import db
from shared.models.accounts import CLIENT, Account
from shared.models.base import current_keyring, utcnow
from shared.models.clients import Client, ClientNameToken
from shared.models.keys import DataKey
from shared.validation import normalise_phone


class AccountError(Exception):
    """Base for errors a view turns into a message."""


class WeakPassword(AccountError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("weak password")
        self.problems = problems


class WrongPassword(AccountError):
    """The current password given to confirm a change is wrong."""


class WrongCode(AccountError):
    """A TOTP or recovery code did not match (or was used before)."""


class SignInRestarted(AccountError):
    """Five wrong codes ended the pending sign-in: the password must be given again."""


class CodesPaused(AccountError):
    """Too many wrong codes today from browsers that never completed a sign-in to this
    account (or from this device): codes are accepted only from known devices, or after
    a new password is set."""


@dataclass
class LoginResult:
    account: Account | None
    needs_second_factor: bool = False
    unconfirmed: bool = False


def _config():
    return current_app.extensions["einblick"].config


def find_account(*, email: str, kind: str) -> Account | None:
    bidx = current_keyring().blind_index("accounts.email", email)
    return db.session.scalar(
        select(Account).where(Account.kind == kind).where(Account.email_bidx == bidx)
    )


def check_new_password(password: str, *, email: str | None = None,
                       pseudonym: str | None = None) -> None:
    """Raises WeakPassword. The address and, for an anonymous contact, the pseudonym it
    signs in with are words an attacker tries first: the pseudonym as a whole, run
    together ("Sonnenblume 7" as "sonnenblume7") and word by word."""
    inputs = (email or "", (email or "").split("@")[0], "einblick",
              *pseudonym_inputs(pseudonym))
    problems = passwords.password_problems(password, user_inputs=inputs)
    if problems:
        raise WeakPassword(problems)


def pseudonym_inputs(pseudonym: str | None) -> tuple[str, ...]:
    """The forms of a pseudonym a new password must not be built from."""
    words = (pseudonym or "").split()
    if not words:
        return ()
    return (" ".join(words), "".join(words), *(word for word in words if len(word) >= 3))


def register_client(*, email: str, locale: str) -> None:
    """Create an unconfirmed client account (no password yet) and email a link.

    Whoever opens the link chooses the password or creates a passkey. Taking a password
    here instead would let someone who registers another person's address first keep a
    password on that account once its owner confirms it (pre-registration hijacking).
    If the address is already registered, the owner gets a note or a fresh link; the
    caller shows the same page either way, so registration reveals nothing.
    """
    existing = find_account(email=email, kind=CLIENT)
    if existing is not None:
        _send_already_registered(existing)
        return
    data_key = DataKey.generate()
    account = Account(kind=CLIENT, data_key=data_key, locale=locale)
    account.email = email
    client = Client(data_key=data_key, account=account)
    db.session.add_all([data_key, account, client])
    try:
        db.session.flush()
    except IntegrityError:  # registered concurrently by a second request
        db.session.rollback()
        return
    token = tokens.issue(account, tokens.CONFIRM_EMAIL, hours=_config().confirm_token_hours)
    db.session.commit()
    mail.send(
        to=email,
        subject=_l("Confirm your email address"),
        template="confirm_email",
        locale=locale,
        token=token,
    )


def _send_already_registered(account: Account) -> None:
    if account.email_confirmed_at is None:
        token = tokens.issue(account, tokens.CONFIRM_EMAIL, hours=_config().confirm_token_hours)
        db.session.commit()
        mail.send(
            to=account.email,
            subject=_l("Confirm your email address"),
            template="confirm_email",
            locale=account.locale,
            token=token,
        )
        return
    mail.send(
        to=account.email,
        subject=_l("Someone tried to register with your address"),
        template="already_registered",
        locale=account.locale,
    )


def _reset_credentials(account: Account) -> None:
    from shared.models.passkeys import PasskeyCredential

    account.password_hash = None
    account.password_changed_at = None
    account.totp_secret = None
    account.totp_pending_secret = None
    account.totp_enabled_at = None
    recovery.delete_all(account)
    db.session.execute(
        delete(PasskeyCredential).where(PasskeyCredential.account_id == account.id)
    )
    sessions.end_all(account, except_current=False)


def registration_account(*, token: str) -> Account:
    """The account a confirmation link is for (raises tokens.TokenInvalid)."""
    return tokens.peek(token, tokens.CONFIRM_EMAIL)


def complete_registration(*, token: str, password: str | None) -> Account:
    """Confirm the address and set the first way to sign in: a password now, or (with
    ``password=None``) a passkey created next in the signed-in session."""
    account = tokens.peek(token, tokens.CONFIRM_EMAIL)
    if password is not None:
        check_new_password(password, email=account.email, pseudonym=account.pseudonym)
    account = tokens.consume(token, tokens.CONFIRM_EMAIL)
    if account.email_confirmed_at is None:
        # Nothing set before the address was proved may survive (pre-registration
        # hijacking): only what the link holder chooses now.
        _reset_credentials(account)
    if password is not None:
        account.password_hash = passwords.hash_password(password)
        account.password_changed_at = utcnow()
    account.email_confirmed_at = account.email_confirmed_at or utcnow()
    db.session.commit()
    sessions.start(account, second_factor=False)
    return account


def complete_registration_with_passkey(*, token: str, response: str, name: str) -> Account:
    """Confirm the address with a passkey as the first way to sign in. The address is
    confirmed only once the passkey is stored: a cancelled or failed passkey leaves the
    link usable for a password, so no account ends confirmed without a way in. Raises
    tokens.TokenInvalid or a shared.auth.passkeys.PasskeyError."""
    from shared.auth import passkeys
    from shared.models.passkeys import PasskeyCredential

    account = tokens.peek(token, tokens.CONFIRM_EMAIL)
    if account.email_confirmed_at is None:
        # As in complete_registration: nothing set before the address was proved survives.
        _reset_credentials(account)
        db.session.commit()
    credential = passkeys.finish_registration(account, response=response, name=name)
    try:
        account = tokens.consume(token, tokens.CONFIRM_EMAIL)
    except tokens.TokenInvalid:
        db.session.execute(delete(PasskeyCredential).where(PasskeyCredential.id == credential.id))
        db.session.commit()
        raise
    account.email_confirmed_at = account.email_confirmed_at or utcnow()
    db.session.commit()
    # A passkey is verified by fingerprint, face or screen lock: a complete sign-in.
    sessions.start(account, second_factor=True)
    security_log.record("passkey.added", account=account)
    mail.send(
        to=account.email,
        subject=_l("A passkey was added to your account"),
        template="passkey_added",
        locale=account.locale,
        staff=False,
    )
    return account


def authenticate(*, email: str, password: str, kind: str) -> LoginResult:
    """Check email and password; says whether a second factor must follow."""
    account = find_account(email=email, kind=kind)
    if account is None:
        passwords.verify_password(None, password)
        security_log.record("login.password", outcome=security_log.FAILED, account_kind=kind)
        return LoginResult(None)
    check = passwords.check_password(account.password_hash, password)
    if not check.ok:
        security_log.record("login.password", outcome=security_log.FAILED, account=account)
        return LoginResult(None)
    security_log.record("login.password", outcome=security_log.OK, account=account)
    if check.rehash:  # older parameters, or a hash of the unnormalised password
        account.password_hash = passwords.hash_password(password)
        db.session.commit()
    if kind == CLIENT and account.email_confirmed_at is None:
        return LoginResult(account, unconfirmed=True)
    return LoginResult(account, needs_second_factor=account.has_second_factor)


def verify_second_factor(*, account: Account, code: str) -> None:
    """Accept a TOTP code or a recovery code; raises WrongCode."""
    if recovery.looks_like_recovery_code(code):
        if recovery.consume(account, code):
            return
        raise WrongCode
    if not totp.verify_and_consume(account, code):
        raise WrongCode


def verify_pending_second_factor(*, pending: PendingLogin, code: str,
                                 device: str | None) -> None:
    """The second step of a sign-in: a TOTP or recovery code after the right password.

    ``device`` is this browser's device-cookie id if it completed a sign-in to the account
    before, else None. Every code takes one of this pending sign-in's five tries
    (SignInRestarted once they are used up) and reserves one of the daily tries for its
    browser (CodesPaused once none is left) before it is checked, so parallel requests
    cannot slip past either count; a right code gives its daily try back. See
    shared.auth.code_attempts for why. The owner is warned (``_warn_password_known``)
    after five wrong codes in one sign-in, five since the last complete sign-in, and when
    codes are paused. Raises WrongCode."""
    account = pending.account
    if not code_attempts.take_try(pending.attempt):  # e.g. a replayed session cookie
        security_log.record("login.second_factor", outcome=security_log.REFUSED,
                            account=account)
        raise SignInRestarted
    if not code_attempts.reserve(account=account, device=device):
        security_log.record("login.second_factor", outcome=security_log.REFUSED,
                            account=account)
        _warn_password_known(account)
        raise CodesPaused
    try:
        verify_second_factor(account=account, code=code)
    except WrongCode:
        security_log.record("login.second_factor", outcome=security_log.FAILED, account=account)
        many_since_sign_in = code_attempts.count_wrong_code_since_sign_in(account)
        if code_attempts.sign_in_used_up(pending.attempt):
            security_log.record("login.restarted", outcome=security_log.REFUSED,
                                account=account)
            _warn_password_known(account)
            raise SignInRestarted from None
        if many_since_sign_in:
            _warn_password_known(account)
        raise
    code_attempts.give_back(account=account, device=device)
    code_attempts.signed_in(account)
    security_log.record("login.second_factor", outcome=security_log.OK, account=account)


def _warn_password_known(account: Account) -> None:
    """Right password, then too many wrong codes: tell the owner (at most once an hour)."""
    if not code_attempts.may_warn_owner(account):
        return
    mail.send(
        to=account.email,
        subject=_l("Someone seems to know your password"),
        template="password_known",
        locale=account.locale,
        staff=account.is_staff,
    )
    security_log.record("login.password_known", outcome=security_log.OK, account=account)


def password_step_up_allowed(account: Account) -> bool:
    """Step-up by password is as strong as sign-in only with TOTP, or with no second factor.
    An account whose second factor is a passkey confirms with the passkey."""
    return account.has_password and (account.has_totp or not account.has_passkey)


def reauthenticate(*, account: Account, password: str, code: str | None) -> None:
    """Step-up: the password again, and the TOTP code if the account uses TOTP."""
    if not password_step_up_allowed(account):
        raise WrongPassword
    if not passwords.verify_password(account.password_hash, password):
        security_log.record("reauth", outcome=security_log.FAILED, account=account)
        raise WrongPassword
    if account.has_totp:
        try:
            verify_second_factor(account=account, code=code or "")
        except WrongCode:
            security_log.record("reauth", outcome=security_log.FAILED, account=account)
            raise
    sessions.renew(account, second_factor=account.has_second_factor)
    security_log.record("reauth", account=account)


def change_password(*, account: Account, current: str | None, new: str) -> None:
    """Needs the current password (or, for a passkey-only account, a fresh step-up);
    ends every other session of the account."""
    if account.has_password and not passwords.verify_password(account.password_hash,
                                                              current or ""):
        security_log.record("password.changed", outcome=security_log.FAILED, account=account)
        raise WrongPassword
    if not account.has_password and not sessions.is_fresh(account):
        raise WrongPassword
    check_new_password(new, email=account.email, pseudonym=account.pseudonym)
    account.password_hash = passwords.hash_password(new)
    account.password_changed_at = utcnow()
    db.session.commit()
    security_log.record("password.changed", account=account)
    sessions.end_all(account, except_current=True)
    sessions.renew(account)
    mail.send(
        to=account.email,
        subject=_l("Your password was changed"),
        template="password_changed",
        locale=account.locale,
    )


def request_password_reset(*, email: str, kind: str) -> None:
    """Email a reset link if the account exists; silent otherwise (no enumeration)."""
    account = find_account(email=email, kind=kind)
    if account is None:
        return
    token = tokens.issue(account, tokens.RESET_PASSWORD, hours=_config().reset_token_hours)
    db.session.commit()
    mail.send(
        to=account.email,
        subject=_l("Reset your password"),
        template="reset_password",
        locale=account.locale,
        token=token,
        staff=account.is_staff,
    )


def reset_password(*, token: str, new: str) -> Account:
    """Set a new password from a reset link. Ends all sessions; the user then logs in,
    so a second factor still applies."""
    account = tokens.peek(token, tokens.RESET_PASSWORD)
    check_new_password(new, email=account.email, pseudonym=account.pseudonym)
    account = tokens.consume(token, tokens.RESET_PASSWORD)
    account.password_hash = passwords.hash_password(new)
    account.password_changed_at = utcnow()
    # A reset link proves control of the address.
    account.email_confirmed_at = account.email_confirmed_at or utcnow()
    db.session.commit()
    security_log.record("password.reset", account=account)
    sessions.end_all(account, except_current=False)
    mail.send(
        to=account.email,
        subject=_l("Your password was changed"),
        template="password_changed",
        locale=account.locale,
    )
    return account


def begin_totp_setup(*, account: Account) -> str:
    """The secret to show on the enrolment page, stored (encrypted) until confirmed."""
    if account.totp_pending_secret is None:
        account.totp_pending_secret = totp.new_secret()
        db.session.commit()
    return account.totp_pending_secret


def enable_totp(*, account: Account, code: str) -> list[str]:
    """Turn TOTP on once the user proves their app shows the right code; returns the
    recovery codes to show once. The session gets a new id and other sessions end."""
    secret = account.totp_pending_secret
    step = totp.matching_step(secret, code) if secret else None
    if step is None:
        raise WrongCode
    account.totp_secret = secret
    account.totp_pending_secret = None
    account.totp_enabled_at = utcnow()
    account.totp_last_step = step
    db.session.commit()
    security_log.record("totp.enabled", account=account)
    sessions.renew(account, second_factor=True)
    sessions.end_all(account, except_current=True)
    codes = recovery.new_codes(account)
    mail.send(
        to=account.email,
        subject=_l("Two-step sign-in is on"),
        template="totp_enabled",
        locale=account.locale,
    )
    return codes


def disable_totp(*, account: Account, sign_out_others: bool) -> int | None:
    """Turn TOTP off; its recovery codes die with it. With ``sign_out_others`` every other
    session ends too (whoever had the codes may be signed in); returns how many, or None
    if not asked."""
    account.totp_secret = None
    account.totp_enabled_at = None
    account.totp_last_step = None
    recovery.delete_all(account)
    db.session.commit()
    security_log.record("totp.disabled", account=account)
    ended = sessions.end_all(account, except_current=True) if sign_out_others else None
    mail.send(
        to=account.email,
        subject=_l("Two-step sign-in is off"),
        template="totp_disabled",
        locale=account.locale,
    )
    return ended


def first_recovery_codes(*, account: Account) -> list[str] | None:
    """Ten recovery codes for an account that has a second factor (a passkey as the step
    after the password, or to come back after a password reset) but was never given
    codes; None when it needs none or already has them. Returns them to show once."""
    if not account.has_second_factor or recovery.issued(account):
        return None
    codes = recovery.new_codes(account)
    security_log.record("recovery_codes.renewed", account=account)
    return codes


def renew_recovery_codes(*, account: Account) -> list[str]:
    """Ten new recovery codes in place of the old ones (which stop working); returns them
    to show once."""
    codes = recovery.new_codes(account)
    security_log.record("recovery_codes.renewed", account=account)
    return codes


def set_locale(*, account: Account, locale: str) -> None:
    account.locale = locale
    db.session.commit()


def update_profile(*, client: Client, full_name: str | None, phone: str | None = None,
                   keep_phone: bool = True) -> None:
    """Save the client's name (with its search tokens) and phone number; raises
    InvalidPhone before anything changes."""
    if not keep_phone:
        client.phone = normalise_phone(phone) if (phone or "").strip() else None
    set_client_name(client=client, full_name=full_name)
    db.session.commit()


def set_client_name(*, client: Client, full_name: str | None) -> None:
    """Set the name and its blind-index tokens (alone and with the birth date)."""
    full_name = (full_name or "").strip() or None
    client.full_name = full_name
    client.name_tokens.clear()
    keyring = current_keyring()
    birth = client.birth_date.isoformat() if client.birth_date else None
    for token in sorted(set(name_tokens(full_name or ""))):
        client.name_tokens.append(
            ClientNameToken(
                token_bidx=keyring.blind_index("clients.name_token", token),
                token_birth_bidx=keyring.blind_index("clients.name_token_birth",
                                                     f"{token}|{birth}") if birth else None,
            )
        )
    client.updated_at = utcnow()


def name_tokens(name: str) -> list[str]:
    return [part for part in name.replace("-", " ").split() if len(part) >= 2]
