"""Funder reports: counts per month and service, small cells suppressed."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from shared.extensions import db
from shared.models.base import utcnow
from shared.models.bookings import CONFIRMED, Booking, Service
from shared.models.clients import Client
from shared.services.availability import local_zone
from shared.services.household import age_on

SMALL_CELL = 5
AGE_GROUPS = (("0-5", 0, 5), ("6-11", 6, 11), ("12-17", 12, 17), ("18-26", 18, 26),
              ("27+", 27, 200))


@dataclass
class Row:
    month: str
    service: str
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
    labels = [g[0] for g in AGE_GROUPS] + ["unknown"]
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


def monthly(*, year: int) -> list[Row]:
    """Appointments held (confirmed and past) per month and service in ``year``."""
    zone = local_zone()
    first = datetime(year, 1, 1, tzinfo=zone)
    until = min(datetime(year + 1, 1, 1, tzinfo=zone), utcnow())
    rows = db.session.execute(
        select(Booking.client_id, Booking.start_at, Service.name)
        .join(Service, Booking.service_id == Service.id)
        # Restricted data (§ 84 SGB X) is only stored, not used, not even for statistics.
        .join(Client, Booking.client_id == Client.id)
        .where(Client.restricted_at.is_(None))
        .where(Booking.status == CONFIRMED)
        .where(Booking.start_at >= first).where(Booking.start_at < until)
    ).all()
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for client_id, start_at, service in rows:
        local = start_at.astimezone(zone)
        groups[(f"{local.year}-{local.month:02d}", service)].append((client_id, local.date()))
    births = _birth_dates({client_id for client_id, _start, _service in rows})
    result = []
    for (month, service), items in sorted(groups.items()):
        clients = {client_id for client_id, _ in items}
        ages = dict.fromkeys([g[0] for g in AGE_GROUPS] + ["unknown"], 0)
        for client_id in clients:
            born = births.get(client_id)
            if born is None:
                ages["unknown"] += 1
                continue
            age = age_on(born, date.fromisoformat(month + "-01"))
            label = next((g[0] for g in AGE_GROUPS if g[1] <= age <= g[2]), "unknown")
            ages[label] += 1
        result.append(Row(month, service, len(clients), len(items), ages))
    return result


def _birth_dates(client_ids: set) -> dict:
    """Each client's birth date, decrypted once, loaded in batches."""
    ids, births = sorted(client_ids, key=str), {}
    for start in range(0, len(ids), 500):
        for client in db.session.scalars(select(Client).where(
                Client.id.in_(ids[start:start + 500]))):
            births[client.id] = client.birth_date
    return births


def as_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    age_labels = [g[0] for g in AGE_GROUPS] + ["unknown"]
    writer.writerow(["month", "service", "clients", "appointments",
                     *[f"age {label}" for label in age_labels]])
    for row in rows:
        ages = age_cells(row)
        writer.writerow([row.month, row.service, cell(row.clients), cell(row.appointments),
                         *[ages[label] for label in age_labels]])
    return out.getvalue()
