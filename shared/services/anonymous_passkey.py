"""Anonymous first contact with a passkey instead of a password (issue 17, item 4).

The order keeps a message from being stored for an account nobody can open:

1. ``check`` and ``begin``: the page's form is checked as far as it can be without storing
   anything (name free and well formed, team open, topic and message written); only then
   are the creation options made, with a fresh random user handle and a neutral name for
   the device to show (``device_names``), never the pseudonym. The challenge is kept
   server-side like every other ceremony's (``shared.auth.passkeys``: single use, bound to
   this browser session, five minutes), under a purpose of its own so no other ceremony's
   challenge is accepted.
2. ``start``: the form again with the new credential. The form is checked again (another
   person may have taken the name meanwhile), the registration is verified, and only
   then are the client, the account (without a password), its passkey and the first
   conversation written, in one transaction. Any refusal stores nothing.

The account is the ordinary anonymous contact of shared/services/anonymous.py, with a
passkey instead of a password: it signs in again through the ordinary passkey sign-in
(a discoverable credential carrying the account's user handle).
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid

from sqlalchemy.exc import IntegrityError
from webauthn import generate_registration_options, options_to_json
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from shared import security_log
from shared.auth import passkeys, sessions
from shared.extensions import db
from shared.models.messages import MessageThread
from shared.services import anonymous, messages

# A challenge for this ceremony is refused by every other one, and the other way round.
PURPOSE = "anonymous-register"
USER_HANDLE_BYTES = 32


class PasskeyNotDiscoverable(passkeys.PasskeyError):
    """The device made a passkey it cannot offer at sign-in (not discoverable, as the
    browser reports in the credProps extension): the ordinary passkey sign-in, the only
    way back in, would never find it."""


def check(*, pseudonym: str, service_id: uuid.UUID | None, topic: str, body: str) -> str:
    """Everything about the first message that can be refused before a passkey exists;
    returns the pseudonym as it is kept. Raises anonymous.PseudonymInvalid,
    anonymous.PseudonymTaken, messages.ServiceUnavailable, messages.EmptyMessage."""
    pseudonym = anonymous.clean_pseudonym(pseudonym)
    if anonymous.find_account(pseudonym=pseudonym) is not None:
        raise anonymous.PseudonymTaken
    if service_id is None or service_id not in {s.id for s in messages.services_to_write_to()}:
        raise messages.ServiceUnavailable
    if not (topic or "").strip():
        raise messages.EmptyMessage("topic")
    if not (body or "").strip():
        raise messages.EmptyMessage("body")
    return pseudonym


def device_names(label: str, user_handle: bytes) -> tuple[str, str]:
    """The user name and display name the device keeps with the passkey: ``label`` (a
    neutral word such as "Anonymous contact" in the person's language) and, in the user
    name, a short code from the random user handle, so that two such passkeys on one device
    can be told apart.

    Not the pseudonym: the device lists its passkeys (the password list, the sign-in
    picker), and whoever can unlock a shared device would read there the name the person
    writes under. The code tells nothing: the handle is random."""
    code = base64.b32encode(user_handle[:5]).decode()[:4]
    return f"{label} {code}", label


def begin(*, pseudonym: str, service_id: uuid.UUID | None, topic: str, body: str,
          device_label: str) -> tuple[str, bytes]:
    """Options (JSON) for navigator.credentials.create() and the user handle they carry,
    for the caller to keep until ``start`` (the browser session); ``device_label`` is the
    neutral name the device shows (``device_names``). Raises what ``check`` raises;
    nothing is stored but the challenge."""
    check(pseudonym=pseudonym, service_id=service_id, topic=topic, body=body)
    user_handle = secrets.token_bytes(USER_HANDLE_BYTES)
    user_name, display_name = device_names(device_label, user_handle)
    challenge = secrets.token_bytes(passkeys.CHALLENGE_BYTES)
    options = generate_registration_options(
        rp_id=passkeys.rp_id(),
        rp_name=passkeys.config().organisation_name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=int(passkeys.CHALLENGE_LIFETIME.total_seconds() * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
    )
    passkeys.store_challenge(PURPOSE, challenge, None)
    # py_webauthn makes no extensions: credProps asks the browser to say whether the
    # passkey is discoverable, which ``start`` checks.
    options_json = json.loads(options_to_json(options))
    options_json["extensions"] = {"credProps": True}
    return json.dumps(options_json), user_handle


def start(*, pseudonym: str, service_id: uuid.UUID | None, topic: str, body: str,
          locale: str, response: str, user_handle: bytes | None,
          passkey_name: str) -> MessageThread:
    """Create the anonymous contact with its passkey and its first conversation, then sign
    the person in (a verified passkey is a complete sign-in). Nothing is stored when
    anything is refused. Raises what ``check`` raises, passkeys.ChallengeInvalid (none
    begun in this session, used or expired) and passkeys.VerificationFailed /
    DuplicateCredential (the new passkey does not verify, or is registered already),
    PasskeyNotDiscoverable (the browser says the device could not offer it at sign-in)."""
    pseudonym = check(pseudonym=pseudonym, service_id=service_id, topic=topic, body=body)
    challenge = passkeys.take_challenge(PURPOSE, None)
    if not user_handle or len(user_handle) != USER_HANDLE_BYTES:
        raise passkeys.ChallengeInvalid
    verified = passkeys.verify_new(response, challenge)
    if _reported_not_discoverable(response):
        raise PasskeyNotDiscoverable

    account, client = anonymous.new_contact(pseudonym=pseudonym, locale=locale,
                                            passkey_user_handle=user_handle)
    passkeys.new_credential(account, verified, response=response, name=passkey_name)
    try:
        db.session.flush()
    except IntegrityError:  # credential ids are unique across all accounts
        db.session.rollback()
        raise passkeys.DuplicateCredential from None
    # Commits the account, its passkey and the conversation together.
    thread = anonymous.first_conversation(account, client, service_id=service_id,
                                          topic=topic, body=body)
    sessions.start(account, second_factor=True)
    security_log.record("passkey.added", account=account)
    return thread


def _reported_not_discoverable(response: str) -> bool:
    """Whether the browser says the new passkey is not discoverable. A browser without the
    credProps extension says nothing; the options required a discoverable passkey, and
    such a passkey is accepted."""
    try:
        results = json.loads(response).get("clientExtensionResults") or {}
        return (results.get("credProps") or {}).get("rk") is False
    except (ValueError, AttributeError):
        return False
