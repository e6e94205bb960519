"""Per-subject data keys, stored only wrapped under a key-encryption key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from shared import crypto
from shared.models.base import Base, UTCDateTime, current_keyring, new_id, utcnow


class DataKey(Base):
    """One client's (or staff member's) data key. Deleting the row crypto-shreds their data."""

    __tablename__ = "data_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kek_id: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rewrapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<DataKey {self.id} kek={self.kek_id}>"

    @classmethod
    def generate(cls) -> DataKey:
        """A new random data key, wrapped under the active KEK."""
        key = cls(id=new_id())
        plaintext = crypto.generate_key()
        key.kek_id, key.wrapped_key = current_keyring().wrap_data_key(
            plaintext, data_key_id=key.id
        )
        key._plaintext = plaintext
        return key

    def plaintext(self) -> bytes:
        """The unwrapped key, cached on this instance for the unit of work."""
        cached = getattr(self, "_plaintext", None)
        if cached is None:
            cached = current_keyring().unwrap_data_key(
                kek_id=self.kek_id, wrapped=self.wrapped_key, data_key_id=self.id
            )
            self._plaintext = cached
        return cached

    def rewrap(self) -> bool:
        """Wrap this key under the active KEK; returns whether anything changed."""
        keyring = current_keyring()
        if self.kek_id == keyring.active_kek_id:
            return False
        plaintext = self.plaintext()
        self.kek_id, self.wrapped_key = keyring.wrap_data_key(plaintext, data_key_id=self.id)
        self.rewrapped_at = utcnow()
        return True


class AppMeta(Base):
    """Small facts about the installation (e.g. which index key wrote the blind indexes)."""

    __tablename__ = "app_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
