"""Secure messages between a client (or a guardian for a child) and the team of a service.

Every row names the client the conversation is about (``client_id``) and is encrypted under
that client's data key, as the case file is: erasure, "my data" and the export find the rows
by that column (``shared/catalogue.py``). A thread is the conversation on one topic with one
service; staff of the service see it in their inbox, one takes it (``assigned_staff_id``),
others may join (``thread_staff``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.bookings import Service
from shared.models.keys import DataKey
from shared.models.staff import StaffMember


class MessageThread(Base):
    """A conversation on one topic between a client and the team of one service."""

    __tablename__ = "message_threads"
    __encryption_owner__ = "client_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The person the conversation is about (a child's, when a guardian writes for them).
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    service_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL"), index=True
    )
    service: Mapped[Service | None] = relationship(lazy="joined")
    topic_ciphertext: Mapped[bytes] = mapped_column("topic", LargeBinary)
    topic = encrypted()
    started_by_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    assigned_staff_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL"), index=True
    )
    assigned_staff: Mapped[StaffMember | None] = relationship(lazy="joined")
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confidential_from_guardians: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The retention (``message_retention_years``) runs from the last message.
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The number of the conversation's last message (``messages.seq``). Writing a message
    # takes the next one with an UPDATE of this row, whose lock holds every other writer of
    # the conversation until the transaction ends: the numbers follow the commits.
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class ThreadStaff(Base):
    """A staff member who joined a conversation someone else took."""

    __tablename__ = "thread_staff"

    thread_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("message_threads.id", ondelete="CASCADE"), primary_key=True
    )
    staff_member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    staff_member: Mapped[StaffMember] = relationship(lazy="joined")
    # Whose conversation it is (erasure and "my data" find the rows by it).
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    thread: Mapped[MessageThread] = relationship()

    @property
    def confidential_from_guardians(self) -> bool:
        """The conversation's: a guardian never learns who joined one kept from them."""
        return self.thread.confidential_from_guardians


class Message(Base):
    """One message of a thread, written by the client (or a guardian) or by staff."""

    __tablename__ = "messages"
    __encryption_owner__ = "client_id"
    __table_args__ = (Index("ix_messages_thread_seq", "thread_id", "seq", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    thread_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("message_threads.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    # Exactly one author: the client or a guardian (their account), or a staff member.
    author_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    author_staff_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL"), index=True
    )
    author_staff: Mapped[StaffMember | None] = relationship(lazy="joined")
    # Which side wrote it: stays when an author's account or staff row is gone.
    from_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    body_ciphertext: Mapped[bytes] = mapped_column("body", LargeBinary)
    body = encrypted()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Its place in the conversation, in the order the messages were committed (1, 2, …;
    # ``MessageThread.last_seq``): the order pages show and the cursor an open page asks
    # after. The time a message was begun is no such order: one begun earlier (a large
    # file being checked) can be committed after a later one was already shown.
    seq: Mapped[int] = mapped_column(Integer)
    read_by_client_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_by_staff_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confidential_from_guardians: Mapped[bool] = mapped_column(Boolean, default=False)


class MessageAttachment(Base):
    """A file sent with a message: content-checked like a document, encrypted."""

    __tablename__ = "message_attachments"
    __encryption_owner__ = "client_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    filename_ciphertext: Mapped[bytes] = mapped_column("filename", LargeBinary)
    filename = encrypted()
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    # Deferred: a thread's page never pulls the (up to 20 MB) contents into memory.
    content_ciphertext: Mapped[bytes] = mapped_column("content", LargeBinary, deferred=True)
    content = encrypted(bytes)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The message's: a guardian never sees the file of a message kept from them.
    confidential_from_guardians: Mapped[bool] = mapped_column(Boolean, default=False)
