"""Households: guardians and their dependants (children are clients of their own)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.accounts import Account
from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.clients import Client
from shared.models.keys import DataKey

# What a guardian still sees once the young person has an account of their own.
ACCESS_FULL = "full"
ACCESS_BOOKINGS = "bookings"
ACCESS_NONE = "none"
GUARDIAN_ACCESS = (ACCESS_FULL, ACCESS_BOOKINGS, ACCESS_NONE)


class Guardianship(Base):
    """An account holder is guardian of a dependent client."""

    __tablename__ = "guardianships"
    __table_args__ = (UniqueConstraint("guardian_account_id", "dependant_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    guardian_account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    dependant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    access: Mapped[str] = mapped_column(String(16), default=ACCESS_FULL)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    guardian: Mapped[Account] = relationship()
    dependant: Mapped[Client] = relationship()


class EmergencyContact(Base):
    """Who to call for a child; encrypted under the child's data key."""

    __tablename__ = "emergency_contacts"
    __encryption_owner__ = "client_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    name_ciphertext: Mapped[bytes] = mapped_column("name", LargeBinary)
    name = encrypted()
    phone_ciphertext: Mapped[bytes] = mapped_column("phone", LargeBinary)
    phone = encrypted()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
