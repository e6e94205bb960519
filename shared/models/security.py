"""Security events kept for admins to review (the JSON lines go to the log shipper too)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, UTCDateTime, new_id, utcnow


class SecurityEvent(Base):
    """One security-relevant happening. No names, addresses, codes or tokens: the account
    appears only as a pseudonym (an HMAC of its id), which means nothing once the account
    is gone."""

    __tablename__ = "security_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(48))
    outcome: Mapped[str] = mapped_column(String(16))
    account_kind: Mapped[str | None] = mapped_column(String(16))
    account_ref: Mapped[str | None] = mapped_column(String(32), index=True)

    def __repr__(self) -> str:
        return f"<SecurityEvent {self.event} {self.outcome}>"
