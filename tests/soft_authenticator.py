"""A small software authenticator (ES256, 'none' attestation) that makes real WebAuthn
signatures py_webauthn verifies. It sets user presence and user verification, supports
discoverable credentials (it returns the user handle), and can be cloned or misused on
purpose to test refusals."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    def __init__(self, *, origin: str = "http://localhost:5000", user_verified: bool = True,
                 counter: bool = True) -> None:
        self.origin = origin
        self.user_verified = user_verified
        self.counter = counter  # False: behaves like a synced passkey (always 0)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0
        self.user_handle: bytes | None = None
        self.rp_id: str | None = None

    def clone(self) -> SoftAuthenticator:
        twin = copy.copy(self)
        twin.key = self.key
        return twin

    def _flags(self, extra: int = 0) -> int:
        return FLAG_UP | (FLAG_UV if self.user_verified else 0) | extra

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge,
                           "origin": origin or self.origin, "crossOrigin": False}).encode()

    def create(self, options_json: str, *, origin: str | None = None,
               rp_id: str | None = None) -> dict:
        """Answer navigator.credentials.create() options; returns the credential as JSON."""
        options = json.loads(options_json)
        self.rp_id = rp_id or options["rp"]["id"]
        self.user_handle = from_b64url(options["user"]["id"])
        numbers = self.key.public_key().public_numbers()
        cose_key = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                    -3: numbers.y.to_bytes(32, "big")}
        attested = (bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
                    + cbor2.dumps(cose_key))
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest()
                     + bytes([self._flags(FLAG_AT)]) + self.sign_count.to_bytes(4, "big")
                     + attested)
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data),
                         "attestationObject": b64url(attestation), "transports": ["internal"]},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }

    def get(self, options_json: str, *, origin: str | None = None,
            rp_id: str | None = None) -> dict:
        """Answer navigator.credentials.get() options with a signed assertion."""
        options = json.loads(options_json)
        allowed = [from_b64url(c["id"]) for c in options.get("allowCredentials") or []]
        if allowed and self.credential_id not in allowed:
            raise LookupError("this authenticator holds none of the allowed credentials")
        if self.counter:
            self.sign_count += 1
        rp = rp_id or options.get("rpId") or self.rp_id
        auth_data = (hashlib.sha256(rp.encode()).digest() + bytes([self._flags()])
                     + self.sign_count.to_bytes(4, "big"))
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data),
                         "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature),
                         "userHandle": b64url(self.user_handle) if self.user_handle else None},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }
