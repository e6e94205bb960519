"""Staff members: an account with a role. A staff account is never a client."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from shared.models.accounts import Account
from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.keys import DataKey

ADMIN = "admin"
CASEWORKER = "caseworker"
RECEPTION = "reception"
ROLES = (ADMIN, CASEWORKER, RECEPTION)

# How a staff member hears of new messages from clients (shared/services/messages.py).
NOTIFY_INSTANT = "instant"  # an email (without content) for each new message
NOTIFY_DIGEST = "digest"  # one email a day listing how many are unread
MESSAGE_NOTIFICATIONS = (NOTIFY_INSTANT, NOTIFY_DIGEST)


class StaffMember(Base):
    __tablename__ = "staff_members"
    __encryption_owner__ = "id"  # staff are no clients: their name is their own

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), unique=True)
    account: Mapped[Account] = relationship(
        backref=backref("staff_member", uselist=False), lazy="joined"
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    role: Mapped[str] = mapped_column(String(16))
    name_ciphertext: Mapped[bytes | None] = mapped_column("name", LargeBinary)
    name = encrypted()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # None (a row from before messages): instant.
    message_notifications: Mapped[str | None] = mapped_column(
        String(16), default=NOTIFY_INSTANT, server_default=NOTIFY_INSTANT)
    message_digest_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<StaffMember {self.id} {self.role}>"
