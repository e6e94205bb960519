"""WebAuthn credentials (passkeys, security keys) and pending ceremony challenges."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.keys import DataKey


class PasskeyCredential(Base):
    """A public-key credential of an account. Its name is personal data (encrypted)."""

    __tablename__ = "passkey_credentials"
    __encryption_owner__ = "account_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[str | None] = mapped_column(String(200))
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    name_ciphertext: Mapped[bytes] = mapped_column("name", LargeBinary)
    name = encrypted()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the authenticator's signature counter went backwards (a possible clone);
    # the security page asks the owner to check or remove the passkey.
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<PasskeyCredential {self.id}>"


class PasskeyChallenge(Base):
    """A challenge handed to the browser: single use, bound to one session, short-lived."""

    __tablename__ = "passkey_challenges"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    purpose: Mapped[str] = mapped_column(String(32))
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
