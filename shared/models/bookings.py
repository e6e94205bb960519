"""Services (Angebote), staff availability, bookings and calendar feeds."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, UTCDateTime, encrypted, new_id, utcnow
from shared.models.clients import Client
from shared.models.keys import DataKey
from shared.models.staff import StaffMember

REQUESTED = "requested"
CONFIRMED = "confirmed"
DECLINED = "declined"
CANCELLED = "cancelled"
PROPOSED = "proposed"  # staff proposed another time; the client accepts or declines
EXPIRED = "expired"
STATUSES = (REQUESTED, CONFIRMED, DECLINED, CANCELLED, PROPOSED, EXPIRED)
# Bookings that hold their slot. The partial unique index below lists them literally.
ACTIVE = (REQUESTED, CONFIRMED, PROPOSED)
_ACTIVE_SQL = "status IN ('requested', 'confirmed', 'proposed')"
# Requests still waiting for an answer (a move request is one of them).
_OPEN_SQL = "status IN ('requested', 'proposed')"
_WAITING_SQL = "status = 'requested'"


class Service(Base):
    """An offer clients can book (organisation data, not personal)."""

    __tablename__ = "services"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    location: Mapped[str] = mapped_column(String(200), default="")
    # The other languages: {locale: {"name", "description", "location"}}; the columns
    # above are German, the organisation's language (shared.content_i18n).
    translations: Mapped[dict | None] = mapped_column(JSON, default=dict)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    # Online services: the https base address of the video platform's rooms. Each confirmed
    # appointment gets a room of its own under it (Booking.video_room); the base itself is
    # never given to clients, or everyone who once had an appointment could join others.
    video_url: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    staff: Mapped[list[StaffMember]] = relationship(secondary="staff_services")


class StaffService(Base):
    """Which staff member offers which service."""

    __tablename__ = "staff_services"

    staff_member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AvailabilityRule(Base):
    """Recurring weekly hours of a staff member, in the organisation's local time."""

    __tablename__ = "availability_rules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    staff_member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class AvailabilityException(Base):
    """A day (or part of it) without appointments: holiday, sick day, training."""

    __tablename__ = "availability_exceptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    staff_member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[date] = mapped_column(Date)
    start_time: Mapped[time | None] = mapped_column(Time)  # None: the whole day
    end_time: Mapped[time | None] = mapped_column(Time)


class Booking(Base):
    """An appointment request and its life: requested → confirmed/declined/…"""

    __tablename__ = "bookings"
    __encryption_owner__ = "client_id"
    __table_args__ = (
        # No double booking: one active booking per staff member and start time. The
        # booking service also locks the staff member's row and checks for overlaps.
        Index(
            "uq_bookings_active_slot",
            "staff_member_id",
            "start_at",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        # One open request to move an appointment at a time, even when two arrive at once
        # (the service checks first, but with other staff members' locks).
        Index(
            "uq_bookings_open_move",
            "replaces_booking_id",
            unique=True,
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
        # The booking queue: the waiting requests, oldest first, a page at a time.
        Index(
            "ix_bookings_waiting",
            "created_at",
            "id",
            sqlite_where=text(_WAITING_SQL),
            postgresql_where=text(_WAITING_SQL),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    client: Mapped[Client] = relationship()
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    # Indexed: the per-account cap on open requests counts by it at every request.
    booked_by_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id"), index=True)
    service: Mapped[Service] = relationship(lazy="joined")
    staff_member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_members.id"))
    staff_member: Mapped[StaffMember] = relationship(lazy="joined")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), default=REQUESTED, index=True)
    note_ciphertext: Mapped[bytes | None] = mapped_column("note", LargeBinary)
    note = encrypted()
    staff_message_ciphertext: Mapped[bytes | None] = mapped_column("staff_message", LargeBinary)
    staff_message = encrypted()
    # When staff propose another time the booking moves there; this keeps the time asked for.
    original_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set once the client was told that the request expired unanswered (sent once only).
    expiry_notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A request to move an appointment: the booking it would replace stays valid until
    # staff confirm this one, which cancels it (shared/services/bookings.py). Both belong
    # to the same client. No foreign key: SQLite cannot add or drop one without rebuilding
    # a table others point to, and a replaced booking that is gone reads as none.
    replaces_booking_id: Mapped[uuid.UUID | None] = mapped_column()
    replaces: Mapped[Booking | None] = relationship(
        primaryjoin="foreign(Booking.replaces_booking_id) == remote(Booking.id)",
        viewonly=True)
    # Online appointments: the link to this appointment's own video room (the service's
    # base address and an unguessable name), set when it is confirmed; the client's data.
    video_room_ciphertext: Mapped[bytes | None] = mapped_column("video_room", LargeBinary)
    video_room = encrypted()
    # § 8(3) SGB VIII: counselling a young person asked for without their parents.
    confidential_from_guardians: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class CalendarFeed(Base):
    """A secret, revocable URL with a client's confirmed appointments."""

    __tablename__ = "calendar_feeds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SlotHold(Base):
    """A slot kept for a visitor for a short while (slot picker before registration),
    so that nobody else can take it. Known by a random token in the visitor's session,
    stored only as a hash; holds no personal data. Expired rows are deleted lazily
    (shared/services/slot_holds.py)."""

    __tablename__ = "slot_holds"
    __table_args__ = (
        # One live hold per staff member and start; expired ones are deleted before a new
        # hold is written, in the same transaction.
        Index("uq_slot_holds_slot", "staff_member_id", "start_at", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True)
    service: Mapped[Service] = relationship(lazy="joined")
    staff_member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
