"""Erasure (Art. 17 GDPR) with restriction (§ 84 SGB X) and the retention purge.

A client who deletes their account loses everything that no duty requires us to keep, at
once. What a duty requires (appointments that took place, the case file, proof of
consent) is *restricted*: re-encrypted under a fresh data key, hidden from everyday staff
views, readable only with a logged reason, and purged by ``flask retention purge`` when
the catalogue's retention ends. The old data key row is destroyed, so leftover copies of
the client's earlier ciphertext in this database (WAL, free pages) cannot be opened, and
every blind-index entry goes, so a search cannot even confirm that the person was a
client. When nothing is left, the client row and the data key go too.

Which tables hold a client's data, and whether their rows go at once, are kept under a
duty (``DUTIES`` says until when), stay with the file as its access log, or only lose the
reference to an erased account, is declared in the catalogue (``CLIENT_REFERENCES``);
erasure reads that declaration (``client_tables``) and refuses to start, before it
journals anything, while a table with client data is not declared.

Backups taken before hold the old data key (wrapped under the master key). Every erasure
is therefore first written to the erasure journal (ids only, kept outside the database),
which is applied again after a restore, after migrations and at every start (from the
watermark the database keeps on: a start reads only what was appended since); and
rotating the master key retires what opens old backups (see README).
"""

from __future__ import annotations

import calendar
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import bindparam, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from shared import audit, catalogue, erasure_journal
from shared.erasure_journal import ERASE, SHRED
from shared.erasure_journal import journal_path as journal_path  # for the app's start
from shared.extensions import db
from shared.models import (
    Account,
    AppMeta,
    Client,
    DataKey,
    Document,
    Guardianship,
    PasskeyChallenge,
    UserSession,
)
from shared.models.base import encrypted, encrypted_fields, utcnow
from shared.models.bookings import CONFIRMED
from shared.services import client_tables, reports
from shared.services.client_tables import ACCOUNTS, CLIENTS, OWNING, UndeclaredClientData

log = logging.getLogger(__name__)

# What stays of a restricted client's own row: enough to tell whose file it is.
IDENTITY_KEPT = frozenset({"full_name", "birth_date"})


@functools.cache
def retention_years(table: str) -> int:
    years = {entry.retention_years_after_end for entry in catalogue.ENTRIES
             if entry.column.startswith(f"{table}.") and entry.retention_years_after_end}
    if len(years) != 1:
        raise LookupError(f"the catalogue gives {table} no single retention")
    return years.pop()


def years_after(moment: datetime, years: int, *, zone: tzinfo | None = None) -> datetime:
    """``moment`` moved by whole calendar years (back, if negative) on the organisation's
    calendar: the same date and time of day, so an appointment of 11 Jan 2027, 10:00 kept
    for 3 years goes on 11 Jan 2030, 10:00, not on 10 Jan as 3 × 365 days would have it.
    29 February becomes 28 February in a year without it: a period whose last month lacks
    its day ends on that month's last day (§ 188(3) BGB, which § 26(1) SGB X applies to
    social data)."""
    if zone is None:
        zone = ZoneInfo(current_app.extensions["einblick"].config.timezone)
    local = moment.astimezone(zone)
    year = local.year + years
    day = min(local.day, calendar.monthrange(year, local.month)[1])
    return local.replace(year=year, day=day).astimezone(UTC)


# -- what a duty keeps ----------------------------------------------------------------------
@dataclass(frozen=True)
class Duty:
    """Until when a table the catalogue declares KEEP outlives its client's erasure."""

    # (row, when the case closed or None while it is open, the catalogue's retention in
    # calendar years)
    until: Callable[[Any, datetime | None, int], datetime | None]
    label: str  # the catalogue column whose label names these rows on the erasure page
    runs_from: str | None = None  # for an active client: the column the retention runs from


def _appointment_until(row, closed_at: datetime | None, years: int):
    # Only appointments that took place are documentation; requests, declined,
    # cancelled and future appointments are not.
    if closed_at is not None and (row.status != CONFIRMED or row.end_at > closed_at):
        return None
    return years_after(row.end_at, years)


def _consent_until(row, closed_at: datetime | None, years: int):
    ended = row.withdrawn_at or closed_at
    return years_after(ended, years) if ended else None


def _case_until(row, closed_at: datetime | None, years: int):
    # The case closes when the client leaves.
    return years_after(closed_at, years) if closed_at else None


# A table declared KEEP without its duty here (or a duty for a table not declared KEEP)
# stops erasure: UndeclaredClientData.
DUTIES: dict[str, Duty] = {
    "bookings": Duty(_appointment_until, "bookings.start_at", runs_from="end_at"),
    "documents": Duty(_case_until, "documents.content"),
    "notes": Duty(_case_until, "notes.body"),
    "consents": Duty(_consent_until, "consents.document", runs_from="withdrawn_at"),
}


def kept_references() -> list[client_tables.Reference]:
    """The references to a client whose rows a duty may keep, in the catalogue's order.
    Raises ``UndeclaredClientData`` while any table with client data is undeclared, so
    every erasure checks this before it journals or touches a row."""
    kept = client_tables.select_references(catalogue.KEEP, of=CLIENTS)
    problems = [f"{ref.name} is declared KEEP but erasure knows no duty for it (DUTIES)"
                for ref in kept if ref.table.name not in DUTIES]
    problems += [f"DUTIES names {table}, which the catalogue does not declare KEEP"
                 for table in DUTIES.keys() - {ref.table.name for ref in kept}]
    if problems:
        raise UndeclaredClientData(problems)
    return kept


def kept_until(row, closed_at: datetime | None) -> datetime | None:
    """When the duty to keep this row ends; None: no duty (or, for an active client, not
    yet known because the case is still open)."""
    table = row.__tablename__
    duty = DUTIES.get(table)
    if duty is None:
        return None
    return duty.until(row, closed_at, retention_years(table))


def _retained_rows(client_id: uuid.UUID) -> list:
    rows: list = []
    for statement in client_tables.memo("retained rows", _retained_statements):
        rows += db.session.scalars(statement, {"client_id": client_id})
    return rows


def _retained_statements() -> list:
    """The kept rows of a client, each table's own columns only: the relationships its
    model joins for pages (staff member, account, their keys, the service) made PostgreSQL
    plan a seven-table join for every statement (2.6 ms of planning for 0.9 ms of work);
    the rows' data key is the client's, already in the session."""
    client = bindparam("client_id")
    return [select(ref.attribute.class_).where(ref.attribute == client)
            .options(lazyload("*")) for ref in kept_references()]


def _retained_rows_of(client_ids: list[uuid.UUID]) -> dict[uuid.UUID, list]:
    """``_retained_rows`` for a page of clients: one query per kept table, not per client."""
    rows: dict[uuid.UUID, list] = {client_id: [] for client_id in client_ids}
    if not client_ids:
        return rows
    for ref in kept_references():
        for row in db.session.scalars(select(ref.attribute.class_)
                                      .where(ref.attribute.in_(client_ids))):
            rows[getattr(row, ref.attribute.key)].append(row)
    return rows


def _kept_entry(table: str) -> catalogue.Entry:
    """The catalogue entry that names a kept table's rows: its label on the erasure page,
    its category in the access log (the log's categories are the catalogue's)."""
    return catalogue.BY_COLUMN[DUTIES[table].label]


# -- the plan the client sees ----------------------------------------------------------
@dataclass
class KeptGroup:
    category: str
    label: object
    count: int
    until: datetime
    reason: object


# Why a child stays a client when their guardian deletes the account.
OWN_ACCOUNT = "own_account"  # they decide about their data themselves
OTHER_GUARDIAN = "other_guardian"  # one guardian cannot erase what the other looks after
WITH_ORGANISATION = "with_organisation"  # the deleting guardian chose to keep the file


@dataclass
class PersonPlan:
    client: Client
    is_self: bool
    erased: bool  # False: only the link to this person goes (they stay a client)
    kept: list[KeptGroup] = field(default_factory=list)
    # A child only this account looks after: the guardian chooses between erasing the
    # child with the account and keeping the child's file with the organisation.
    choosable: bool = False
    stays_because: str | None = None  # OWN_ACCOUNT, OTHER_GUARDIAN or WITH_ORGANISATION
    # The rows a duty may keep, as read for the plan: carrying the plan out in the same
    # transaction reuses them instead of reading them again.
    retained: list | None = field(default=None, repr=False)


@dataclass
class Plan:
    people: list[PersonPlan]

    @property
    def keeps_anything(self) -> bool:
        return any(p.kept for p in self.people)


def _erased_plan(client: Client, closed_at: datetime, *, is_self: bool,
                 choosable: bool = False) -> PersonPlan:
    rows = _retained_rows(client.id)
    return PersonPlan(client, is_self, True, _group_kept(rows, closed_at),
                      choosable=choosable, retained=rows)


def _group_kept(rows: list, closed_at: datetime) -> list[KeptGroup]:
    groups: dict[str, KeptGroup] = {}
    for row in rows:
        until = kept_until(row, closed_at)
        if until is None:
            continue
        table = row.__tablename__
        entry = _kept_entry(table)
        group = groups.get(table)
        if group is None:
            groups[table] = KeptGroup(entry.category, entry.label, 1, until,
                                      entry.legal_basis)
        else:
            group.count += 1
            group.until = max(group.until, until)
    return list(groups.values())


def _erased_dependants(account: Account) -> tuple[list[Client], list[tuple[Client, str]]]:
    """Children only this account looks after (no other guardian, no own account), and
    children who stay because someone else still looks after them or they have their own
    account (with that reason)."""
    erasable, kept = [], []
    for link in db.session.scalars(select(Guardianship)
                                   .where(Guardianship.guardian_account_id == account.id)
                                   .order_by(Guardianship.created_at, Guardianship.id)):
        others = db.session.scalar(
            select(Guardianship.id).where(Guardianship.dependant_id == link.dependant_id)
            .where(Guardianship.guardian_account_id != account.id).limit(1))
        child = link.dependant
        if child.account_id is not None:
            kept.append((child, OWN_ACCOUNT))
        elif others is not None:
            kept.append((child, OTHER_GUARDIAN))
        else:
            erasable.append(child)
    return erasable, kept


def plan(account: Account, *, now: datetime | None = None,
         keep: frozenset[uuid.UUID] = frozenset()) -> Plan:
    """What deleting this account does to each person. ``keep`` names children (only this
    account looks after them) whose file the guardian chose to leave with the
    organisation: they stay clients without a guardian; the others go with the account."""
    now = now or utcnow()
    erasable, linked = _erased_dependants(account)
    people = [_erased_plan(account.client, now, is_self=True)]
    people += [PersonPlan(c, False, False, choosable=True, stays_because=WITH_ORGANISATION)
               if c.id in keep else _erased_plan(c, now, is_self=False, choosable=True)
               for c in erasable]
    people += [PersonPlan(c, False, False, stays_because=why) for c, why in linked]
    return Plan(people)


# -- carrying it out ---------------------------------------------------------------------
def delete_account(account: Account, *, keep: frozenset[uuid.UUID] = frozenset()) -> Plan:
    """The client's own request: journal first, then erase them and the children who go
    with them (all children only they look after, except those in ``keep``, whose file
    stays with the organisation). Returns what was kept (for the confirmation email).
    Not for an invited
    account whose hand-over is pending: whoever sent the invitation may hold it, and the
    young person's file must not go on their word."""
    from shared.services import household

    if household.handover_pending(account):
        raise household.HandoverPending
    now = utcnow()
    # Two guardians of one child deleting at the same moment must not both keep the
    # child because each still saw the other: lock the children first (PostgreSQL; SQLite
    # already runs this transaction alone since it began with a write).
    db.session.execute(
        select(Client.id).where(Client.id.in_(
            select(Guardianship.dependant_id)
            .where(Guardianship.guardian_account_id == account.id)))
        .order_by(Client.id).with_for_update())
    result = plan(account, now=now, keep=keep)
    erased = [p for p in result.people if p.erased]
    account_id, account_kind = account.id, account.kind  # the row is gone after the commit
    journal_append([p.client.id for p in erased], at=now)
    for person in erased:
        erase_client(person.client.id, at=now, retained=person.retained)
    db.session.commit()
    _checkpoint()
    from shared import security_log

    security_log.record("erasure.done", account_id=account_id, account_kind=account_kind)
    return result


def notify_and_delete(account_id: uuid.UUID, *,
                      keep: frozenset[uuid.UUID] = frozenset()) -> Plan | None:
    """Delete the account, then send the last email (to the address read before). A
    second request for the same account (a double tap) finds nothing to claim and does
    nothing: returns None."""
    from flask_babel import lazy_gettext as _l

    from shared import mail

    db.session.rollback()  # the claim below must be the transaction's first statement
    claimed = db.session.execute(
        delete(UserSession).where(UserSession.account_id == account_id)).rowcount
    account = db.session.get(Account, account_id) if claimed else None
    if account is None:
        db.session.rollback()
        return None
    email, locale = account.email, account.locale
    result = delete_account(account, keep=keep)
    mail.send(to=email, subject=_l("Your Einblick account has been deleted"),
              template="account_deleted", locale=locale, plan=result)
    return result


def erase_client(client_id: uuid.UUID, *, at: datetime, shred: bool = False,
                 retained: list | None = None) -> str | None:
    """Erase one client as of ``at``: idempotent (re-applied from the journal). With
    ``shred`` nothing is kept. Returns "shredded", "restricted" or None when there was
    nothing (left) to do. ``retained``: the client's kept rows as this transaction already
    read them (``_retained_rows``), for a plan carried out at once."""
    client = db.session.get(Client, client_id)
    if client is None:
        return None
    if client.restricted_at is not None and client.account_id is None:
        at = min(at, client.restricted_at)
    # Out of the funder report while the birth date still says which age group.
    reports.withdraw_client(client)
    account = client.account
    if account is not None:
        client.account = None
        db.session.flush()
        _delete_account_rows(account)
    # What goes at once (search tokens, contacts, links, requests, assignments) ...
    _delete_referring(client.id, _references(catalogue.ERASE, of=CLIENTS))
    # ... and someone else's rows only lose their reference to the client.
    _detach(client.id, _references(catalogue.DETACH, of=CLIENTS))
    now = utcnow()
    kept = []
    for row in _retained_rows(client.id) if retained is None else retained:
        until = kept_until(row, at)
        if shred or until is None or until <= now:
            _delete_row(row)
        else:
            kept.append(row)
    db.session.flush()
    if not kept:
        _shred(client)
        return "shredded"
    for name in set(_encrypted_fields(Client)) - IDENTITY_KEPT:
        setattr(client, name, None)  # also empties the phone's blind index
    client.restricted_at = client.restricted_at or at
    _rekey(client, kept)
    return "restricted"


def _references(action: str, *, of: str) -> list[client_tables.Reference]:
    """The declared references with this action, rows that others point to last."""
    return client_tables.dependants_first(client_tables.select_references(action, of=of))


def _delete_referring(target_id: uuid.UUID, references) -> None:
    for ref in references:
        model, owned = ref.attribute.class_, ref.attribute == target_id
        for pointer, _target in _self_pointers(model):  # among the rows that go together
            db.session.execute(update(model).where(owned).values({pointer.key: None}))
        db.session.execute(delete(model).where(owned))


def _detach(target_id: uuid.UUID, references) -> None:
    for ref in references:
        db.session.execute(update(ref.attribute.class_).where(ref.attribute == target_id)
                           .values({ref.attribute.key: None}))


def _self_pointers(model: type) -> list[tuple]:
    """(pointer, target) attributes by which rows of a table point to other rows of it (a
    note that corrects another): those pointers are cleared before the rows they name go."""
    return [(client_tables.attribute(column), client_tables.attribute(fk.column))
            for column in model.__table__.columns for fk in column.foreign_keys
            if fk.column.table is model.__table__]


def _delete_account_rows(account: Account) -> None:
    # Sign-in state, and the links to children this account looked after (those who stay
    # keep their other guardians) ...
    _delete_referring(account.id, _references(catalogue.ERASE, of=ACCOUNTS))
    # ... while appointments it booked and consents it signed stay with their client.
    _detach(account.id, _references(catalogue.DETACH, of=ACCOUNTS))
    db.session.flush()
    shared_key = account.data_key_id
    db.session.delete(account)
    db.session.flush()
    _drop_key_if_unused(shared_key)


def _delete_row(row) -> None:
    model = type(row)
    for pointer, target in _self_pointers(model):
        db.session.execute(update(model).where(pointer == getattr(row, target.key))
                           .values({pointer.key: None}))
    db.session.delete(row)


def _shred(client: Client) -> None:
    """Nothing is left to keep: the client, their log, whatever else names them (kept
    rows, and after a restore anything erased before) and their data key go."""
    key_id = client.data_key_id
    audit.lock_chain(client.id)  # a visit being written finishes first, or finds them gone
    audit.forget_pending(client.id)
    _delete_referring(client.id, client_tables.dependants_first(
        client_tables.select_references(*OWNING, of=CLIENTS)))
    db.session.delete(client)
    db.session.flush()
    _drop_key_if_unused(key_id)


def _drop_key_if_unused(key_id: uuid.UUID) -> None:
    """Delete the data key unless a row of any table still names it: one statement, an
    EXISTS per key column (each answered from that column's index)."""
    if not db.session.scalar(client_tables.memo("key in use", _key_in_use_statement),
                             {"key_id": key_id}):
        db.session.execute(delete(DataKey).where(DataKey.id == key_id))


def _key_in_use_statement():
    key = bindparam("key_id")
    holders = [client_tables.attribute(column) for column in client_tables.key_columns()]
    return select(or_(*(select(holder).where(holder == key).exists() for holder in holders)))


def _encrypted_fields(model: type) -> list[str]:
    return [name for klass in model.__mro__ for name, value in vars(klass).items()
            if isinstance(value, encrypted)]


def _rekey(client: Client, rows: list) -> None:
    """Re-encrypt what is kept under a new data key and destroy the old one: copies of the
    old ciphertext anywhere (deleted rows, WAL, free pages) can no longer be opened."""
    old_key_id = client.data_key_id
    rows = [client, *rows]
    keyed = {column.table.name for column in client_tables.key_columns()}
    for ref in client_tables.select_references(catalogue.KEEP_WITH_FILE, of=CLIENTS):
        if ref.table.name in keyed:  # e.g. the reasons given for opening the file
            rows += db.session.scalars(select(ref.attribute.class_).options(lazyload("*"))
                                       .where(ref.attribute == client.id))
    rows = [row for row in rows if row.data_key_id == old_key_id]
    if not rows:
        return
    new_key = DataKey.generate()
    db.session.add(new_key)
    for row in rows:
        values = {name: getattr(row, name) for name in _encrypted_fields(type(row))}
        row.data_key = new_key
        for name, value in values.items():
            setattr(row, name, value)
        if isinstance(row, Document):
            # One document (up to 20 MB) in memory at a time.
            del values
            db.session.flush()
            db.session.expire(row, ["content_ciphertext"])
    db.session.flush()
    _drop_key_if_unused(old_key_id)


def _checkpoint() -> None:
    """SQLite: move the WAL into the file (whose deleted pages secure_delete zeroed)."""
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# -- the journal (shared.erasure_journal) ----------------------------------------------
def journal_append(client_ids: list[uuid.UUID], *, at: datetime, action: str = ERASE) -> None:
    """Journal an erasure before any row is touched, once it is sure it can be carried
    out: with a table of client data undeclared (``UndeclaredClientData``) it would stop
    every later start instead."""
    kept_references()
    erasure_journal.journal_append(client_ids, at=at, action=action)


WATERMARK_KEY = "erasure_journal_watermark"  # app_meta: how much of the journal is applied


def _watermark_row() -> AppMeta | None:
    return db.session.get(AppMeta, WATERMARK_KEY)


def apply_journal() -> int:
    """Erase again every journalled client the database still holds more of than it
    should (after a restore, or after a request that died half-way). Only the entries
    after the database's watermark are read: nothing new, nothing to do (one query and
    two small reads of the file). Returns how many clients were touched."""
    row = _watermark_row()
    since = erasure_journal.Watermark.load(row.value if row is not None else None)
    tail = erasure_journal.journal_tail(since)
    if tail.mark == since:
        return 0
    kept_references()  # refuse before touching anything if a table is undeclared
    _lock_journal()
    # Under the lock: another process may have applied (part of) it meanwhile.
    row = _watermark_row()
    stored = row.value if row is not None else None
    if erasure_journal.Watermark.load(stored) != since:
        since = erasure_journal.Watermark.load(stored)
        tail = erasure_journal.journal_tail(since)
        if tail.mark == since:  # it did all of it
            db.session.commit()  # (ends the transaction, and with it the lock)
            return 0
    if tail.replaced:
        log.warning("erasure journal: it does not continue what this database applied "
                    "(replaced or truncated); applying all of it again")
    touched = _apply_entries(tail.entries)
    if tail.mark != since:
        _store_watermark(stored, tail.mark)
    db.session.commit()
    if touched:
        _checkpoint()
    return touched


def _apply_entries(entries: list[tuple[uuid.UUID, datetime, str]]) -> int:
    first: dict[uuid.UUID, datetime] = {}
    shredded: set[uuid.UUID] = set()
    for client_id, at, action in entries:
        first[client_id] = min(at, first.get(client_id, at))
        if action == SHRED:
            shredded.add(client_id)
    ids = sorted(first, key=str)  # one order for every process
    touched = 0
    for start in range(0, len(ids), 500):  # bounded parameter lists on every database
        clients = list(db.session.scalars(
            select(Client).where(Client.id.in_(ids[start:start + 500]))))
        settled = _settled([client for client in clients if client.id not in shredded])
        for client in sorted(clients, key=lambda client: str(client.id)):
            if client.id in settled:
                continue
            if db.session.get(Client, client.id) is None:  # went with an earlier one
                continue
            # ``erase_client`` erases as of the earlier of this time and the restriction's.
            erase_client(client.id, at=first[client.id], shred=client.id in shredded)
            touched += 1
    return touched


def _store_watermark(stored: bytes | None, mark: erasure_journal.Watermark) -> None:
    """In the transaction that carried the entries out; conditional, so a process that
    read an older watermark never moves it back."""
    if stored is None:
        try:
            with db.session.begin_nested():
                db.session.add(AppMeta(key=WATERMARK_KEY, value=mark.dump()))
        except IntegrityError:  # another process stored one first; it applied as much
            pass
        return
    db.session.execute(update(AppMeta).where(AppMeta.key == WATERMARK_KEY)
                       .where(AppMeta.value == stored).values(value=mark.dump())
                       .execution_options(synchronize_session=False))


def _lock_journal() -> None:
    """PostgreSQL: one process applies the journal at a time (workers start together);
    the others then find nothing left to do. SQLite serialises writers anyway."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('einblick-erasure'))"))
        db.session.expire_all()


def _settled(clients: list[Client]) -> set[uuid.UUID]:
    """Of these clients, the restricted ones whose restriction left nothing more than it
    should (no account, nothing due, no row that goes at erasure, no field beyond the
    identity kept): a restored backup taken before their erasure holds more. One query
    per kept table and per table that goes at erasure, for up to 500 clients."""
    restricted = {client.id: client for client in clients
                  if client.restricted_at is not None and client.account_id is None}
    if not restricted:
        return set()
    ids = list(restricted)
    unsettled: set[uuid.UUID] = set()
    for ref in client_tables.select_references(catalogue.ERASE, of=CLIENTS):
        unsettled.update(db.session.scalars(select(ref.attribute).distinct()
                                            .where(ref.attribute.in_(ids))))
    now = utcnow()
    retained = _retained_rows_of(ids)
    kept_fields = [field.attr for name, field in encrypted_fields(Client).items()
                   if name not in IDENTITY_KEPT]
    return {client_id for client_id, client in restricted.items()
            if client_id not in unsettled
            and not any(getattr(client, attr) is not None for attr in kept_fields)
            and all((until := kept_until(row, client.restricted_at)) is not None and until > now
                    for row in retained[client_id])}


# -- retention purge -----------------------------------------------------------------------
PAGE_SIZE = 50  # restricted files per page of the purge and of the admins' check


@dataclass
class PurgeResult:
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def purge(*, now: datetime | None = None) -> PurgeResult:
    """Delete every item whose retention has passed; safe to run again and again."""
    now = now or utcnow()
    result = PurgeResult()

    touched: dict[uuid.UUID, set[str]] = {}

    def count(table: str, n: int = 1, client_id: uuid.UUID | None = None) -> None:
        result.counts[table] = result.counts.get(table, 0) + n
        if client_id is not None:
            touched.setdefault(client_id, set()).add(table)

    # Sign-in state the catalogue promises to drop: dead sessions, spent links, form drafts
    # and passkey challenges (whatever the cookie or link never came back for).
    from shared import security_log
    from shared.auth import drafts, sessions, tokens
    from shared.services import anonymous

    days = current_app.extensions["einblick"].config.security_event_days
    for table, gone in (
            ("user_sessions", sessions.purge_expired(now)),
            ("security_events", security_log.purge_before(now - timedelta(days=days))),
            ("accounts.pending_email", anonymous.purge_pending_emails(now)),
            ("account_tokens", tokens.purge_spent(now)),
            ("form_drafts", drafts.purge_expired(now)),
            ("passkey_challenges", db.session.execute(
                delete(PasskeyChallenge).where(PasskeyChallenge.expires_at < now)).rowcount)):
        if gone:
            count(table, gone)
    # Conversations, a retention after their last message (no duty keeps them).
    from shared.services import messages

    if gone := messages.purge_expired(now=now):
        count("message_threads", gone)
    # Active clients: what a duty runs for from a time of its own (appointments from their
    # end, consents from their withdrawal) once that retention has passed.
    for ref in kept_references():
        table, subject = ref.table.name, ref.attribute
        if DUTIES[table].runs_from is None:
            continue  # the case file: its retention starts when the case closes
        ended = getattr(subject.class_, DUTIES[table].runs_from)
        # Calendar years differ in length: the index narrows to what ended up to two days
        # after the same date back then (every row due, and perhaps a few due tomorrow),
        # and each row goes when kept_until, which "my data" shows, says so.
        cutoff = years_after(now, -retention_years(table)) + timedelta(days=2)
        for row in db.session.scalars(
                select(subject.class_).join(Client, subject == Client.id)
                .where(Client.restricted_at.is_(None)).where(ended <= cutoff)):
            if (until := kept_until(row, None)) is None or until > now:
                continue
            _delete_row(row)
            count(table, client_id=getattr(row, subject.key))
    # Anonymous contacts whose conversations are all gone: nothing is left that they wrote
    # to us for, only their sign-in. Erased as a deletion of the account erases them.
    if erased := _erase_anonymous_contacts_without_conversations(now):
        count("clients", erased)
    # Restricted clients: each kept item when its duty ends; the client when none is left.
    # A page of clients at a time (by id), their kept rows in one query per table.
    after: uuid.UUID | None = None
    while True:
        page = select(Client).where(Client.restricted_at.is_not(None)).order_by(Client.id)
        if after is not None:
            page = page.where(Client.id > after)
        clients = list(db.session.scalars(page.limit(PAGE_SIZE)))
        if not clients:
            break
        after = clients[-1].id
        retained = _retained_rows_of([client.id for client in clients])
        for client in clients:
            left = []
            for row in retained[client.id]:
                until = kept_until(row, client.restricted_at)
                if until is None or until <= now:
                    _delete_row(row)
                    count(row.__tablename__, client_id=client.id)
                else:
                    left.append(row)
            db.session.flush()
            if not left:
                _shred(client)
                touched.pop(client.id, None)  # their log went with them
                count("clients")
    # The client (or, for a restricted file, whoever reads it with a reason) sees what
    # the purge removed in the access log.
    for client_id, tables in sorted(touched.items(), key=lambda item: str(item[0])):
        for table in sorted(tables):
            audit.record_access(client_id=client_id, staff_member=None,
                                category=_kept_entry(table).category, action=audit.PURGE)
    db.session.commit()
    if result.total:
        _checkpoint()
    log.info("retention purge: %s", result.counts)
    return result


def _without_conversations_or_kept_data(stmt, now: datetime):
    """``stmt`` (client ids) narrowed to the anonymous contacts who have no conversation
    left and nothing a duty keeps, and who first wrote longer ago than a conversation is
    kept: someone who wrote since has a conversation the purge has not reached yet."""
    from shared.models.messages import MessageThread
    from shared.services import messages

    stmt = (stmt.where(Client.anonymous_at.is_not(None))
            .where(Client.anonymous_at <= years_after(now, -messages.retention_years()))
            .where(Client.restricted_at.is_(None))
            .where(~select(MessageThread.id).where(MessageThread.client_id == Client.id)
                   .exists()))
    for ref in kept_references():
        stmt = stmt.where(~select(ref.attribute).where(ref.attribute == Client.id).exists())
    return stmt


def _erase_anonymous_contacts_without_conversations(now: datetime) -> int:
    """Erase the anonymous contacts (shared/services/anonymous.py) whose conversations the
    retention purge has all deleted and of whom no duty keeps anything: they came to
    write, and what they wrote is gone, so their pseudonym, password and client row go too,
    journalled and crypto-shredded as an account deletion is (``erase_client``). A page of
    them at a time (by id): the same few statements for each page, whatever the
    organisation's history, besides the erasure of each one due. Returns how many went."""
    erased = 0
    after: uuid.UUID | None = None
    while True:
        page = _without_conversations_or_kept_data(select(Client.id), now)
        if after is not None:
            page = page.where(Client.id > after)
        ids = list(db.session.scalars(page.order_by(Client.id).limit(PAGE_SIZE)))
        if not ids:
            return erased
        after = ids[-1]
        # Someone may start a conversation at this moment: locked, a new conversation waits
        # for this transaction (PostgreSQL; SQLite has one writer), and asked again under
        # the lock, one started before it keeps its contact.
        db.session.execute(select(Client.id).where(Client.id.in_(ids)).order_by(Client.id)
                           .with_for_update())
        ids = list(db.session.scalars(_without_conversations_or_kept_data(
            select(Client.id).where(Client.id.in_(ids)), now).order_by(Client.id)))
        if not ids:
            continue
        journal_append(ids, at=now)
        for client_id in ids:
            if erase_client(client_id, at=now) == "shredded":
                erased += 1


# -- staff: restricted files to review ----------------------------------------------------
@dataclass
class ReviewPage:
    """One page of restricted files for the admins' check, the oldest request first."""

    rows: list[tuple[Any, datetime, list[KeptGroup]]]  # (id and dates, check by, kept)
    page: int
    pages: int
    total: int


def review_page(page: int = 1) -> ReviewPage:
    """Restricted files for the admins' check: the client (id and dates only, no personal
    data), the deadline (the same month as for any request) and what is kept. The same
    few queries for every page: the count, the page, and one per kept table."""
    from shared.services.corrections import answer_by

    restricted = Client.restricted_at.is_not(None)
    total = db.session.scalar(select(func.count()).select_from(Client).where(restricted))
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    clients = db.session.execute(
        select(Client.id, Client.restricted_at, Client.erasure_reviewed_at).where(restricted)
        .order_by(Client.restricted_at, Client.id)
        .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    retained = _retained_rows_of([client.id for client in clients])
    return ReviewPage([(client, answer_by(client.restricted_at),
                        _group_kept(retained[client.id], client.restricted_at))
                       for client in clients], page, pages, total)


def kept_summary(client: Client) -> list[KeptGroup]:
    return _group_kept(_retained_rows(client.id), client.restricted_at)


def _restricted(client_id: uuid.UUID) -> Client:
    client = db.session.get(Client, client_id)
    if client is None or client.restricted_at is None:
        raise LookupError(client_id)
    return client


def confirm_restriction(*, admin, client_id: uuid.UUID) -> None:
    client = _restricted(client_id)
    client.erasure_reviewed_at = utcnow()
    db.session.commit()


def erase_now(*, admin, client_id: uuid.UUID) -> None:
    """An admin decides no duty applies after all: everything goes now."""
    client = _restricted(client_id)
    journal_append([client.id], at=utcnow(), action=SHRED)
    erase_client(client.id, at=client.restricted_at, shred=True)
    db.session.commit()
    _checkpoint()
    from shared import security_log

    # The admin who decided (none when called outside a request, e.g. from a script).
    security_log.record("erasure.done", account=getattr(admin, "account", None))
