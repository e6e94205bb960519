"""Account recovery by staff: when a client has lost every second factor and every code,
a staff member who checked their identity in person starts a recovery that takes effect
after a waiting period (see shared/services/account_recovery.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, UTCDateTime, encrypted, new_id
from shared.models.keys import DataKey
from shared.models.staff import StaffMember

# At most one open (neither completed nor cancelled) recovery per account, also when two
# staff members start one at the same moment.
_OPEN = text("completed_at IS NULL AND cancelled_at IS NULL")


class AccountRecovery(Base):
    """One recovery of a client's account: started after an identity check in person,
    effective from ``effective_at``, then completed by a password reset or cancelled."""

    __tablename__ = "account_recoveries"
    __table_args__ = (
        Index("uq_account_recoveries_open", "account_id", unique=True,
              sqlite_where=_OPEN, postgresql_where=_OPEN),
    )
    __encryption_owner__ = "account_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    data_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_keys.id"), index=True)
    data_key: Mapped[DataKey] = relationship(lazy="joined")
    started_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="SET NULL"), index=True
    )
    started_by: Mapped[StaffMember | None] = relationship(lazy="joined")
    # How identity was checked ("ID card seen"): personal data, encrypted.
    identity_check_ciphertext: Mapped[bytes] = mapped_column("identity_check", LargeBinary)
    identity_check = encrypted()
    # The hand-over code staff give the client in person (never emailed): only its keyed
    # hash. Completing needs it, so the mailbox alone (a thief with the phone, someone who
    # reads the client's mail) is not enough. None for recoveries started before 0018.
    handover_code_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Wrong hand-over codes typed so far; at account_recovery.MAX_WRONG_CODES it is cancelled.
    wrong_codes: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<AccountRecovery {self.id}>"

    @property
    def open(self) -> bool:
        return self.completed_at is None and self.cancelled_at is None
