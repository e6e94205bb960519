"""Keys and ciphers: key-encryption keys, per-client data keys, field encryption, blind indexes.

This module knows no tables. Field ciphertexts are bound to their place with associated
data ``table.column:owner_id:row_id`` (the owner is the client, account or staff member the
value belongs to), so a ciphertext copied to another row or column, or a row moved to
another client, fails to decrypt. Stored field format: version byte (2), data key id
(16 bytes), nonce (12 bytes), AES-256-GCM ciphertext with tag.

Version 1 had the same layout but bound a value to ``table.column:row_id`` only. Only
migration 0009 reads and writes it (passing ``version=LEGACY_FIELD_FORMAT_VERSION``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FIELD_FORMAT_VERSION = 2
LEGACY_FIELD_FORMAT_VERSION = 1  # without the owner; for migration 0009 only
FIELD_FORMAT_VERSIONS = (LEGACY_FIELD_FORMAT_VERSION, FIELD_FORMAT_VERSION)
WRAP_FORMAT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12


class CryptoError(Exception):
    """Base class of the errors this module raises."""


class DecryptionFailed(CryptoError):
    """A ciphertext was tampered with, moved, or belongs to a key we do not have."""


class KeyConfigError(CryptoError):
    """Keys are missing or do not match the data; the message says what to do."""


def generate_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))


@dataclass
class Keyring:
    """The key-encryption keys (one active) and the blind-index master key."""

    keks: dict[str, bytes]
    active_kek_id: str
    index_key: bytes
    retired: frozenset[str] = frozenset()  # ids `flask keys retire` retired (never used)
    _index_keys: dict[str, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.active_kek_id not in self.keks:
            raise KeyConfigError(f"The active key {self.active_kek_id!r} is not in the keyring.")
        for kek_id, key in self.keks.items():
            if len(key) != KEY_BYTES:
                raise KeyConfigError(f"Key {kek_id!r} must be 32 bytes (base64 encoded).")
        if len(self.index_key) != KEY_BYTES:
            raise KeyConfigError("The index key must be 32 bytes (base64 encoded).")

    def __repr__(self) -> str:  # never print keys
        return f"Keyring(kek_ids={sorted(self.keks)!r}, active={self.active_kek_id!r})"

    # -- data keys ---------------------------------------------------------------------
    def wrap_data_key(self, data_key: bytes, *, data_key_id: uuid.UUID) -> tuple[str, bytes]:
        """Encrypt a data key under the active KEK; returns (kek id, wrapped bytes)."""
        kek_id = self.active_kek_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        aad = _wrap_aad(kek_id, data_key_id)
        wrapped = AESGCM(self.keks[kek_id]).encrypt(nonce, data_key, aad)
        return kek_id, bytes([WRAP_FORMAT_VERSION]) + nonce + wrapped

    def unwrap_data_key(self, *, kek_id: str, wrapped: bytes, data_key_id: uuid.UUID) -> bytes:
        """Decrypt a wrapped data key; raises DecryptionFailed or KeyConfigError."""
        kek = self.keks.get(kek_id)
        if kek is None and kek_id in self.retired:
            raise KeyConfigError(
                f"A data key is wrapped under key {kek_id!r}, which was retired "
                "(`flask keys retire`): nothing is decrypted with a retired key. Data from "
                "before the retirement (an old backup) stays unreadable."
            )
        if kek is None:
            raise KeyConfigError(
                f"A data key is wrapped under key {kek_id!r}, which is not configured. "
                "Add it to EINBLICK_MASTER_KEYS (or restore instance/keys.json)."
            )
        if not wrapped or wrapped[0] != WRAP_FORMAT_VERSION:
            raise DecryptionFailed("unknown wrapped-key format")
        nonce, body = wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :]
        try:
            return AESGCM(kek).decrypt(nonce, body, _wrap_aad(kek_id, data_key_id))
        except InvalidTag as exc:
            raise DecryptionFailed("data key does not unwrap") from exc

    # -- blind indexes -----------------------------------------------------------------
    def blind_index(self, purpose: str, value: str) -> bytes:
        """HMAC-SHA256 of a normalised value under a key derived for this purpose only."""
        key = self._index_keys.get(purpose)
        if key is None:
            key = HKDF(
                algorithm=hashes.SHA256(),
                length=KEY_BYTES,
                salt=None,
                info=b"einblick-blind-index:" + purpose.encode(),
            ).derive(self.index_key)
            self._index_keys[purpose] = key
        return hmac.new(key, normalise_for_index(value).encode(), hashlib.sha256).digest()

    def fingerprint(self) -> bytes:
        """A value that identifies the index key without revealing it (checked at start-up)."""
        return self.blind_index("keyring-fingerprint", "einblick")


def _wrap_aad(kek_id: str, data_key_id: uuid.UUID) -> bytes:
    return f"einblick-data-key:{kek_id}:{data_key_id}".encode()


def normalise_for_index(value: str) -> str:
    """Case- and width-insensitive form so equal inputs give equal indexes."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


def field_aad(table: str, column: str, *, owner_id: uuid.UUID, row_id: uuid.UUID) -> bytes:
    """The place a field value is bound to: table, column, the owner it belongs to, row."""
    return f"{table}.{column}:{owner_id}:{row_id}".encode()


def legacy_field_aad(table: str, column: str, row_id: uuid.UUID) -> bytes:
    """Field format 1's associated data (no owner); migration 0009 converts from and to it."""
    return f"{table}.{column}:{row_id}".encode()


def encrypt_field(
    *,
    data_key: bytes,
    data_key_id: uuid.UUID,
    plaintext: bytes,
    aad: bytes,
    version: int = FIELD_FORMAT_VERSION,
) -> bytes:
    """AES-256-GCM with a random nonce; the result names its format and data key."""
    if version not in FIELD_FORMAT_VERSIONS:
        raise ValueError(f"unknown field format {version}")
    nonce = secrets.token_bytes(NONCE_BYTES)
    body = AESGCM(data_key).encrypt(nonce, plaintext, aad)
    return bytes([version]) + data_key_id.bytes + nonce + body


def field_format_version(blob: bytes) -> int:
    """The format version a stored field names (without decrypting)."""
    if len(blob) < 1 + 16 + NONCE_BYTES + 16 or blob[0] not in FIELD_FORMAT_VERSIONS:
        raise DecryptionFailed("unknown field format")
    return blob[0]


def ciphertext_key_id(blob: bytes) -> uuid.UUID:
    """The data key id a stored field names (without decrypting)."""
    field_format_version(blob)
    return uuid.UUID(bytes=blob[1:17])


def decrypt_field(
    *,
    data_key: bytes,
    data_key_id: uuid.UUID,
    blob: bytes,
    aad: bytes,
    version: int = FIELD_FORMAT_VERSION,
) -> bytes:
    """Reverse of encrypt_field; any change to the blob or its place raises DecryptionFailed.

    A blob in another format than ``version`` is refused: everyday reads accept only the
    current format, so an old value cannot be passed off without its owner binding."""
    if field_format_version(blob) != version:
        raise DecryptionFailed(f"field is in format {blob[0]}, expected {version}")
    if ciphertext_key_id(blob) != data_key_id:
        raise DecryptionFailed("field is encrypted under another data key")
    nonce, body = blob[17 : 17 + NONCE_BYTES], blob[17 + NONCE_BYTES :]
    try:
        return AESGCM(data_key).decrypt(nonce, body, aad)
    except InvalidTag as exc:
        raise DecryptionFailed("field does not decrypt") from exc


def hash_secret_token(token: str) -> bytes:
    """SHA-256 of a high-entropy token (links, session ids) for storage and lookup."""
    return hashlib.sha256(token.encode()).digest()


# -- loading keys ------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedKeys:
    keyring: Keyring
    secret_key: str = field(repr=False)
    source: str = ""  # "environment" or the key file's path
    generated: bool = False


def parse_master_keys(text: str) -> tuple[dict[str, bytes], str]:
    """Parse "id:base64,id:base64" (first is active)."""
    keks: dict[str, bytes] = {}
    active = None
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kek_id, sep, encoded = part.partition(":")
        if not sep or not kek_id:
            raise KeyConfigError("EINBLICK_MASTER_KEYS must look like 'id:base64key,id:base64key'.")
        try:
            keks[kek_id] = b64decode(encoded)
        except ValueError as exc:
            raise KeyConfigError(f"Master key {kek_id!r} is not valid base64.") from exc
        active = active or kek_id
    if not active:
        raise KeyConfigError("EINBLICK_MASTER_KEYS is empty.")
    return keks, active


def key_file_path(instance_path: str) -> Path:
    return Path(instance_path) / "keys.json"


def load_keys(
    *,
    master_keys: str | None,
    index_key: str | None,
    secret_key: str | None,
    instance_path: str,
    may_generate: bool,
) -> LoadedKeys:
    """Keys from the environment, else from instance/keys.json, else (if allowed) a new file."""
    if master_keys or index_key:
        if not (master_keys and index_key and secret_key):
            raise KeyConfigError(
                "Set all of EINBLICK_MASTER_KEYS, EINBLICK_INDEX_KEY and EINBLICK_SECRET_KEY, "
                "or none of them (then keys live in instance/keys.json)."
            )
        keks, active = parse_master_keys(master_keys)
        return LoadedKeys(Keyring(keks, active, b64decode(index_key)), secret_key, "environment")

    path = key_file_path(instance_path)
    if path.exists():
        return _read_key_file(path, secret_key)
    if not may_generate:
        raise KeyConfigError(
            f"No keys: {path} does not exist and EINBLICK_MASTER_KEYS is not set, but the "
            "database already holds encrypted data. Restore the key file or set the "
            "environment; a new key would make every record unreadable."
        )
    data = new_key_file_content()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    loaded = _read_key_file(path, secret_key)
    return LoadedKeys(loaded.keyring, loaded.secret_key, loaded.source, generated=True)


def new_key_file_content() -> dict:
    kek_id = "k" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return {
        "secret_key": b64encode(generate_key()),
        "index_key": b64encode(generate_key()),
        "master_keys": [{"id": kek_id, "key": b64encode(generate_key())}],
        "active": kek_id,
    }


def _read_key_file(path: Path, secret_key: str | None) -> LoadedKeys:
    try:
        data = json.loads(path.read_text())
        keks = {item["id"]: b64decode(item["key"]) for item in data["master_keys"]}
        keyring = Keyring(keks, data["active"], b64decode(data["index_key"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyConfigError(f"The key file {path} is unreadable or malformed.") from exc
    return LoadedKeys(keyring, secret_key or data["secret_key"], str(path))


def add_kek_to_key_file(path: Path) -> str:
    """Add a new KEK to the key file and make it active; returns its id."""
    data = json.loads(path.read_text())
    kek_id = "k" + datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    data["master_keys"].insert(0, {"id": kek_id, "key": b64encode(generate_key())})
    data["active"] = kek_id
    _write_key_file(path, data)
    return kek_id


def retire_keks_in_key_file(path: Path, keep: set[str]) -> list[str]:
    """Drop KEKs no data key uses any more; returns the retired ids."""
    data = json.loads(path.read_text())
    retired = [k["id"] for k in data["master_keys"] if k["id"] not in keep]
    data["master_keys"] = [k for k in data["master_keys"] if k["id"] in keep]
    _write_key_file(path, data)
    return retired


def _write_key_file(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
