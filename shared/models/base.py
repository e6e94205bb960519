"""Declarative base, UTC timestamps, UUID keys and transparently encrypted fields."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from shared import crypto

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use shared.models.base.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def current_keyring() -> crypto.Keyring:
    """The keyring of the running app, with the primary key read again from the database
    when the process's copy is old (shared.key_rotation)."""
    extensions = current_app.extensions
    sync = extensions.get("einblick_keys")
    if sync is not None and sync.due():
        sync.refresh(heartbeat=False)
    return extensions["einblick"].keyring


OWNER_ATTRIBUTE = "__encryption_owner__"


class EncryptionOwnerMissing(crypto.CryptoError):
    """An encrypted field was set before the row's owner column (e.g. ``client_id``)."""


class encrypted:  # noqa: N801 - used like a column declaration
    """A personal field stored AES-GCM encrypted under the owning row's data key.

    ``email = encrypted()`` on a model with a mapped ``email_ciphertext`` column (DB column
    ``email``) and a ``data_key`` relationship reads and writes plain values. With
    ``blind_index=True`` a setter also fills ``<name>_bidx`` for exact-match look-ups.

    The model names, in ``__encryption_owner__``, the column holding the id of whom the
    row's data belongs to (``"client_id"``; ``"id"`` for a row that is its own owner). The
    value is bound to that id as well as to its table, column and row, so a row moved to
    another client by changing that column no longer decrypts. A model without the
    declaration cannot be defined.
    """

    def __init__(self, kind: type = str, *, blind_index: bool = False) -> None:
        self.kind = kind
        self.blind_index = blind_index

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.attr = f"{name}_ciphertext"
        if not isinstance(getattr(owner, OWNER_ATTRIBUTE, None), str):
            raise TypeError(
                f"{owner.__name__}.{name} is encrypted: declare whose data the row holds, "
                f'e.g. {OWNER_ATTRIBUTE} = "client_id" (or "id" for its own row).'
            )

    def aad(self, obj: Any) -> bytes:
        """The associated data binding this field of ``obj`` to its place and owner."""
        owner_id = getattr(obj, getattr(type(obj), OWNER_ATTRIBUTE))
        if owner_id is None:
            raise EncryptionOwnerMissing(
                f"set {type(obj).__name__}.{getattr(type(obj), OWNER_ATTRIBUTE)} before "
                f"{self.name}: the value is bound to it"
            )
        return crypto.field_aad(obj.__tablename__, self.name, owner_id=owner_id, row_id=obj.id)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        blob = getattr(obj, self.attr)
        if blob is None:
            return None
        key = obj.data_key
        raw = crypto.decrypt_field(
            data_key=key.plaintext(), data_key_id=key.id, blob=blob, aad=self.aad(obj)
        )
        return _decode(self.kind, raw)

    def __set__(self, obj: Any, value: Any) -> None:
        if obj.id is None:
            obj.id = new_id()  # the AAD needs the row id before the first flush
        if self.blind_index:
            setattr(
                obj,
                f"{self.name}_bidx",
                None
                if value is None
                else current_keyring().blind_index(f"{obj.__tablename__}.{self.name}", str(value)),
            )
        if value is None:
            setattr(obj, self.attr, None)
            return
        key = obj.data_key
        setattr(
            obj,
            self.attr,
            crypto.encrypt_field(
                data_key=key.plaintext(),
                data_key_id=key.id,
                plaintext=_encode(self.kind, value),
                aad=self.aad(obj),
            ),
        )


def encrypted_fields(model: type) -> dict[str, encrypted]:
    """The encrypted fields a model declares, by attribute name."""
    return {name: value for klass in reversed(model.__mro__)
            for name, value in vars(klass).items() if isinstance(value, encrypted)}


def _encode(kind: type, value: Any) -> bytes:
    if kind is bytes:
        return bytes(value)
    if kind is str:
        return str(value).encode()
    if kind is date:
        return value.isoformat().encode()
    # dict and other JSON values
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _decode(kind: type, raw: bytes) -> Any:
    if kind is bytes:
        return raw
    if kind is str:
        return raw.decode()
    if kind is date:
        return date.fromisoformat(raw.decode())
    return json.loads(raw)
