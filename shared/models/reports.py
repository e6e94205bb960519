"""Counts behind the funder report (shared/services/reports.py): no personal data.

One row per appointment time, service and age band: how many confirmed appointments begin
then, and how many clients have there their first confirmed appointment of that month with
that service (so "clients" adds up to distinct clients per month, and a month not yet over
counts only what has begun). Counts only: no client id, no birth date, nothing an erasure
has to find; the erasure takes a client's counts out before their data goes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, UTCDateTime


class ReportCount(Base):
    __tablename__ = "report_counts"

    slot_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True, index=True)
    age_band: Mapped[str] = mapped_column(String(8), primary_key=True)
    # The first day of slot_at's month in the organisation's time zone.
    month: Mapped[date] = mapped_column(Date)
    appointments: Mapped[int] = mapped_column(Integer, default=0)
    clients: Mapped[int] = mapped_column(Integer, default=0)
