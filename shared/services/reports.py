"""Funder reports: counts per month and service, small cells suppressed.

The report reads counts (shared/models/reports.py), never the clients: one statement for
the counts of a year and one for the services' names, however many clients there are.
The counts change in the transaction that changes what they count:

- an appointment confirmed or cancelled (``before_change``/``after_change`` around the
  status update in shared/services/bookings.py): the client's confirmed appointments of that
  month and service are read before and after (booking rows, nothing decrypted) and the
  difference is added; the age band comes from the one client's birth date;
- a client erased or restricted (``withdraw_client``, shared/services/erasure.py): the
  report promises appointments held by clients whose data may still be used, and restricted
  data (§ 84 SGB X) is not used, not even for statistics, so their counts are taken out
  while their birth date is still there; an erasure replayed after a restore does the same
  (it finds the client not yet restricted);
- a birth date changed (``birth_date_changed``): the client's counts move to the new band.

"Held" means confirmed and begun: counts are kept per appointment time while the month is
not over, and the report adds up the times before now. Once a month is over its counts are
merged into one row per service and age group (``_close_months``, at the next report visit,
one time per month), so no row ties an age group to a past appointment time.

``rebuild`` counts everything again from the bookings (decrypting each counted client's
birth date once): the one-time backfill after the upgrade (``flask reports rebuild``), done
by the first report visit when nobody ran it, e.g. after restoring a backup from before the
counts.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, func, select

from shared.content_i18n import Shown, service_text
from shared.extensions import db
from shared.models.base import utcnow
from shared.models.bookings import CONFIRMED, Booking, Service
from shared.models.clients import Client
from shared.models.keys import AppMeta
from shared.models.reports import ReportCount
from shared.services.availability import local_zone

SMALL_CELL = 5
AGE_GROUPS = (("0-5", 0, 5), ("6-11", 6, 11), ("12-17", 12, 17), ("18-26", 18, 26),
              ("27+", 27, 200))
UNKNOWN = "unknown"
AGE_LABELS = tuple(g[0] for g in AGE_GROUPS) + (UNKNOWN,)
# app_meta: the counts are built and kept up; the value is the first month whose counts are
# still per appointment time (the months before it are merged).
BUILT_KEY = "report_counts"
BATCH = 500


@dataclass
class Row:
    month: str
    service: Shown | str
    clients: int
    appointments: int
    ages: dict[str, int]


HIDDEN = "*"


def cell(value: int) -> str:
    """Counts below 5 could point to a person: they show as "< 5" (zero stays 0)."""
    return "< 5" if 0 < value < SMALL_CELL else str(value)


def age_cells(row: Row) -> dict[str, str]:
    """Age groups add up to the client count, so one small cell could be worked out by
    subtraction: when any group is small, the next-smallest group is hidden too, and when
    the total is small, every group is."""
    labels = AGE_LABELS
    shown = {label: cell(row.ages[label]) for label in labels}
    if 0 < row.clients < SMALL_CELL:
        return {label: (HIDDEN if row.ages[label] else "0") for label in labels}
    small = [label for label in labels if 0 < row.ages[label] < SMALL_CELL]
    if len(small) == 1:
        others = sorted((row.ages[label], label) for label in labels
                        if row.ages[label] >= SMALL_CELL)
        if others:
            shown[others[0][1]] = HIDDEN
    return shown


def age_band(birth: date | None, month: date) -> str:
    """The age group of someone born on ``birth`` on the first day of ``month``."""
    if birth is None:
        return UNKNOWN
    age = month.year - birth.year - ((month.month, month.day) < (birth.month, birth.day))
    return next((g[0] for g in AGE_GROUPS if g[1] <= age <= g[2]), UNKNOWN)


def monthly(*, year: int) -> list[Row]:
    """Appointments held (confirmed and begun) per month and service in ``year``."""
    ensure_built()
    zone = local_zone()
    first = datetime(year, 1, 1, tzinfo=zone)
    until = min(datetime(year + 1, 1, 1, tzinfo=zone), utcnow())
    counts = db.session.execute(
        select(ReportCount.month, ReportCount.service_id, ReportCount.age_band,
               func.sum(ReportCount.appointments), func.sum(ReportCount.clients))
        .where(ReportCount.slot_at >= first).where(ReportCount.slot_at < until)
        .group_by(ReportCount.month, ReportCount.service_id, ReportCount.age_band)
    ).all()
    groups: dict[tuple[date, uuid.UUID], Row] = {}
    for month, service_id, band, appointments, clients in counts:
        row = groups.setdefault((month, service_id), Row(
            f"{month.year}-{month.month:02d}", "", 0, 0, dict.fromkeys(AGE_LABELS, 0)))
        row.appointments += appointments or 0
        row.clients += clients or 0
        row.ages[band if band in row.ages else UNKNOWN] += clients or 0
    services = {service.id: service for service in db.session.scalars(
        select(Service).where(Service.id.in_({key[1] for key in groups})))} if groups else {}
    result = []
    for (_month, service_id), row in groups.items():
        if row.appointments <= 0:
            continue  # everything counted there was cancelled or erased again
        service = services.get(service_id)
        row.service = service_text(service, "name") if service is not None else ""
        result.append(row)
    return sorted(result, key=lambda row: (row.month, str(row.service)))


def as_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["month", "service", "clients", "appointments",
                     *[f"age {label}" for label in AGE_LABELS]])
    for row in rows:
        ages = age_cells(row)
        service = row.service.plain if isinstance(row.service, Shown) else row.service
        writer.writerow([row.month, service, cell(row.clients), cell(row.appointments),
                         *[ages[label] for label in AGE_LABELS]])
    return out.getvalue()


# -- keeping the counts -------------------------------------------------------------------
def _month_of(moment: datetime) -> date:
    local = moment.astimezone(local_zone())
    return date(local.year, local.month, 1)


def _month_window(month: date) -> tuple[datetime, datetime]:
    zone = local_zone()
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return (datetime(month.year, month.month, 1, tzinfo=zone),
            datetime(following.year, following.month, 1, tzinfo=zone))


def _contribution(starts: list[datetime], month: date, open_from: date) -> Counter:
    """What one client's confirmed appointments of one month and service count: one
    appointment at each time, the client once, at the first."""
    counts: Counter = Counter()
    for start in starts:
        counts[(_key(start, month, open_from), "appointments")] += 1
    if starts:
        counts[(_key(min(starts), month, open_from), "clients")] += 1
    return counts


def _add(month: date, service_id: uuid.UUID, band: str, delta: Counter) -> None:
    changes: dict[datetime, dict[str, int]] = defaultdict(lambda: {"appointments": 0,
                                                                   "clients": 0})
    for (slot_at, column), value in delta.items():
        if value:
            changes[slot_at][column] += value
    for slot_at, values in changes.items():
        if not any(values.values()):
            continue
        db.session.execute(_upsert().values(slot_at=slot_at, service_id=service_id,
                                            age_band=band, month=month, **values)
                           .on_conflict_do_update(
                               index_elements=["slot_at", "service_id", "age_band"],
                               set_={"appointments": ReportCount.appointments
                                     + values["appointments"],
                                     "clients": ReportCount.clients + values["clients"]}))


def _upsert():
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(ReportCount)


def _open_from() -> date | None:
    """The first month not merged yet; None while the counts were never built."""
    value = db.session.scalar(select(AppMeta.value).where(AppMeta.key == BUILT_KEY))
    return None if value is None else date.fromisoformat(bytes(value).decode())


def _key(slot_at: datetime, month: date, open_from: date) -> datetime:
    """Where a count goes: its time, or the month's start once the month is merged."""
    return slot_at if month >= open_from else _month_window(month)[0]


@dataclass
class Before:
    client_id: uuid.UUID
    service_id: uuid.UUID
    month: date
    starts: list[datetime]
    open_from: date


def _starts(client_id: uuid.UUID, service_id: uuid.UUID, month: date) -> list[datetime]:
    first, until = _month_window(month)
    return list(db.session.scalars(
        select(Booking.start_at).where(Booking.client_id == client_id)
        .where(Booking.service_id == service_id).where(Booking.status == CONFIRMED)
        .where(Booking.start_at >= first).where(Booking.start_at < until)))


def _lock_client(client_id: uuid.UUID) -> Client | None:
    """The client, locked on PostgreSQL: two changes to one client's appointments count
    one after the other (SQLite has one writer anyway)."""
    stmt = select(Client).where(Client.id == client_id)
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Client)
    return db.session.scalar(stmt)


def before_change(booking: Booking) -> Before | None:
    """Call in the transaction, before a booking's status changes to or from confirmed."""
    open_from = _open_from()
    if open_from is None:
        return None  # the rebuild will count it
    client = _lock_client(booking.client_id)
    if client is None or client.restricted_at is not None:
        return None
    month = _month_of(booking.start_at)
    return Before(booking.client_id, booking.service_id, month,
                  _starts(booking.client_id, booking.service_id, month), open_from)


def after_change(before: Before | None) -> None:
    """Call after the status update, before the commit."""
    if before is None:
        return
    after = _starts(before.client_id, before.service_id, before.month)
    delta = _contribution(after, before.month, before.open_from)
    delta.subtract(_contribution(before.starts, before.month, before.open_from))
    if not any(delta.values()):
        return
    client = db.session.get(Client, before.client_id)
    _add(before.month, before.service_id, age_band(client.birth_date, before.month), delta)


def _client_counts(client_id: uuid.UUID) -> dict[tuple[date, uuid.UUID], list[datetime]]:
    groups: dict[tuple[date, uuid.UUID], list[datetime]] = defaultdict(list)
    for service_id, start_at in db.session.execute(
            select(Booking.service_id, Booking.start_at).where(Booking.client_id == client_id)
            .where(Booking.status == CONFIRMED)):
        groups[(_month_of(start_at), service_id)].append(start_at)
    return groups


def _count_client(client_id: uuid.UUID, birth: date | None, sign: int,
                  open_from: date) -> None:
    for (month, service_id), starts in _client_counts(client_id).items():
        delta = Counter({key: sign * value
                         for key, value in _contribution(starts, month, open_from).items()})
        _add(month, service_id, age_band(birth, month), delta)


def withdraw_client(client: Client) -> None:
    """Take a client's appointments out of the report (erasure, restriction): call while
    the client is neither restricted nor erased yet."""
    if client.restricted_at is None and (open_from := _open_from()) is not None:
        _count_client(client.id, client.birth_date, -1, open_from)


def birth_date_changed(client: Client, old: date | None, new: date | None) -> None:
    """Move the client's counts from the bands of ``old`` to those of ``new``."""
    if old == new or client.restricted_at is not None:
        return
    if (open_from := _open_from()) is not None:
        _count_client(client.id, old, -1, open_from)
        _count_client(client.id, new, +1, open_from)


def _this_month() -> date:
    return _month_of(utcnow())


def _lock_counts() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        # Changes of appointments wait, then add to what is written here.
        db.session.execute(db.text("LOCK TABLE report_counts IN EXCLUSIVE MODE"))


def ensure_built() -> None:
    """Build the counts when nobody has (a fresh upgrade, a restored older backup), and
    merge the months that ended since the last visit. One statement when nothing is due."""
    open_from = _open_from()
    if open_from is None:
        rebuild(only_if_missing=True)
        db.session.commit()
    elif open_from < _this_month():
        _close_months()
        db.session.commit()


def _close_months() -> None:
    """Merge the counts of every month that is over into one row per month, service and
    age group (kept at the month's first moment)."""
    _lock_counts()
    open_from, this_month = _open_from(), _this_month()
    if open_from is None or open_from >= this_month:
        return
    first, until = _month_window(open_from)[0], _month_window(this_month)[0]
    window = (ReportCount.slot_at >= first, ReportCount.slot_at < until)
    merged = db.session.execute(
        select(ReportCount.month, ReportCount.service_id, ReportCount.age_band,
               func.sum(ReportCount.appointments), func.sum(ReportCount.clients))
        .where(*window)
        .group_by(ReportCount.month, ReportCount.service_id, ReportCount.age_band)).all()
    db.session.execute(delete(ReportCount).where(*window))
    rows = [{"slot_at": _month_window(month)[0], "service_id": service_id, "age_band": band,
             "month": month, "appointments": appointments or 0, "clients": clients or 0}
            for month, service_id, band, appointments, clients in merged
            if appointments or clients]
    for start in range(0, len(rows), 1000):
        db.session.execute(ReportCount.__table__.insert(), rows[start:start + 1000])
    _set_open_from(this_month)


def _set_open_from(month: date) -> None:
    row = db.session.get(AppMeta, BUILT_KEY)
    if row is None:
        db.session.add(AppMeta(key=BUILT_KEY, value=month.isoformat().encode()))
    else:
        row.value = month.isoformat().encode()
    db.session.flush()


def rebuild(*, only_if_missing: bool = False) -> int:
    """Count every confirmed appointment of clients whose data may be used, from scratch
    (in the caller's transaction; commit afterwards). Each such client's birth date is
    decrypted once, in batches of 500 clients; nothing of it is kept but the band.
    Returns how many clients were counted."""
    _lock_counts()
    if only_if_missing and _open_from() is not None:
        return 0
    open_from = _this_month()
    db.session.execute(delete(ReportCount))
    totals: Counter = Counter()
    counted, last = 0, None
    while True:
        stmt = (select(Client).where(Client.restricted_at.is_(None))
                .where(select(Booking.id).where(Booking.client_id == Client.id)
                       .where(Booking.status == CONFIRMED).exists())
                .order_by(Client.id).limit(BATCH))
        if last is not None:
            stmt = stmt.where(Client.id > last)
        clients = list(db.session.scalars(stmt))
        if not clients:
            break
        births = {client.id: client.birth_date for client in clients}
        last = clients[-1].id
        for client in clients:
            db.session.expunge(client)
        groups: dict[tuple, list[datetime]] = defaultdict(list)
        for client_id, service_id, start_at in db.session.execute(
                select(Booking.client_id, Booking.service_id, Booking.start_at)
                .where(Booking.client_id.in_(list(births)))
                .where(Booking.status == CONFIRMED)):
            groups[(client_id, _month_of(start_at), service_id)].append(start_at)
        for (client_id, month, service_id), starts in groups.items():
            band = age_band(births[client_id], month)
            for (slot_at, column), value in _contribution(starts, month, open_from).items():
                totals[(slot_at, service_id, band, month, column)] += value
        counted += len(births)
        births.clear()
    rows: dict[tuple, dict] = {}
    for (slot_at, service_id, band, month, column), value in totals.items():
        row = rows.setdefault((slot_at, service_id, band), {
            "slot_at": slot_at, "service_id": service_id, "age_band": band, "month": month,
            "appointments": 0, "clients": 0})
        row[column] += value
    values = list(rows.values())
    for start in range(0, len(values), 1000):
        db.session.execute(ReportCount.__table__.insert(), values[start:start + 1000])
    _set_open_from(open_from)
    return counted
