"""Clients: the data subjects. An account holder is a client; later, children are too."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from shared.models.accounts import Account
from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.keys import DataKey


class Client(Base):
    """A data subject with its own data key; ``account`` is set when they log in themselves."""

    __tablename__ = "clients"
    __encryption_owner__ = "id"  # the data subject itself

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id"), unique=True
    )
    account: Mapped[Account | None] = relationship(backref=backref("client", uselist=False))
    full_name_ciphertext: Mapped[bytes | None] = mapped_column("full_name", LargeBinary)
    full_name = encrypted()
    birth_date_ciphertext: Mapped[bytes | None] = mapped_column("birth_date", LargeBinary)
    birth_date = encrypted(date)
    allergies_ciphertext: Mapped[bytes | None] = mapped_column("allergies", LargeBinary)
    allergies = encrypted()
    medical_notes_ciphertext: Mapped[bytes | None] = mapped_column("medical_notes", LargeBinary)
    medical_notes = encrypted()
    group_name_ciphertext: Mapped[bytes | None] = mapped_column("group_name", LargeBinary)
    group_name = encrypted()
    phone_ciphertext: Mapped[bytes | None] = mapped_column("phone", LargeBinary)
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    phone = encrypted(blind_index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set when the client asked for erasure and some data must be kept for a duty
    # (§ 84 SGB X): everything else is gone; what is left is hidden from everyday views.
    restricted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # When an admin checked the restriction (answering the request within a month).
    erasure_reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When an invitation to an account of their own was sent and is still open or was
    # used; set whether or not the address already had an account, so a guardian cannot
    # tell the two apart from what follows (shared.services.household). Cleared when the
    # invitation is withdrawn.
    own_account_invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An anonymous contact (shared/services/anonymous.py): known to staff only by the
    # pseudonym of its account, never found by the client search, never linked to a file.
    # When they first wrote; None for everyone else.
    # Indexed: the retention purge looks among the anonymous contacts only.
    anonymous_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    @property
    def anonymous(self) -> bool:
        return self.anonymous_at is not None

    name_tokens: Mapped[list[ClientNameToken]] = relationship(
        cascade="all, delete-orphan", back_populates="client"
    )

    def __repr__(self) -> str:
        return f"<Client {self.id}>"


class ClientNameToken(Base):
    """Blind index of one token of a client's name, for exact-token search without decrypting."""

    __tablename__ = "client_name_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    token_bidx: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    # Name token and birth date together: narrows a search without indexing the
    # low-entropy birth date on its own.
    token_birth_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    client: Mapped[Client] = relationship(back_populates="name_tokens")
