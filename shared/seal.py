"""The organisation's seal: a certificate and key that seal consent receipts (PAdES)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

FIELD_NAME = "EinblickSiegel"


@dataclass(frozen=True)
class Seal:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def paths(config) -> tuple[Path, Path]:
    if config.seal_cert and config.seal_key:
        return Path(config.seal_cert), Path(config.seal_key)
    instance = Path(config.instance_path)
    return instance / "seal-cert.pem", instance / "seal-key.pem"


def ensure(config) -> None:
    """Create a self-signed organisation certificate under instance/ if none exists
    (never in production, where EINBLICK_SEAL_CERT/KEY are required)."""
    cert_path, key_path = paths(config)
    if cert_path.exists() or config.production:
        return
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, config.organisation_name),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{config.organisation_name} Siegel"),
    ])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def load(config) -> Seal:
    cert_path, key_path = paths(config)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return Seal(certificate, key)


# pyhanko is imported where a receipt is sealed or checked, not at start: it adds some 20 MB
# and most of a second to every worker and cron process, which never seal anything.
def seal_pdf(pdf: bytes, seal: Seal) -> bytes:
    """A PAdES signature over the whole PDF with the organisation's key."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter

    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(
            seal.certificate.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(seal.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())),
        cert_registry=None,
    )
    meta = signers.PdfSignatureMetadata(field_name=FIELD_NAME,
                                        subfilter=SigSeedSubFilter.PADES,
                                        md_algorithm="sha256")
    output = _outside_event_loop(
        lambda: signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer)
    )
    return output.getvalue()


@dataclass(frozen=True)
class SealCheck:
    intact: bool  # the PDF was not changed after sealing
    trusted: bool  # sealed by the given organisation certificate
    signer: str
    fingerprint: str = ""  # SHA-256 of the sealing certificate


# Receipts are small: an uploaded PDF may not decode to more than this per stream, so a
# compressed "zip bomb" cannot exhaust memory.
UNTRUSTED_MAX_STREAM_BYTES = 4 * 1024 * 1024


def _reader(pdf: bytes):
    from pyhanko.pdf_utils.decode_limits import DecodeLimits, StreamDecodeLimits
    from pyhanko.pdf_utils.reader import PdfFileReader

    limits = DecodeLimits(per_stream=StreamDecodeLimits(
        max_output_size=UNTRUSTED_MAX_STREAM_BYTES))
    return PdfFileReader(io.BytesIO(pdf), decode_limits=limits)


def check_seal(pdf: bytes, trusted_pem: bytes | None) -> SealCheck:
    """Validate the PAdES seal; ``trusted_pem`` is the organisation's certificate.
    Never raises: a PDF that cannot be read is simply not validly sealed."""
    try:
        return _check_seal(pdf, trusted_pem)
    except Exception:  # noqa: BLE001 - hostile input of any kind
        return SealCheck(False, False, "")


def _check_seal(pdf: bytes, trusted_pem: bytes | None) -> SealCheck:
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    reader = _reader(pdf)
    signatures = reader.embedded_signatures
    if len(signatures) != 1:
        return SealCheck(False, False, "")
    roots = []
    if trusted_pem:
        roots = [asn1_x509.Certificate.load(
            x509.load_pem_x509_certificate(trusted_pem).public_bytes(
                serialization.Encoding.DER))]
    status = _outside_event_loop(
        lambda: validate_pdf_signature(signatures[0], ValidationContext(trust_roots=roots))
    )
    signer_cert = signatures[0].signer_cert
    whole = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
    return SealCheck(bool(status.intact and status.valid and whole), bool(status.trusted),
                     signer_cert.subject.human_friendly, signer_cert.sha256.hex())


def _outside_event_loop(work):
    """pyhanko's validation runs asyncio.run(): inside a running loop (an async server, a
    browser driver) do it on a helper thread instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def attachment(pdf: bytes, name: str) -> bytes | None:
    """The bytes of an embedded file (the evidence JSON) in a PDF."""
    try:
        files = _reader(pdf).root["/Names"]["/EmbeddedFiles"]["/Names"]
        for index in range(0, len(files), 2):
            if str(files[index]) == name:
                return files[index + 1].get_object()["/EF"]["/F"].get_object().data
    except Exception:  # noqa: BLE001 - hostile input of any kind
        return None
    return None
