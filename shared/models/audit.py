"""The access log: append-only, hash-chained per client (see shared/audit.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, UTCDateTime, new_id, utcnow


class AccessEvent(Base):
    """One staff request's access to one client's data (a "visit"): which categories were
    read or changed, by whom, for which purpose. Holds no personal data values. Events
    written before migration 0012 hold one category and one action each."""

    __tablename__ = "access_events"
    # One chain per client; the unique sequence number makes two writers that both saw
    # the same head collide instead of forking the chain.
    # The access log's pages go by time within a client (newer/older than a visit).
    __table_args__ = (UniqueConstraint("client_id", "seq"),
                      Index("ix_access_events_client_time", "client_id", "created_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # No foreign key: the log of an erased client is handled by the erasure itself.
    client_id: Mapped[uuid.UUID] = mapped_column(index=True)
    seq: Mapped[int] = mapped_column(Integer)
    staff_member_id: Mapped[uuid.UUID | None] = mapped_column()
    role: Mapped[str] = mapped_column(String(16))
    # Comma-separated, sorted: every category (and action) of the request.
    category: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(128))
    # What the staff member was doing (audit.PURPOSES); None on events from before 0012.
    purpose: Mapped[str | None] = mapped_column(String(32))
    # Set when the access was by break-glass; the grant holds the (encrypted) reason.
    grant_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AccessChainAnchor(Base):
    """Each chain's head as of the last anchor (`flask audit anchor`): where the next
    incremental check and anchor start. A copy of what the anchor file holds, which
    stays the reference (the full check compares against the file, not this table)."""

    __tablename__ = "access_chain_anchors"

    # The chain's client (named chain_id: a row goes at the next anchor after its
    # client's log went with an erasure, not with the erasure itself).
    chain_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AccessChainChange(Base):
    """A chain that changed since the last anchor, written by database triggers on
    access_events (migration 0024) for every insert, update and delete, so a write that
    bypasses the app is marked too. ``low_seq`` is the lowest event touched; ``version``
    counts the touches (an anchor removes only the marks it has read)."""

    __tablename__ = "access_chain_changes"

    chain_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    low_seq: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
