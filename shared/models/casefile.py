"""The digital case file: caseworker assignments, documents, notes, break-glass grants."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.keys import DataKey
from shared.models.staff import StaffMember


class Assignment(Base):
    """A caseworker responsible for a client: they see the full file."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("client_id", "staff_member_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    staff_member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), index=True
    )
    staff_member: Mapped[StaffMember] = relationship(lazy="joined")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Document(Base):
    """An uploaded file, encrypted under the client's data key."""

    __tablename__ = "documents"
    __encryption_owner__ = "client_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    category: Mapped[str] = mapped_column(String(32))
    filename_ciphertext: Mapped[bytes] = mapped_column("filename", LargeBinary)
    filename = encrypted()
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    # Deferred: lists of documents never pull the (up to 20 MB) contents into memory.
    content_ciphertext: Mapped[bytes] = mapped_column("content", LargeBinary, deferred=True)
    content = encrypted(bytes)
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL"), index=True
    )
    uploaded_by: Mapped[StaffMember | None] = relationship(lazy="joined")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    visible_to_client: Mapped[bool] = mapped_column(Boolean, default=False)
    confidential_from_guardians: Mapped[bool] = mapped_column(Boolean, default=False)


class Note(Base):
    """An Aktennotiz. Never edited after 24 hours: corrections are new notes."""

    __tablename__ = "notes"
    __encryption_owner__ = "client_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL"), index=True
    )
    author: Mapped[StaffMember | None] = relationship(lazy="joined")
    body_ciphertext: Mapped[bytes] = mapped_column("body", LargeBinary)
    body = encrypted()
    corrects_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("notes.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    visible_to_client: Mapped[bool] = mapped_column(Boolean, default=False)
    confidential_from_guardians: Mapped[bool] = mapped_column(Boolean, default=False)


class BreakGlassGrant(Base):
    """Access to an unassigned client's file for one session, with a typed reason."""

    __tablename__ = "break_glass_grants"
    __encryption_owner__ = "client_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    staff_member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_members.id"), index=True)
    staff_member: Mapped[StaffMember] = relationship(lazy="joined",
                                                     foreign_keys=[staff_member_id])
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="SET NULL"), index=True
    )
    reason_ciphertext: Mapped[bytes] = mapped_column("reason", LargeBinary)
    reason = encrypted()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL"), index=True
    )


class CorrectionRequest(Base):
    """A client asks staff to correct data staff recorded (Art. 16 GDPR)."""

    __tablename__ = "correction_requests"
    __encryption_owner__ = "client_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    about: Mapped[str] = mapped_column(String(120))  # a catalogue column or "other"
    message_ciphertext: Mapped[bytes] = mapped_column("message", LargeBinary)
    message = encrypted()
    status: Mapped[str] = mapped_column(String(16), default="open")
    reply_ciphertext: Mapped[bytes | None] = mapped_column("reply", LargeBinary)
    reply = encrypted()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL"), index=True
    )
