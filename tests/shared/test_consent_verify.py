"""The offline consent verifier on its own: evidence signed by a software authenticator
passes, and evidence whose every signature is genuine but which was signed for another
document, without user verification, for another relying party or on another website
fails, each caught by the one check that is about it."""

import hashlib
import json
import os

import cbor2
import pytest

from shared.consent_verify import DOMAIN_TAG, verify_passkey_evidence
from tests.soft_authenticator import SoftAuthenticator, b64url, from_b64url

RP_ID, ORIGIN = "localhost", "http://localhost"
DOCUMENT = json.dumps({"template": "fotos", "version": 1}).encode()
OTHER_DOCUMENT = json.dumps({"template": "fotos", "version": 2}).encode()


def _challenge(document: bytes, nonce: bytes) -> bytes:
    return hashlib.sha256(DOMAIN_TAG + hashlib.sha256(document).digest() + nonce).digest()


def _registered(authenticator: SoftAuthenticator) -> bytes:
    """Register the authenticator for RP_ID; returns its COSE public key as stored."""
    options = {"rp": {"id": RP_ID}, "user": {"id": b64url(b"signer")},
               "challenge": b64url(os.urandom(32))}
    credential = authenticator.create(json.dumps(options))
    attestation = cbor2.loads(from_b64url(credential["response"]["attestationObject"]))
    # rpIdHash, flags, counter, AAGUID, credential id length, credential id, COSE key
    return attestation["authData"][32 + 1 + 4 + 16 + 2 + len(authenticator.credential_id):]


def signed_evidence(*, signed_document: bytes = DOCUMENT, user_verified: bool = True,
                    signed_rp_id: str = RP_ID, signed_origin: str = ORIGIN) -> dict:
    """Evidence as finish_passkey_signature stores it for DOCUMENT, with a real signature
    by a real key; the keyword arguments change what the authenticator actually signed."""
    authenticator = SoftAuthenticator(origin=signed_origin, user_verified=user_verified)
    public_key = _registered(authenticator)
    nonce = os.urandom(32)
    options = {"challenge": b64url(_challenge(signed_document, nonce)), "rpId": signed_rp_id}
    assertion = authenticator.get(json.dumps(options))["response"]
    return {
        "method": "passkey",
        "credential_id": b64url(authenticator.credential_id),
        "public_key": b64url(public_key),
        "authenticator_data": assertion["authenticatorData"],
        "client_data_json": assertion["clientDataJSON"],
        "signature": assertion["signature"],
        "nonce": b64url(nonce),
        "document": b64url(DOCUMENT),
        "rp_id": RP_ID,
        "origin": ORIGIN,
    }


def test_evidence_signed_for_its_document_verifies():
    result = verify_passkey_evidence(signed_evidence())
    assert result.ok is True
    assert verify_passkey_evidence(signed_evidence(), expected_rp_id=RP_ID).ok is True


@pytest.mark.parametrize(("tampered", "reason"), [
    # A genuine signature over another document's challenge, presented with DOCUMENT.
    ({"signed_document": OTHER_DOCUMENT}, "the signature is for another document"),
    # The authenticator did not verify the user (no PIN, no biometrics).
    ({"user_verified": False}, "the user was not verified"),
    # Signed for another website's relying party id.
    ({"signed_rp_id": "evil.example"}, "signed for another relying party"),
    # Signed in a browser on another origin.
    ({"signed_origin": "https://evil.example"}, "signed on another website"),
], ids=["challenge", "user-verified", "rp-id-hash", "origin"])
def test_genuinely_signed_but_wrong_evidence_fails(tampered, reason):
    result = verify_passkey_evidence(signed_evidence(**tampered))
    assert result.ok is False
    assert result.reason == reason


def test_evidence_naming_another_relying_party_fails_against_the_expected_one():
    """Evidence whose own rp_id matches its signature still fails when the verifier expects
    the organisation's relying party."""
    evidence = {**signed_evidence(signed_rp_id="evil.example"), "rp_id": "evil.example"}
    assert verify_passkey_evidence(evidence).ok is True  # consistent with itself
    result = verify_passkey_evidence(evidence, expected_rp_id=RP_ID)
    assert result.ok is False
    assert result.reason == "signed for another relying party"
