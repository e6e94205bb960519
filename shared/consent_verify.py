"""Check a consent receipt offline: no database, no server.

    python -m shared.consent_verify receipt.pdf [--cert organisation-seal.pem]

Checks the PAdES seal of the PDF, the passkey signature in the embedded evidence and that
the signature commits to exactly the embedded document (its SHA-256 and the nonce).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from webauthn.helpers import (
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
)
from webauthn.helpers.verify_signature import verify_signature

DOMAIN_TAG = b"einblick-consent-v1"
EVIDENCE_NAME = "evidence.json"
FLAG_USER_PRESENT, FLAG_USER_VERIFIED = 0x01, 0x04


@dataclass(frozen=True)
class Result:
    ok: bool
    reason: str


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def verify_passkey_evidence(evidence: dict, *, expected_rp_id: str | None = None) -> Result:
    """The authenticator signed SHA-256(tag ‖ SHA-256(document) ‖ nonce) with user
    verification, under the stored public key, for the stored relying party."""
    try:
        document = _unb64(evidence["document"])
        nonce = _unb64(evidence["nonce"])
        auth_data = _unb64(evidence["authenticator_data"])
        client_data_json = _unb64(evidence["client_data_json"])
        signature = _unb64(evidence["signature"])
        public_key = _unb64(evidence["public_key"])
        rp_id = expected_rp_id or evidence["rp_id"]
        client_data = json.loads(client_data_json)
    except (KeyError, ValueError, TypeError):
        return Result(False, "the evidence is incomplete")
    challenge = hashlib.sha256(DOMAIN_TAG + hashlib.sha256(document).digest() + nonce).digest()
    if client_data.get("type") != "webauthn.get":
        return Result(False, "not an authentication")
    if client_data.get("challenge") != _b64(challenge):
        return Result(False, "the signature is for another document")
    if evidence.get("origin") and client_data.get("origin") != evidence["origin"]:
        return Result(False, "signed on another website")
    if len(auth_data) < 37 or auth_data[:32] != hashlib.sha256(rp_id.encode()).digest():
        return Result(False, "signed for another relying party")
    flags = auth_data[32]
    if not flags & FLAG_USER_PRESENT or not flags & FLAG_USER_VERIFIED:
        return Result(False, "the user was not verified")
    try:
        decoded = decode_credential_public_key(public_key)
        verify_signature(
            public_key=decoded_public_key_to_cryptography(decoded),
            signature_alg=decoded.alg,
            signature=signature,
            data=auth_data + hashlib.sha256(client_data_json).digest(),
        )
    except (InvalidSignature, ValueError, TypeError):
        return Result(False, "the signature does not verify")
    return Result(True, "the passkey signature is valid")


def verify_evidence_document(evidence: dict) -> Result:
    """The embedded text hashes to what the document names, and the method is known."""
    try:
        document = json.loads(_unb64(evidence["document"]))
        text = evidence["text"]
        method = evidence["method"]
    except (KeyError, ValueError, TypeError):
        return Result(False, "the evidence is incomplete")
    canonical = json.dumps({"title": text["title"], "text": text["text"]}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    if hashlib.sha256(canonical.encode()).hexdigest() != document.get("text_sha256"):
        return Result(False, "the embedded text is not the text that was signed")
    if method == "passkey":
        return Result(True, "document and text match")
    if method == "totp-name" and evidence.get("typed_name"):
        return Result(True, "document and text match (code and typed name, weaker)")
    if method == "email-code-name" and evidence.get("typed_name"):
        return Result(True, "document and text match (code sent by email and typed name, "
                            "weakest)")
    return Result(False, "unknown signing method")


def evidence_from_pdf(pdf: bytes) -> dict | None:
    from shared.seal import attachment

    raw = attachment(pdf, EVIDENCE_NAME)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def check_receipt(pdf: bytes, trusted_pem: bytes | None = None) -> list[tuple[str, bool]]:
    """The individual checks of a receipt, each with its outcome."""
    from shared.seal import check_seal

    seal = check_seal(pdf, trusted_pem)
    checks = [("seal intact (the PDF was not changed after sealing)", seal.intact)]
    if trusted_pem is not None:
        checks.append(("sealed by the given organisation certificate", seal.trusted))
    else:
        # Anyone can make a certificate with the organisation's name: without its
        # certificate we cannot say who sealed the PDF.
        checks.append((f"NOT CHECKED who sealed it: {seal.signer or '?'} (certificate "
                       f"SHA-256 {seal.fingerprint or '?'}); pass --cert", False))
    evidence = evidence_from_pdf(pdf)
    checks.append(("evidence embedded", evidence is not None))
    if evidence is not None:
        document = verify_evidence_document(evidence)
        checks.append((f"document: {document.reason}", document.ok))
        if evidence.get("method") == "passkey":
            result = verify_passkey_evidence(evidence)
            checks.append((f"passkey signature: {result.reason}", result.ok))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("receipt", type=Path)
    parser.add_argument("--cert", type=Path, help="the organisation's seal certificate (PEM)")
    args = parser.parse_args(argv)
    checks = check_receipt(args.receipt.read_bytes(),
                           args.cert.read_bytes() if args.cert else None)
    for label, ok in checks:
        print(f"{'OK  ' if ok else 'FAIL'} {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
