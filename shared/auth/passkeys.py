"""The WebAuthn ceremony service (py_webauthn), shared by sign-in, step-up and consent.

Challenges are stored server-side (single use, bound to the browser session by an id kept in
the session, valid 5 minutes). User verification is always required. ``begin_authentication``
accepts a caller's own 32-byte challenge so the consent feature can have a passkey sign the
hash of a document instead of random bytes.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, session
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from shared import mail, security_log
from shared.auth import sessions
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.base import utcnow
from shared.models.passkeys import PasskeyChallenge, PasskeyCredential

log = logging.getLogger("einblick.security")

CHALLENGE_LIFETIME = timedelta(minutes=5)
SESSION_KEY = "passkey_challenges"
CHALLENGE_BYTES = 32
MAX_NAME_LENGTH = 60

# Purposes of a ceremony; a challenge made for one is refused for any other.
REGISTER = "register"
SIGN_IN = "sign-in"
SECOND_FACTOR = "second-factor"
STEP_UP = "step-up"


class PasskeyError(Exception):
    """Base of the errors the ceremonies raise; views show a plain message. ``account`` is
    the account the passkey belongs to, where that is known (for the security log)."""

    def __init__(self, *args, account: Account | None = None) -> None:
        super().__init__(*args)
        self.account = account


class ChallengeInvalid(PasskeyError):
    """No live challenge for this session and purpose (expired, used, or never made)."""


class VerificationFailed(PasskeyError):
    """The authenticator's response does not verify."""


class UnknownCredential(VerificationFailed):
    """The credential is not registered (for this account)."""


class ClonedAuthenticator(VerificationFailed):
    """The signature counter went backwards: the key may have been copied."""


class CredentialFlagged(PasskeyError):
    """The passkey was marked as possibly copied (its counter once went backwards): it is
    refused everywhere until the owner removes it (and adds the key again)."""


class DuplicateCredential(PasskeyError):
    """This authenticator is already registered."""


@dataclass(frozen=True)
class Assertion:
    """A verified authentication, with the raw evidence a signature needs to be re-checked."""

    account: Account
    credential: PasskeyCredential
    challenge: bytes
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes


def config():
    """The app's typed configuration (rp id, origin, organisation name)."""
    return current_app.extensions["einblick"].config


def rp_id() -> str:
    return config().rp_id


def expected_origin() -> str:
    return config().origin


def available_for_host(host: str) -> bool:
    """Whether a page reached at ``host`` can use passkeys (the RP id must match)."""
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    wanted = rp_id()
    return hostname == wanted or hostname.endswith("." + wanted)


# -- challenges ---------------------------------------------------------------------------
def store_challenge(purpose: str, challenge: bytes, account: Account | None) -> None:
    """Keep ``challenge`` for ``purpose`` (single use, this browser session, five minutes),
    replacing the session's earlier one for the same purpose."""
    now = utcnow()
    db.session.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at < now))
    if account is not None:
        # At most one live challenge per account and purpose, however often the same
        # cookie is replayed.
        db.session.execute(
            delete(PasskeyChallenge)
            .where(PasskeyChallenge.account_id == account.id)
            .where(PasskeyChallenge.purpose == purpose)
        )
    row = PasskeyChallenge(
        purpose=purpose,
        challenge=challenge,
        account_id=account.id if account else None,
        created_at=now,
        expires_at=now + CHALLENGE_LIFETIME,
    )
    db.session.add(row)
    db.session.commit()
    pending = dict(session.get(SESSION_KEY) or {})
    old = pending.get(purpose)
    if old:
        db.session.execute(delete(PasskeyChallenge).where(PasskeyChallenge.id == uuid.UUID(old)))
        db.session.commit()
    pending[purpose] = str(row.id)
    session[SESSION_KEY] = pending


def take_challenge(purpose: str, account: Account | None) -> bytes:
    """Use up this session's challenge for ``purpose``; only one request can win it."""
    pending = dict(session.get(SESSION_KEY) or {})
    row_id = pending.pop(purpose, None)
    session[SESSION_KEY] = pending
    if not row_id:
        raise ChallengeInvalid
    row = db.session.get(PasskeyChallenge, uuid.UUID(row_id))
    if row is None:
        raise ChallengeInvalid
    challenge, expires_at, owner = row.challenge, row.expires_at, row.account_id
    deleted = db.session.execute(
        delete(PasskeyChallenge).where(PasskeyChallenge.id == row.id)
    ).rowcount
    db.session.commit()
    if deleted != 1 or row.purpose != purpose or expires_at <= utcnow():
        raise ChallengeInvalid
    if owner != (account.id if account else None):
        raise ChallengeInvalid
    return challenge


def flag_copied(credential: PasskeyCredential, owner: Account) -> None:
    """A validly signed assertion whose counter went backwards: the key may have been
    copied. Mark the passkey for the owner's review on the security page (from now on it
    is refused everywhere: CredentialFlagged), record it, and the first time end every
    session of the account (one may have been started with the copy) and email the owner
    (an attacker retrying must not flood the inbox)."""
    first = db.session.execute(
        update(PasskeyCredential)
        .where(PasskeyCredential.id == credential.id)
        .where(PasskeyCredential.flagged_at.is_(None))
        .values(flagged_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.commit()
    security_log.record("passkey.anomaly", outcome=security_log.REFUSED, account=owner)
    if first:
        sessions.end_all(owner, except_current=False)
        mail.send(
            to=owner.email,
            subject=_l("A passkey of your account may have been copied"),
            template="passkey_copied",
            locale=owner.locale,
            staff=owner.is_staff,
        )


# -- registration -------------------------------------------------------------------------
def begin_registration(account: Account, *, user_name: str, display_name: str) -> str:
    """Options (JSON) for navigator.credentials.create(): a discoverable, verified key."""
    if account.passkey_user_handle is None:
        account.passkey_user_handle = secrets.token_bytes(32)
        db.session.commit()
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=current_app.extensions["einblick"].config.organisation_name,
        user_id=account.passkey_user_handle,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=c.credential_id) for c in account.passkeys
        ],
    )
    store_challenge(REGISTER, challenge, account)
    return options_to_json(options)


def verify_new(response: str, challenge: bytes):
    """The browser's answer to a registration, verified against ``challenge`` (user
    verification required). Raises VerificationFailed."""
    try:
        return verify_registration_response(
            credential=response,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=expected_origin(),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(str(exc)) from exc


def new_credential(account: Account, verified, *, response: str,
                   name: str) -> PasskeyCredential:
    """The verified passkey as the account's row (added to the session, not flushed)."""
    credential = PasskeyCredential(
        account_id=account.id,
        data_key=account.data_key,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=",".join(transports(response)) or None,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
    )
    credential.name = clean_name(name)
    db.session.add(credential)
    return credential


def finish_registration(account: Account, *, response: str, name: str) -> PasskeyCredential:
    """Verify the new credential and store it under the account."""
    verified = verify_new(response, take_challenge(REGISTER, account))
    credential = new_credential(account, verified, response=response, name=name)
    try:
        db.session.commit()
    except IntegrityError as exc:  # credential ids are unique across all accounts
        db.session.rollback()
        raise DuplicateCredential from exc
    return credential


def clean_name(name: str) -> str:
    name = " ".join((name or "").split())[:MAX_NAME_LENGTH]
    return name or "Passkey"


def transports(response: str) -> list[str]:
    """The transports a registration response reports, those WebAuthn knows only."""
    try:
        raw = json.loads(response).get("response", {}).get("transports") or []
    except (ValueError, AttributeError):
        return []
    allowed = {t.value for t in AuthenticatorTransport}
    return [t for t in raw if t in allowed]


# -- authentication -----------------------------------------------------------------------
def begin_authentication(
    *, purpose: str, account: Account | None = None, challenge: bytes | None = None
) -> str:
    """Options (JSON) for navigator.credentials.get().

    Without ``account`` any discoverable credential may answer (passkey sign-in). With
    ``challenge`` (32 bytes) the authenticator signs the caller's value, e.g. a document
    hash, instead of fresh random bytes.
    """
    if challenge is None:
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
    if len(challenge) != CHALLENGE_BYTES:
        raise ValueError("a challenge must be exactly 32 bytes")
    allow = None
    if account is not None:
        allow = [
            PublicKeyCredentialDescriptor(
                id=c.credential_id,
                transports=[AuthenticatorTransport(t) for t in (c.transports or "").split(",")
                            if t],
            )
            for c in account.passkeys
        ]
    options = generate_authentication_options(
        rp_id=rp_id(),
        challenge=challenge,
        timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
        allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    store_challenge(purpose, challenge, account)
    return options_to_json(options)


def finish_authentication(
    *, purpose: str, response: str, account: Account | None = None
) -> Assertion:
    """Verify an assertion for this session's challenge; returns the account and evidence."""
    challenge = take_challenge(purpose, account)
    try:
        parsed = parse_authentication_credential_json(response)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed("malformed response") from exc
    credential = db.session.scalar(
        select(PasskeyCredential).where(PasskeyCredential.credential_id == parsed.raw_id)
    )
    if credential is None or (account is not None and credential.account_id != account.id):
        raise UnknownCredential
    owner = db.session.get(Account, credential.account_id)
    user_handle = parsed.response.user_handle
    if user_handle is not None and user_handle != owner.passkey_user_handle:
        raise UnknownCredential
    stored = credential.sign_count
    try:
        # Verify the signature with the counter ignored first, so only a genuinely signed
        # assertion can raise the clone alarm below.
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=expected_origin(),
            credential_public_key=credential.public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise VerificationFailed(str(exc)) from exc
    if credential.flagged_at is not None:
        # Whichever copy this is, it no longer counts: the owner removes it and adds the
        # key again (a new credential), see CredentialFlagged.
        raise CredentialFlagged(account=owner)
    received = verified.new_sign_count
    if (received > 0 or stored > 0) and received <= stored:
        log.warning(
            "passkey sign count did not increase (possible cloned authenticator): "
            "credential=%s stored=%d received=%d", credential.id, stored, received,
        )
        flag_copied(credential, owner)
        raise ClonedAuthenticator(account=owner)
    # Conditional on the count we read, so two racing copies cannot both pass.
    updated = db.session.execute(
        update(PasskeyCredential)
        .where(PasskeyCredential.id == credential.id)
        .where(PasskeyCredential.sign_count == stored)
        .values(sign_count=received, last_used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if updated != 1:
        raise ClonedAuthenticator(account=owner)
    db.session.refresh(credential)
    return Assertion(
        account=owner,
        credential=credential,
        challenge=challenge,
        authenticator_data=parsed.response.authenticator_data,
        client_data_json=parsed.response.client_data_json,
        signature=parsed.response.signature,
    )
