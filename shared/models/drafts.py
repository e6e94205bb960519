"""Form drafts: what a form held when it was posted after its session had ended."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, UTCDateTime, new_id, utcnow


class FormDraft(Base):
    """A posted form kept across the sign-in that follows an idle timeout.

    The content is sealed with a random key that only the browser's session cookie holds
    (shared/auth/drafts.py): the database alone cannot read it. One hour at most, and
    deleted when it fills the form again."""

    __tablename__ = "form_drafts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
