"""Passkey endpoints, added to both blueprints with their own guards and pages.

The browser side is static/js/passkeys.js: it posts to a ``…/begin`` endpoint for options,
runs navigator.credentials, and posts the result to ``…/finish``. Every endpoint answers
JSON; errors carry a message in the user's language.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from flask import Blueprint, flash, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from shared import security_log
from shared.auth import code_attempts, known_devices, login_flow, passkeys, ratelimits, sessions
from shared.auth.forms import ConfirmForm, RemoveFactorForm
from shared.extensions import limiter
from shared.models.accounts import STAFF
from shared.services import passkeys as passkey_service


def _error(message: str, status: int = 400, **extra):
    return jsonify({"error": message, **extra}), status


def _payload() -> tuple[str, dict]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return "", {}
    credential = data.get("credential")
    if not isinstance(credential, dict):
        return "", data
    return json.dumps(credential), data


def failure_message(exc: Exception, *, staff: bool = False) -> str:
    """What the person is told when a passkey is not accepted (``staff``: the staff area,
    where a new invitation, not an emailed reset link, is the way back)."""
    if isinstance(exc, passkeys.ChallengeInvalid):
        return _("This request has expired. Please try again.")
    if isinstance(exc, passkeys.ClonedAuthenticator | passkeys.CredentialFlagged):
        if staff:
            return _("We no longer accept this passkey: its use counter once went backwards, "
                     "so it may have been copied. Use another way (your password and code, or "
                     "another passkey); then you can remove this passkey on your security "
                     "page and add it again. No other way? Please ask your administrator for "
                     "a new invitation.")
        return _("We no longer accept this passkey: its use counter once went backwards, so it "
                 "may have been copied. Use another way (your password and code, or another "
                 "passkey); then you can remove this passkey on your security page and add it "
                 "again. No other way? Choose a new password with “Forgot your password?” on "
                 "the sign-in page.")
    if isinstance(exc, passkeys.UnknownCredential):
        return _("This passkey is not registered with us. Use another way to sign in.")
    if isinstance(exc, passkeys.DuplicateCredential):
        return _("This passkey is already registered.")
    return _("The passkey could not be verified. Please try again.")


def add_passkey_routes(
    bp: Blueprint,
    *,
    kind: str,
    account_prefix: str,
    signed_in: Callable[[], bool],
    security_endpoint: str,
    home_endpoint: str,
    reauth_endpoint: str,
) -> None:
    """Register the passkey endpoints on ``bp`` for accounts of ``kind``."""
    name = bp.name
    staff = kind == STAFF

    def refused(exc: passkeys.PasskeyError):
        return _error(failure_message(exc, staff=staff))

    def outcome(exc: passkeys.PasskeyError) -> str:
        """A flagged passkey is refused (it verified, but may not be used); else failed."""
        return (security_log.REFUSED if isinstance(exc, passkeys.CredentialFlagged)
                else security_log.FAILED)

    def needs_sign_in():
        return _error(_("Please sign in again."), 401, redirect=url_for(f"{name}.login"))

    # -- managing passkeys (signed in; adding and removing need a fresh confirmation) -----
    @bp.post(f"{account_prefix}/passkeys/begin", endpoint="passkey_add_begin")
    @limiter.limit(ratelimits.PER_ADDRESS)
    def passkey_add_begin():
        if not signed_in():
            return needs_sign_in()
        if not sessions.is_fresh(current_user):
            return _error(_("Please confirm it's you first."), 403,
                          redirect=url_for(reauth_endpoint, next=url_for(security_endpoint)))
        return bp_json(passkey_service.begin_adding(current_user))

    @bp.post(f"{account_prefix}/passkeys/finish", endpoint="passkey_add_finish")
    def passkey_add_finish():
        if not signed_in():
            return needs_sign_in()
        if not sessions.is_fresh(current_user):
            return _error(_("Please confirm it's you first."), 403,
                          redirect=url_for(reauth_endpoint, next=url_for(security_endpoint)))
        response, data = _payload()
        try:
            passkey_service.finish_adding(
                current_user, response=response, name=str(data.get("name") or "")
            )
        except passkeys.PasskeyError as exc:
            return refused(exc)
        flash(_("Your passkey is saved. You can now sign in with it."), "success")
        next_url = login_flow.safe_next(request.args.get("next"))
        return jsonify({"redirect": next_url or url_for(security_endpoint)})

    @bp.post(f"{account_prefix}/passkeys/<uuid:credential_id>/rename",
             endpoint="passkey_rename")
    def passkey_rename(credential_id: uuid.UUID):
        if not signed_in():
            return redirect(url_for(f"{name}.login"))
        if ConfirmForm().validate_on_submit():
            try:
                passkey_service.rename(current_user, credential_id=credential_id,
                                       name=request.form.get("name", ""))
            except passkey_service.NotFound:
                return redirect(url_for(security_endpoint)), 404
            flash(_("Saved."), "success")
        return redirect(url_for(security_endpoint))

    @bp.post(f"{account_prefix}/passkeys/<uuid:credential_id>/remove",
             endpoint="passkey_remove")
    def passkey_remove(credential_id: uuid.UUID):
        if not signed_in():
            return redirect(url_for(f"{name}.login"))
        if not sessions.is_fresh(current_user):
            return redirect(url_for(reauth_endpoint, next=url_for(security_endpoint)))
        form = RemoveFactorForm()
        if form.validate_on_submit():
            try:
                ended = passkey_service.remove(current_user, credential_id=credential_id,
                                               sign_out_others=form.sign_out_others.data)
            except passkey_service.NotFound:
                return redirect(url_for(security_endpoint)), 404
            except passkey_service.LastSignInMethod:
                flash(_("This is your only way to sign in, so it cannot be removed. Add "
                        "another passkey or a password first."), "error")
            except passkey_service.LastStaffSecondFactor:
                flash(_("Staff accounts need a second factor. Set up another passkey or an "
                        "authenticator app before removing this one."), "error")
            else:
                flash(_("The passkey was removed.") if ended is None else
                      _("The passkey was removed, and you were signed out on all other "
                        "devices."), "success")
        return redirect(url_for(security_endpoint))

    # -- signing in with a passkey alone (discoverable credential, user verified) ---------
    @bp.post("/login/passkey/begin", endpoint="passkey_login_begin")
    @limiter.limit(ratelimits.PER_ADDRESS)
    def passkey_login_begin():
        return bp_json(passkeys.begin_authentication(purpose=passkeys.SIGN_IN))

    @bp.post("/login/passkey/finish", endpoint="passkey_login_finish")
    @limiter.limit(ratelimits.PER_ADDRESS)
    def passkey_login_finish():
        response, _data = _payload()
        try:
            assertion = passkeys.finish_authentication(
                purpose=passkeys.SIGN_IN, response=response
            )
        except passkeys.PasskeyError as exc:
            security_log.record("login.passkey", outcome=outcome(exc),
                                account=exc.account, account_kind=kind)
            return refused(exc)
        account = assertion.account
        if account.kind != kind or not _may_sign_in(account):
            security_log.record("login.passkey", outcome=security_log.REFUSED, account=account)
            return _error(failure_message(passkeys.UnknownCredential()))
        next_url = login_flow.safe_next(request.args.get("next"))
        sessions.start(account, second_factor=True)
        code_attempts.signed_in(account)
        security_log.record("login.passkey", account=account)
        # A complete sign-in: this browser is a known device from now on (code_attempts).
        return known_devices.remember(
            jsonify({"redirect": next_url or url_for(home_endpoint)}), account)

    # -- passkey as the second step after the password ------------------------------------
    # Asking for a challenge checks nothing: only failed answers count (SECOND_FACTOR).
    @bp.post("/login/code/passkey/begin", endpoint="passkey_second_factor_begin")
    @limiter.limit(ratelimits.PER_ADDRESS)
    def passkey_second_factor_begin():
        account = login_flow.pending_account(kind)
        if account is None:
            return needs_sign_in()
        return bp_json(
            passkeys.begin_authentication(purpose=passkeys.SECOND_FACTOR, account=account)
        )

    @bp.post("/login/code/passkey/finish", endpoint="passkey_second_factor_finish")
    @limiter.limit(ratelimits.SECOND_FACTOR, key_func=ratelimits.pending_account_key,
                   deduct_when=ratelimits.only_failures)
    def passkey_second_factor_finish():
        account = login_flow.pending_account(kind)
        if account is None:
            return needs_sign_in()
        response, _data = _payload()
        try:
            passkeys.finish_authentication(
                purpose=passkeys.SECOND_FACTOR, response=response, account=account
            )
        except passkeys.PasskeyError as exc:
            security_log.record("login.passkey", outcome=outcome(exc), account=account)
            ratelimits.mark_failure()
            return refused(exc)
        next_url = login_flow.pending_next()
        sessions.start(account, second_factor=True)
        code_attempts.signed_in(account)
        security_log.record("login.passkey", account=account)
        # A complete sign-in: this browser is a known device from now on (code_attempts).
        return known_devices.remember(
            jsonify({"redirect": next_url or url_for(home_endpoint)}), account)

    # -- step-up with a passkey -------------------------------------------------------------
    @bp.post(f"{account_prefix}/confirm/passkey/begin", endpoint="passkey_step_up_begin")
    @limiter.limit(ratelimits.PER_ADDRESS)
    def passkey_step_up_begin():
        if not signed_in():
            return needs_sign_in()
        return bp_json(
            passkeys.begin_authentication(purpose=passkeys.STEP_UP, account=current_user)
        )

    @bp.post(f"{account_prefix}/confirm/passkey/finish", endpoint="passkey_step_up_finish")
    @limiter.limit(ratelimits.SECOND_FACTOR, key_func=ratelimits.signed_in_account_key,
                   deduct_when=ratelimits.only_failures)
    def passkey_step_up_finish():
        if not signed_in():
            return needs_sign_in()
        response, _data = _payload()
        try:
            passkeys.finish_authentication(
                purpose=passkeys.STEP_UP, response=response, account=current_user
            )
        except passkeys.PasskeyError as exc:
            security_log.record("reauth", outcome=outcome(exc), account=current_user)
            ratelimits.mark_failure()
            return refused(exc)
        sessions.renew(current_user, second_factor=True)
        security_log.record("reauth", account=current_user)
        next_url = login_flow.safe_next(request.args.get("next"))
        return jsonify({"redirect": next_url or url_for(security_endpoint)})


def _may_sign_in(account) -> bool:
    if account.is_client:
        # An anonymous contact proved nothing by email: its pseudonym and password made it.
        return account.email_confirmed_at is not None or account.is_pseudonymous
    member = account.staff_member
    return member is not None and member.active


def bp_json(options_json: str):
    """Options from py_webauthn are already JSON text."""
    from flask import current_app

    return current_app.response_class(options_json, mimetype="application/json")


def reauth_page(*, area: str):
    """Step-up page of either area: password (+ TOTP) where that is as strong as the
    sign-in, and the passkey button (see auth/reauth.html)."""
    from flask import render_template

    from shared.auth.forms import ReauthForm
    from shared.services import accounts

    form = ReauthForm()
    next_url = login_flow.safe_next(request.args.get("next")) or url_for(f"{area}.security")
    password_allowed = accounts.password_step_up_allowed(current_user)
    if password_allowed and form.validate_on_submit():
        try:
            accounts.reauthenticate(
                account=current_user, password=form.password.data, code=form.code.data
            )
        except accounts.WrongPassword:
            ratelimits.mark_failure()
            form.password.errors.append(_("This is not your password."))
        except accounts.WrongCode:
            ratelimits.mark_failure()
            form.code.errors.append(_("This code is not right or was already used."))
        else:
            return redirect(next_url)
    return render_template("auth/reauth.html", form=form, area=area, next_url=next_url,
                           password_allowed=password_allowed)
