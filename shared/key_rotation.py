"""Key rotation that is safe with running processes on several machines.

The primary key-encryption key (KEK) is a fact of the database, not of a process: the row
``kek-primary`` in ``app_meta`` names it with a generation number. Every process (each app
instance, in each worker) reads it at start and again when its copy is older than
``REFRESH_SECONDS`` (before it wraps or unwraps anything), and reports what it uses in a
heartbeat row ``kek-process:<token>-<pid>``. A flush that writes new data keys reads the
primary once more inside its own transaction (holding a share lock on PostgreSQL; SQLite
has one writer at a time) and re-wraps them if the primary changed, so no data key is
committed under a key that stopped being primary.

Two phases (README, "Rotating the master key"):

1. ``flask keys rotate`` makes a new KEK primary (generation + 1) and re-wraps every data
   key under it. Processes switch within ``REFRESH_SECONDS``, without a restart.
2. ``flask keys retire`` drops every other KEK, and is refused while a live process (a
   heartbeat younger than ``LIVE_SECONDS``) reports an older generation or any data key is
   still wrapped under another key. Retired ids are listed in ``kek-retired``: processes
   drop those keys from their keyring, so nothing decrypts with them any more.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, func, inspect, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from shared import crypto
from shared.extensions import db

log = logging.getLogger(__name__)

PRIMARY = "kek-primary"
RETIRED = "kek-retired"
PROCESS_PREFIX = "kek-process:"
REFRESH_SECONDS = 30.0
# A process refreshes before its next use once its copy is REFRESH_SECONDS old, and reports
# at every refresh: a heartbeat older than this (with room for clock skew) belongs to a
# process that will read the primary again before it wraps anything, or to one that ended.
LIVE_SECONDS = 3 * REFRESH_SECONDS
FORGET_SECONDS = 24 * 3600  # heartbeats older than this are deleted
EXTENSION = "einblick_keys"


@dataclass(frozen=True)
class Primary:
    kek_id: str
    generation: int


@dataclass(frozen=True)
class ProcessReport:
    key: str
    host: str
    pid: int
    kek_id: str
    generation: int
    holds: tuple[str, ...]
    seen: float
    from_file: bool = False  # keys from instance/keys.json (read again when needed)

    def age(self, now: float) -> float:
        return max(0.0, now - self.seen)


class KeySync:
    """One app instance's view of the primary key, refreshed from the database."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.token = secrets.token_hex(8)
        config = app.extensions["einblick"].config
        # Tests refresh when they say so, so that counted requests run a fixed number of
        # statements; everywhere else every REFRESH_SECONDS.
        self.interval: float | None = None if config.env == "test" else REFRESH_SECONDS
        self.checked = 0.0
        self.generation = 0
        self.retired: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._ready = False  # app_meta exists (not before the first migration)
        self._warned: str | None = None

    @property
    def state(self):
        return self.app.extensions["einblick"]

    def process_key(self) -> str:
        return f"{PROCESS_PREFIX}{self.token}-{os.getpid()}"

    def due(self) -> bool:
        return self.interval is not None and time.monotonic() - self.checked >= self.interval

    def expire(self) -> None:
        """Read the primary again before the next use (as when REFRESH_SECONDS passed)."""
        self.checked = -1e12
        if self.interval is None:
            self.interval = REFRESH_SECONDS

    # -- refreshing -----------------------------------------------------------------------
    def refresh(self, *, heartbeat: bool) -> None:
        """Read primary and retired keys; adopt them; optionally report (heartbeat)."""
        with self._lock:
            self.checked = time.monotonic()
            if not self._table_exists():
                return
            try:
                with db.engine.connect() as conn:
                    values = _read_meta(conn, (PRIMARY, RETIRED))
                    self._adopt(_primary(values), _retired(values))
                    if heartbeat:
                        self._report(conn)
                        conn.commit()
            except SQLAlchemyError:
                log.warning("keys: could not read the primary key", exc_info=True)

    def _table_exists(self) -> bool:
        if not self._ready:
            self._ready = inspect(db.engine).has_table("app_meta")
        return self._ready

    def _adopt(self, primary: Primary | None, retired: frozenset[str]) -> None:
        keyring = self.state.keyring
        if primary is not None and primary.kek_id not in keyring.keks:
            keyring = self._reload_key_file(keyring, primary.kek_id)
        keks = {k: v for k, v in keyring.keks.items() if k not in retired}
        active = keyring.active_kek_id
        if primary is not None and primary.kek_id in keks:
            active = primary.kek_id
            self.generation = primary.generation
            self._warned = None
        elif primary is not None and self._warned != primary.kek_id:
            self._warned = primary.kek_id
            log.error(
                "keys: the primary key %r is not configured in this process; it keeps "
                "wrapping under %r. Add the key to EINBLICK_MASTER_KEYS and restart it.",
                primary.kek_id, active)
        if active not in keks:
            raise crypto.KeyConfigError(
                f"The key {active!r} was retired and no other configured key is primary.")
        self.retired = retired
        if keks != keyring.keks or active != keyring.active_kek_id or (
                retired != keyring.retired):
            self.state.keyring = dataclasses.replace(
                keyring, keks=keks, active_kek_id=active, retired=retired)

    def _reload_key_file(self, keyring: crypto.Keyring, wanted: str) -> crypto.Keyring:
        config = self.state.config
        if config.master_keys:
            return keyring
        try:
            loaded = crypto.load_keys(master_keys=None, index_key=None, secret_key=None,
                                      instance_path=config.instance_path, may_generate=False)
        except crypto.KeyConfigError:
            log.warning("keys: could not re-read the key file", exc_info=True)
            return keyring
        if wanted not in loaded.keyring.keks:
            return keyring
        return dataclasses.replace(keyring, keks={**keyring.keks, **loaded.keyring.keks})

    def forget(self) -> None:
        """Delete this process's heartbeat (at exit: an ended process holds up nothing)."""
        from shared.models.keys import AppMeta

        try:
            with self.app.app_context(), db.engine.begin() as conn:
                conn.execute(AppMeta.__table__.delete().where(
                    AppMeta.__table__.c.key == self.process_key()))
        except Exception:  # noqa: BLE001 - at exit, the database may be gone already
            log.debug("keys: could not delete the heartbeat", exc_info=True)

    def _report(self, conn) -> None:
        from shared.models.keys import AppMeta

        keyring = self.state.keyring
        value = json.dumps({
            "host": socket.gethostname(), "pid": os.getpid(),
            "kek": keyring.active_kek_id, "generation": self.generation,
            "holds": sorted(keyring.keks), "seen": time.time(),
            "from_file": not self.state.config.master_keys,
        }).encode()
        key = self.process_key()
        table = AppMeta.__table__
        if conn.execute(update(table).where(table.c.key == key).values(value=value)).rowcount:
            return
        conn.execute(table.insert().values(key=key, value=value))


# -- wiring ------------------------------------------------------------------------------
def start(app: Flask) -> None:
    """At start (in an app context): record the primary if none is, adopt it, drop retired
    keys, report; refresh before requests once the copy is old."""
    sync = KeySync(app)
    app.extensions[EXTENSION] = sync
    if sync.interval is not None:  # not for the many short-lived apps of a test run
        atexit.register(sync.forget)
    if sync._table_exists():
        ensure_primary(app.extensions["einblick"].keyring.active_kek_id)
        forget_stale_processes()
    sync.refresh(heartbeat=True)

    @app.before_request
    def refresh_keys() -> None:
        # Registered before anything in the request touches the database: the heartbeat is
        # written on its own connection while no transaction of this request holds a lock.
        if sync.due():
            sync.refresh(heartbeat=True)


def current_sync() -> KeySync | None:
    return current_app.extensions.get(EXTENSION)


def fresh_keyring() -> crypto.Keyring:
    """The app's keyring, refreshed first if its primary is REFRESH_SECONDS old."""
    state = current_app.extensions["einblick"]
    sync = current_app.extensions.get(EXTENSION)
    if sync is not None and sync.due():
        sync.refresh(heartbeat=False)
    return state.keyring


def ensure_primary(kek_id: str) -> None:
    """Record ``kek_id`` as primary (generation 1) unless a primary is recorded."""
    from shared.models.keys import AppMeta

    try:
        if db.session.get(AppMeta, PRIMARY) is None:
            db.session.add(AppMeta(key=PRIMARY, value=_encode_primary(Primary(kek_id, 1))))
            db.session.commit()
    except IntegrityError:  # another process wrote it first
        db.session.rollback()
    finally:
        db.session.remove()


@event.listens_for(Session, "after_flush")
def _new_data_keys_under_the_primary(session: Session, _context) -> None:
    """A data key wrapped under a key that stopped being primary while this unit of work
    ran is wrapped again under the primary before the transaction commits."""
    from shared.models.keys import DataKey

    fresh = [obj for obj in session.new if isinstance(obj, DataKey)]
    if not fresh or not has_app_context() or EXTENSION not in current_app.extensions:
        return
    primary = _read_primary_for_share(session)
    if primary is None:
        return
    keyring = current_app.extensions["einblick"].keyring
    if primary.kek_id not in keyring.keks:
        return  # logged by the refresh; `keys retire` waits for these data keys
    target = dataclasses.replace(keyring, active_kek_id=primary.kek_id)
    table = DataKey.__table__
    for obj in fresh:
        if obj.kek_id == primary.kek_id:
            continue
        kek_id, wrapped = target.wrap_data_key(obj.plaintext(), data_key_id=obj.id)
        session.connection().execute(
            update(table).where(table.c.id == obj.id).values(kek_id=kek_id, wrapped_key=wrapped))
        from sqlalchemy.orm.attributes import set_committed_value

        set_committed_value(obj, "kek_id", kek_id)
        set_committed_value(obj, "wrapped_key", wrapped)
    sync = current_app.extensions[EXTENSION]
    if sync.generation < primary.generation:
        sync.expire()


# -- reading and writing the facts --------------------------------------------------------
def _read_meta(conn, keys) -> dict[str, bytes]:
    from shared.models.keys import AppMeta

    table = AppMeta.__table__
    return dict(conn.execute(select(table.c.key, table.c.value).where(table.c.key.in_(keys))).all())


def _encode_primary(primary: Primary) -> bytes:
    return json.dumps({"id": primary.kek_id, "generation": primary.generation}).encode()


def _primary(values: dict[str, bytes]) -> Primary | None:
    raw = values.get(PRIMARY)
    if raw is None:
        return None
    data = json.loads(bytes(raw))
    return Primary(data["id"], int(data["generation"]))


def _retired(values: dict[str, bytes]) -> frozenset[str]:
    raw = values.get(RETIRED)
    return frozenset(json.loads(bytes(raw))) if raw is not None else frozenset()


def _read_primary_for_share(session: Session) -> Primary | None:
    from shared.models.keys import AppMeta

    stmt = select(AppMeta.value).where(AppMeta.key == PRIMARY).with_for_update(read=True)
    raw = session.connection().execute(stmt).scalar()
    return _primary({PRIMARY: raw}) if raw is not None else None


def lock_primary(session: Session) -> Primary | None:
    """Take the write lock on the primary row for this transaction (waits for every unit of
    work that is writing new data keys) and return the primary."""
    from shared.models.keys import AppMeta

    session.execute(update(AppMeta).where(AppMeta.key == PRIMARY).values(value=AppMeta.value))
    raw = session.scalar(select(AppMeta.value).where(AppMeta.key == PRIMARY))
    return _primary({PRIMARY: raw}) if raw is not None else None


def read_primary() -> Primary | None:
    return _primary(_read_meta(db.session.connection(), (PRIMARY,)))


def read_retired() -> frozenset[str]:
    return _retired(_read_meta(db.session.connection(), (RETIRED,)))


def processes(now: float | None = None) -> list[ProcessReport]:
    """Every heartbeat younger than FORGET_SECONDS, newest first."""
    from shared.models.keys import AppMeta

    now = time.time() if now is None else now
    reports = []
    rows = db.session.execute(
        select(AppMeta.key, AppMeta.value).where(AppMeta.key.startswith(PROCESS_PREFIX))).all()
    for key, raw in rows:
        try:
            data = json.loads(bytes(raw))
            report = ProcessReport(key, data["host"], int(data["pid"]), data["kek"],
                                   int(data["generation"]), tuple(data["holds"]),
                                   float(data["seen"]), bool(data.get("from_file")))
        except (ValueError, KeyError, TypeError):
            continue
        if report.age(now) < FORGET_SECONDS:
            reports.append(report)
    return sorted(reports, key=lambda r: -r.seen)


def live_processes(now: float | None = None) -> list[ProcessReport]:
    now = time.time() if now is None else now
    return [p for p in processes(now) if p.age(now) < LIVE_SECONDS]


def forget_stale_processes() -> None:
    from shared.models.keys import AppMeta

    now = time.time()
    keep = {p.key for p in processes(now)}
    try:
        stale = [key for key in db.session.scalars(
            select(AppMeta.key).where(AppMeta.key.startswith(PROCESS_PREFIX))) if key not in keep]
        if stale:
            db.session.execute(AppMeta.__table__.delete().where(AppMeta.key.in_(stale)))
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("keys: could not delete old heartbeats", exc_info=True)
    finally:
        db.session.remove()


def data_keys_by_kek() -> dict[str, int]:
    from shared.models.keys import DataKey

    rows = db.session.execute(
        select(DataKey.kek_id, func.count()).group_by(DataKey.kek_id)).all()
    return {kek_id: count for kek_id, count in rows}


# -- the two phases -----------------------------------------------------------------------
class Refused(Exception):
    """A phase cannot run now; the message says why and what to do."""

    def __init__(self, message: str, *, processes_only: bool = False) -> None:
        super().__init__(message)
        self.processes_only = processes_only  # waiting may help: processes switch alone


def make_primary(kek_id: str) -> Primary:
    """Phase 1, first half: record ``kek_id`` as primary with the next generation."""
    from shared.models.keys import AppMeta

    sync = current_sync()
    keyring = current_app.extensions["einblick"].keyring
    if kek_id in read_retired():
        raise Refused(f"The key {kek_id!r} was retired; it cannot become primary again.")
    if kek_id not in keyring.keks:
        raise Refused(f"The key {kek_id!r} is not configured in this process.")
    ensure_primary(keyring.active_kek_id)
    try:
        current = lock_primary(db.session)
        if current is not None and current.kek_id == kek_id:
            db.session.rollback()
            return current
        new = Primary(kek_id, (current.generation if current else 0) + 1)
        row = db.session.get(AppMeta, PRIMARY)
        row.value = _encode_primary(new)
        db.session.commit()
    finally:
        db.session.remove()
    if sync is not None:
        sync.refresh(heartbeat=True)
    return new


def rewrap_all(batch: int = 500) -> tuple[int, int]:
    """Phase 1, second half: wrap every data key not under the primary under it.
    Returns (re-wrapped, left under another key because this process lacks it)."""
    from shared.models.base import utcnow
    from shared.models.keys import DataKey

    keyring = fresh_keyring()
    primary = read_primary()
    db.session.remove()
    target_id = primary.kek_id if primary else keyring.active_kek_id
    if target_id not in keyring.keks:
        raise Refused(f"The primary key {target_id!r} is not configured in this process.")
    target = dataclasses.replace(keyring, active_kek_id=target_id)
    table = DataKey.__table__
    changed = skipped = 0
    last_id = None
    while True:
        stmt = (select(table.c.id, table.c.kek_id, table.c.wrapped_key)
                .where(table.c.kek_id != target_id).order_by(table.c.id).limit(batch))
        if last_id is not None:
            stmt = stmt.where(table.c.id > last_id)
        rows = db.session.execute(stmt).all()
        if not rows:
            break
        for key_id, kek_id, wrapped in rows:
            if kek_id not in keyring.keks:
                skipped += 1
                continue
            plaintext = keyring.unwrap_data_key(kek_id=kek_id, wrapped=wrapped,
                                                data_key_id=key_id)
            new_kek, new_wrapped = target.wrap_data_key(plaintext, data_key_id=key_id)
            # Only if still wrapped as read: a data key erased meanwhile stays erased.
            changed += db.session.execute(
                update(table).where(table.c.id == key_id, table.c.kek_id == kek_id)
                .values(kek_id=new_kek, wrapped_key=new_wrapped,
                        rewrapped_at=utcnow())).rowcount
        last_id = rows[-1].id
        db.session.commit()
    db.session.remove()
    return changed, skipped


def retire_check() -> tuple[Primary, list[str], bool]:
    """Why phase 2 cannot run now (empty list: it can), the primary, and whether only
    processes that have not switched yet stand in the way."""
    primary = read_primary()
    if primary is None:
        raise Refused("No primary key is recorded yet; start the app once (flask db upgrade).")
    reasons = []
    behind = [p for p in live_processes()
              if p.kek_id != primary.kek_id or p.generation < primary.generation]
    for p in behind:
        reasons.append(
            f"process {p.pid} on {p.host} still uses key {p.kek_id!r} (generation "
            f"{p.generation}, reported {int(p.age(time.time()))} s ago)"
            + ("" if primary.kek_id in p.holds or p.from_file else
               f"; it does not have {primary.kek_id!r}: add it to EINBLICK_MASTER_KEYS "
               "there and restart it"))
    left = 0
    for kek_id, count in sorted(data_keys_by_kek().items()):
        if kek_id != primary.kek_id:
            left += count
            reasons.append(f"{count} data keys are still wrapped under {kek_id!r}: "
                           "run `flask keys rewrap`")
    return primary, reasons, bool(behind) and not left


def retire() -> list[str]:
    """Phase 2: retire every key but the primary; returns the ids newly retired.
    Raises Refused with every reason while a process or a data key still uses another."""
    from shared.models.keys import AppMeta

    sync = current_sync()
    if sync is not None:
        sync.refresh(heartbeat=True)
    try:
        primary, reasons, processes_only = retire_check()
        if reasons:
            raise Refused("Not retired: " + "; ".join(reasons) + ".",
                          processes_only=processes_only)
        # Holding the primary row's lock, no unit of work can be writing a data key now:
        # check again under it, then record.
        locked = lock_primary(db.session)
        if locked != primary:
            raise Refused("The primary key changed meanwhile; run `flask keys retire` again.")
        left = {k: n for k, n in data_keys_by_kek().items() if k != primary.kek_id}
        if left:
            raise Refused("Not retired: data keys were written under another key meanwhile; "
                          "run `flask keys rewrap`, then retire again.")
        keyring = current_app.extensions["einblick"].keyring
        already = read_retired()
        newly = sorted(k for k in keyring.keks if k != primary.kek_id and k not in already)
        row = db.session.get(AppMeta, RETIRED)
        value = json.dumps(sorted(already | set(newly))).encode()
        if row is None:
            db.session.add(AppMeta(key=RETIRED, value=value))
        else:
            row.value = value
        db.session.commit()
    finally:
        db.session.rollback()
        db.session.remove()
    if sync is not None:
        sync.refresh(heartbeat=True)
    return newly
