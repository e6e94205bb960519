"""The access log: who on staff read or changed which categories of a client's data.

One event per staff request and client (a "visit"): ``record_access`` only notes what the
request touched; the commit writes the notes as one batch (constant statements however
many clients a page shows). Events are append-only and hash-chained per client: each
event's HMAC covers its fields and the previous event's hash. A unique (client, sequence
number) makes concurrent writers that saw the same chain head collide; the loser re-reads
the heads and retries, so the chain never forks, on SQLite or with several PostgreSQL
workers. Events hold ids, categories and purposes, never personal data values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import erasure_journal
from shared.extensions import db
from shared.models.audit import AccessChainAnchor, AccessChainChange, AccessEvent
from shared.models.base import current_keyring, new_id, utcnow

GENESIS = bytes(32)
MAX_RETRIES = 20

# Categories (match the data catalogue's) and actions.
BOOKINGS = "bookings"
CONTACT = "contact"
HOUSEHOLD = "household"
DOCUMENTS = "documents"
NOTES = "notes"
CASE_FILE = "case-file"
ACCESS_LOG = "access-log"
VIEW = "view"
CHANGE = "change"
SEARCH = "search"
DOWNLOAD = "download"
BREAK_GLASS = "break-glass"
CONSENTS = "consents"
EXPORT = "export"  # the client (or a guardian) downloaded everything
PURGE = "purge"  # deleted by the retention purge
RESTRICTED = "restricted"  # a restricted file (§ 84 SGB X) opened with a reason
INVITATION = "invitation"  # the client was invited to an own account (household)
INVITATION_WITHDRAWN = "invitation-withdrawn"  # that invitation (and its account) undone
HANDOVER = "handover-confirmed"  # staff met the young person, who holds their account
ACCOUNT = "account"  # the client's own account (its sign-in, not its data)
RECOVERY_STARTED = "recovery-started"  # a recovery of the account, identity checked in person
RECOVERY_CANCELLED = "recovery-cancelled"
NAMED = "named"  # read as a household member named in another client's file
MESSAGES = "messages"  # a conversation with the team (shared/services/messages.py)
# The role of an event written for a guardian's action in the portal (an invitation, its
# withdrawal) rather than for staff: the young person sees those in their log too.
GUARDIAN = "guardian"


# What a staff member was doing when they accessed a client's data, set once per request
# (``set_purpose``) by the staff blueprint. The client reads it as a sentence.
OPEN_FILE = "open-file"
FIND = "search"
BOOKING_LISTS = "booking-lists"
BOOKING_DECISION = "booking-decision"
CASE_WORK = "case-work"
CONSENT_WORK = "consent-work"
CORRECTION_WORK = "correction-work"
ERASURE_WORK = "erasure-work"
REVIEW = "review"
ACCOUNT_RECOVERY = "account-recovery"
MESSAGE_WORK = "message-work"  # the inbox and answering clients' messages
PURPOSES = (OPEN_FILE, FIND, BOOKING_LISTS, BOOKING_DECISION, CASE_WORK, CONSENT_WORK,
            CORRECTION_WORK, ERASURE_WORK, REVIEW, ACCOUNT_RECOVERY, MESSAGE_WORK)

_PENDING = "einblick.pending-access"
_PURPOSE = "einblick.access-purpose"


def event_hash(event: AccessEvent) -> bytes:
    return _mac(client_id=event.client_id, seq=event.seq, staff_member_id=event.staff_member_id,
                role=event.role, category=event.category, action=event.action,
                grant_id=event.grant_id, created_at=event.created_at, purpose=event.purpose,
                prev_hash=event.prev_hash)


_PAYLOAD = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # as json.dumps with these


def _mac(*, client_id, seq, staff_member_id, role, category, action, grant_id, created_at,
         purpose, prev_hash, key: bytes | None = None) -> bytes:
    fields = {
        "client": str(client_id),
        "seq": seq,
        "staff": str(staff_member_id) if staff_member_id else None,
        "role": role,
        "category": category,
        "action": action,
        "grant": str(grant_id) if grant_id else None,
        "at": created_at.isoformat(),
    }
    if purpose is not None:  # events from before 0012 have none and keep their hashes
        fields["purpose"] = purpose
    payload = _PAYLOAD.encode(fields).encode()
    # Keyed (HMAC under a key derived from the index key): someone who can write to the
    # database but has no key cannot recompute a chain after changing it. (``key``: the
    # same key, looked up once by a caller that checks many events.)
    return hmac.digest(key or _chain_key(), prev_hash + payload, "sha256")


def _chain_key() -> bytes:
    return current_keyring().blind_index("access-log-chain", "einblick")


def categories_of(event: AccessEvent) -> list[str]:
    return event.category.split(",")


def actions_of(event: AccessEvent) -> list[str]:
    return event.action.split(",")


@dataclass(frozen=True)
class _Note:
    """One ``record_access`` call, with the (sub)transaction it was made in: a savepoint
    rolled back takes its notes with it."""

    transaction: object
    key: tuple
    category: str
    action: str


def set_purpose(purpose: str | None) -> None:
    """What the current request is for (one of ``PURPOSES``); recorded with its events."""
    db.session.info[_PURPOSE] = purpose


def record_access(
    *, client_id: uuid.UUID, staff_member, category: str, action: str = VIEW,
    grant_id: uuid.UUID | None = None, role: str | None = None,
) -> None:
    """Note an access to the client's data; written when the transaction commits, as one
    event per client and actor however many categories the request touched (one visit).
    ``role`` names who acted when it was no staff member (default "system")."""
    session = db.session()  # the request's Session itself (behind the scoped proxy)
    if not session.in_transaction():
        session.begin()  # so that a rollback right now takes the note with it
    key = (client_id, staff_member.id if staff_member else None,
           staff_member.role if staff_member else (role or "system"), grant_id)
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append(_Note(transaction, key, category, action))


def forget_pending(client_id: uuid.UUID) -> None:
    """The client is being erased: what this transaction noted about them is not written
    (it would start a new chain for someone who is gone)."""
    notes = db.session.info.get(_PENDING, [])
    notes[:] = [note for note in notes if note.key[0] != client_id]


def has_pending() -> bool:
    return bool(db.session.info.get(_PENDING))


def lock_chain(client_id: uuid.UUID) -> None:
    """Hold a client's chain for this transaction (before erasing it): a writer that read
    its head earlier finishes first, one that comes later finds the client gone."""
    _lock_chains(db.session, [client_id])


def _write_pending(session) -> None:
    """Append the transaction's visits to their chains: a constant number of statements
    however many clients (lock, read the heads, one insert), in a savepoint; a writer
    that lost a race for a sequence number re-reads the heads and tries again."""
    notes = session.info.pop(_PENDING, None)
    if not notes:
        return
    pending: dict[tuple, tuple[set[str], set[str]]] = {}
    for note in notes:
        categories, actions = pending.setdefault(note.key, (set(), set()))
        categories.add(note.category)
        actions.add(note.action)
    clients = sorted({key[0] for key in pending}, key=lambda c: c.bytes)
    _lock_chains(session, clients)
    gone = _erased_meanwhile(session, clients)
    if gone:  # their erasure committed while this request ran: nothing left to log
        pending = {key: visit for key, visit in pending.items() if key[0] not in gone}
        clients = [c for c in clients if c not in gone]
        if not pending:
            return
    purpose = session.info.get(_PURPOSE)
    ordered = sorted(pending.items(), key=lambda item: (
        item[0][0].bytes, str(item[0][1]), item[0][2], str(item[0][3])))
    for attempt in range(MAX_RETRIES):
        if attempt:
            time.sleep(random.uniform(0, 0.005 * attempt))  # noqa: S311 - jitter only
        heads = _heads(session, clients)
        at = utcnow()  # to the microsecond: visits of one second keep their order
        rows = []
        for (client_id, staff_id, role, grant_id), (categories, actions) in ordered:
            seq, previous = heads.get(client_id, (0, GENESIS))
            row = {"id": new_id(), "client_id": client_id, "seq": seq + 1,
                   "staff_member_id": staff_id, "role": role,
                   "category": ",".join(sorted(categories)),
                   "action": ",".join(sorted(actions)), "grant_id": grant_id,
                   "created_at": at, "purpose": purpose, "prev_hash": previous}
            row["hash"] = _mac(**{k: v for k, v in row.items() if k != "id"})
            heads[client_id] = (seq + 1, row["hash"])
            rows.append(row)
        try:
            with session.begin_nested():
                session.execute(insert(AccessEvent), rows)
        except IntegrityError:
            continue  # another writer took a sequence number: read the new heads
        return
    raise RuntimeError("could not append to the access log")


def _erased_meanwhile(session, clients: list[uuid.UUID]) -> set[uuid.UUID]:
    """Clients of the batch that no longer exist because they were erased (the erasure
    holds their chain locks, taken above, until it commits). On SQLite the batch first
    takes the write lock, so no erasure can commit between this check and the insert."""
    from shared.models.clients import Client

    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE access_events SET seq = seq WHERE 0 = 1"))
    missing = set(clients) - set(session.scalars(select(Client.id).where(
        Client.id.in_(clients))))
    return missing & erasure_journal.erased_clients() if missing else set()


def _heads(session, clients: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, bytes]]:
    newest = (select(AccessEvent.client_id, func.max(AccessEvent.seq).label("seq"))
              .where(AccessEvent.client_id.in_(clients))
              .group_by(AccessEvent.client_id).subquery())
    rows = session.execute(
        select(AccessEvent.client_id, AccessEvent.seq, AccessEvent.hash).join(
            newest, and_(AccessEvent.client_id == newest.c.client_id,
                         AccessEvent.seq == newest.c.seq)))
    return {client_id: (seq, digest) for client_id, seq, digest in rows}


def _lock_chains(session, clients: list[uuid.UUID]) -> None:
    """On PostgreSQL, hold the clients' chain heads for this transaction, in one order
    for every writer, so writers queue instead of colliding. SQLite serialises writers
    itself; the unique sequence number and the retry above cover the rest."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({int.from_bytes(c.bytes[:8], "big", signed=True) for c in clients})
    session.execute(text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[]))"
                         " WITH ORDINALITY AS t(k, n) ORDER BY n"), {"keys": keys})


@sa_event.listens_for(Session, "before_commit")
def _before_commit(session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the visits belong to the real commit
    _write_pending(session)


@sa_event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session, previous_transaction) -> None:
    """A rolled-back (sub)transaction takes the accesses noted in it (and in the
    savepoints inside it) along: that work did not happen."""
    notes = session.info.get(_PENDING)
    if not notes:
        return

    def inside(transaction) -> bool:
        while transaction is not None:
            if transaction is previous_transaction:
                return True
            transaction = transaction.parent
        return False

    notes[:] = [note for note in notes if not inside(note.transaction)]


@dataclass(frozen=True)
class BrokenLink:
    client_id: uuid.UUID
    seq: int
    reason: str


def verify_chain(client_id: uuid.UUID) -> BrokenLink | None:
    """The first broken link of a client's chain, or None if it is intact."""
    previous = GENESIS
    expected_seq = 1
    for event in db.session.scalars(
        select(AccessEvent).where(AccessEvent.client_id == client_id).order_by(AccessEvent.seq)
    ):
        if event.seq != expected_seq:
            return BrokenLink(client_id, expected_seq, "missing event")
        if event.prev_hash != previous:
            return BrokenLink(client_id, event.seq, "previous hash does not match")
        if event_hash(event) != event.hash:
            return BrokenLink(client_id, event.seq, "event was changed")
        previous = event.hash
        expected_seq += 1
    return None


def verify_all() -> list[BrokenLink]:
    """Every client's chain from its first event (the first break of each)."""
    return _verify_everything({})[0]


def events_for(client_id: uuid.UUID) -> list[AccessEvent]:
    return list(
        db.session.scalars(
            select(AccessEvent)
            .where(AccessEvent.client_id == client_id)
            .order_by(AccessEvent.seq.desc())
        )
    )


# -- anchor: the chain heads outside the database -------------------------------------------
# A hash chain shows changed or removed events in the middle, but not removed *newest*
# events: the shortened chain is still a valid chain. The anchor file (written by
# `flask audit anchor`, e.g. hourly, onto storage the database's users cannot write)
# remembers every client's head; `flask audit verify` then notices a chain that is
# shorter than it was, or whose anchored event changed. Ids and MACs only.
#
# Incremental: the file is a list of records, one JSON line each, every record MACed and
# naming the MAC of the one before. A full record holds every chain's head; each hourly
# run appends a record with only the chains that changed since the last one (and those
# gone with an erasure), so the heads are the full record updated by what follows.
# Triggers on access_events mark each chain an insert, update or delete touches
# (access_chain_changes), and access_chain_anchors keeps each chain's anchored head in
# the database: a run reads the marked chains from their anchored heads on, whatever
# the number of clients. The database remembers the last record's number and MAC
# (app_meta), so a database restored behind the anchor's back, or another file, shows.
# `--full` (weekly) re-reads every chain from its start against every record of the
# file: it also finds what someone with database access hid from the marks.
ANCHOR_STATE = "access-log-anchor"
BATCH = 500
NOBODY = uuid.UUID(int=0)  # a problem of the anchor itself, not of one chain
_EVENT_COLUMNS = (AccessEvent.client_id, AccessEvent.seq, AccessEvent.staff_member_id,
                  AccessEvent.role, AccessEvent.category, AccessEvent.action,
                  AccessEvent.grant_id, AccessEvent.created_at, AccessEvent.purpose,
                  AccessEvent.prev_hash, AccessEvent.hash)


def _anchor_path():
    from flask import current_app

    return current_app.extensions["einblick"].config.audit_anchor_path


def _anchor_mac(body: bytes) -> str:
    return hmac.new(_chain_key(), b"anchor:" + body, hashlib.sha256).hexdigest()


def anchor_exists() -> bool:
    return _anchor_path().exists()


def replace_anchor_after_restore() -> None:
    """After a deliberate restore: keep the old anchor beside the new one (for whoever
    investigates later) and anchor the restored log."""
    path = _anchor_path()
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    path.replace(path.with_name(f"{path.name}.before-restore-{stamp}"))
    write_anchor(force=True)


class AnchorRefused(Exception):
    """A chain lost events since the last anchor: re-anchoring would hide it."""

    def __init__(self, broken: list[BrokenLink]) -> None:
        super().__init__(broken[0].reason)
        self.broken = broken


class AnchorBusy(Exception):
    """Another anchor run wrote its record first; this one wrote nothing."""


@dataclass(frozen=True)
class _Record:
    number: int
    prev: str  # the MAC of the record before it ("" for a file's first record)
    mac: str
    full: bool
    heads: dict  # client id (text) -> [seq, hash (hex)]
    erased: list  # client ids (text) whose chains went with an erasure


class _FileChanged(Exception):
    pass


FILE_CHANGED = "the anchor file was changed"
MISSING = "the anchor file is missing"


# The end of a record's body (keys sorted): read without parsing the heads before it.
_BODY_END = re.compile(rb',"n":(\d+),"prev":"([0-9a-f]*)"\}\Z')


def _parse(line: bytes, *, heads: bool = True) -> _Record:
    try:
        stored = json.loads(line)
        body = stored["body"].encode()
        if not hmac.compare_digest(stored["mac"], _anchor_mac(body)):
            raise _FileChanged
        if not heads and (end := _BODY_END.search(body[-200:])):
            # The last record of a file after a full anchor holds every head: the hourly
            # run needs only its number, its MAC and the one before.
            return _Record(int(end[1]), end[2].decode(), stored["mac"], False, {}, [])
        content = json.loads(body)
        # A file from before incremental anchors: one record with every head.
        return _Record(content.get("n", 0), content.get("prev", ""), stored["mac"],
                       content.get("full", True), content["heads"], content.get("erased", []))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _FileChanged from exc


def _last_record(path) -> _Record:
    """The file's last record, read from its end (not the whole file)."""
    with open(path, "rb") as stored:
        position = stored.seek(0, 2)
        tail = b""
        while position > 0:
            step = min(1 << 16, position)
            position -= step
            stored.seek(position)
            tail = stored.read(step) + tail
            line = tail.rstrip(b"\n")
            if b"\n" in line:
                return _parse(line.rsplit(b"\n", 1)[1], heads=False)
        return _parse(tail.rstrip(b"\n"), heads=False)


def _all_records(path) -> list[_Record]:
    """Every record, checked: each MAC, and each naming the one before it."""
    records = [_parse(line) for line in path.read_bytes().splitlines() if line.strip()]
    if not records or not records[0].full:
        raise _FileChanged
    for before, record in zip(records, records[1:], strict=False):
        if record.number != before.number + 1 or record.prev != before.mac:
            raise _FileChanged
    return records


def _anchored_heads(records: list[_Record]) -> dict[uuid.UUID, tuple[int, bytes]]:
    heads: dict[uuid.UUID, tuple[int, bytes]] = {}
    for record in records:
        if record.full:
            heads.clear()
        for client, (seq, digest) in record.heads.items():
            heads[uuid.UUID(client)] = (seq, bytes.fromhex(digest))
        for client in record.erased:
            heads.pop(uuid.UUID(client), None)
    return heads


def _state() -> dict | None:
    """The last anchor record the database knows of: {"n": number, "mac": hex}."""
    from shared.models.keys import AppMeta

    value = db.session.scalar(select(AppMeta.value).where(AppMeta.key == ANCHOR_STATE))
    return json.loads(value) if value is not None else None


def _agrees(state: dict, last: _Record) -> bool:
    """The file ends with the database's last record; or with the record that run built
    on (it committed but could not write the file: the next anchor is a full one)."""
    return last.mac in (state["mac"], state.get("after"))


def _unfinished(state: dict | None, last: _Record | None) -> bool:
    return state is not None and last is not None and last.mac != state["mac"] and \
        last.mac == state.get("after")


def _triggers_in_place() -> bool:
    if db.session.get_bind().dialect.name == "postgresql":
        found = db.session.scalar(text(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'access_events'::regclass"
            " AND tgname = 'access_events_touched' AND tgenabled <> 'D'"))
        return found == 1
    found = db.session.scalar(text(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name ="
        " 'access_events' AND name IN ('access_events_inserted', 'access_events_updated',"
        " 'access_events_deleted')"))
    return found == 3


@dataclass
class Check:
    """What a verify (or the verify before an anchor) looked at, and what it found."""

    full: bool
    broken: list[BrokenLink]
    chains: int = 0  # chains read
    events: int = 0  # events read
    anchored: bool = False  # compared against an anchor
    heads: dict | None = None  # chain -> (seq, hash) or None (gone), for the anchor
    marks: list | None = None  # (chain, version) read before the chains


def _row_hash(row, key: bytes) -> bytes:
    return _mac(client_id=row.client_id, seq=row.seq, staff_member_id=row.staff_member_id,
                role=row.role, category=row.category, action=row.action,
                grant_id=row.grant_id, created_at=row.created_at, purpose=row.purpose,
                prev_hash=row.prev_hash, key=key)


def _walk(client_id, rows, *, base: int, anchored: tuple[int, bytes] | None):
    """Check a chain's events from ``base`` on (0: from its first event, which follows
    GENESIS; else event ``base`` is taken as it is and what follows must link to it).
    Returns the first break (or None) and the newest event's (seq, hash)."""
    expected = max(base, 1)
    previous = GENESIS if base == 0 else None
    head = None
    key = _chain_key()
    for row in rows:
        if row.seq != expected:
            return BrokenLink(client_id, expected, "missing event"), head
        if previous is not None and row.prev_hash != previous:
            return BrokenLink(client_id, row.seq, "previous hash does not match"), head
        if _row_hash(row, key) != row.hash:
            return BrokenLink(client_id, row.seq, "event was changed"), head
        if anchored is not None and row.seq == anchored[0] and row.hash != anchored[1]:
            return BrokenLink(client_id, row.seq, "the anchored event was changed"), head
        previous, head, expected = row.hash, (row.seq, row.hash), expected + 1
    return None, head


def _removed(shorter: dict[uuid.UUID, int]) -> list[BrokenLink]:
    """Chains that end before their anchored event: gone on purpose only if the client is
    gone and was erased (the journal is written before an erasure starts, so it is read
    after the chains, not before)."""
    if not shorter:
        return []
    from shared.models.clients import Client

    clients = list(shorter)
    present = set()
    for start in range(0, len(clients), BATCH):
        present |= set(db.session.scalars(select(Client.id).where(
            Client.id.in_(clients[start:start + BATCH]))))
    erased = erasure_journal.erased_clients()
    return [BrokenLink(client, shorter[client], "events were removed since the anchor")
            for client in sorted(shorter, key=str)
            if client in present or client not in erased]


def _verify_everything(anchored: dict[uuid.UUID, tuple[int, bytes]]) -> tuple:
    """Every chain from its start, in one pass over the log, each anchored event compared
    on the way; returns the breaks, the heads and how many chains and events were read."""
    broken, heads, events = [], {}, 0
    current, rows = None, []

    def finish() -> None:
        found, head = _walk(current, rows, base=0, anchored=anchored.get(current))
        if found is not None:
            broken.append(found)
        heads[current] = head

    stream = db.session.execute(select(*_EVENT_COLUMNS)
                                .order_by(AccessEvent.client_id, AccessEvent.seq)
                                .execution_options(yield_per=2000))
    for row in stream:
        events += 1
        if row.client_id != current:
            if current is not None:
                finish()
            current, rows = row.client_id, []
        rows.append(row)
    if current is not None:
        finish()
    broken_chains = {link.client_id for link in broken}
    shorter = {client: seq for client, (seq, _digest) in anchored.items()
               if client not in broken_chains
               and (heads.get(client) is None or heads[client][0] < seq)}
    broken += _removed(shorter)
    return broken, heads, len(heads), events


def _marks() -> list[tuple[uuid.UUID, int, int]]:
    return db.session.execute(select(AccessChainChange.chain_id, AccessChainChange.low_seq,
                                     AccessChainChange.version)).all()


def _verify_changed(marks) -> Check:
    """The marked chains, each from its anchored head (or from the lowest event touched,
    if lower; from its start if it was never anchored): a constant number of statements
    per BATCH chains, whatever the number of clients."""
    check = Check(full=False, broken=[], anchored=True, heads={},
                  marks=[(chain, version) for chain, _low, version in marks])
    lows = {chain: low for chain, low, _version in marks}
    chains = sorted(lows, key=lambda c: c.bytes)
    shorter: dict[uuid.UUID, int] = {}
    for start in range(0, len(chains), BATCH):
        batch = chains[start:start + BATCH]
        anchors = {chain: (seq, digest) for chain, seq, digest in db.session.execute(
            select(AccessChainAnchor.chain_id, AccessChainAnchor.seq, AccessChainAnchor.hash)
            .where(AccessChainAnchor.chain_id.in_(batch)))}
        # From the anchored event (or the one before the lowest touched, if lower); a
        # chain never anchored from its start. Each a range of the (client, seq) index.
        bases = {chain: min(anchors[chain][0], lows[chain] - 1) if chain in anchors else 0
                 for chain in batch}
        rows: dict[uuid.UUID, list] = {}
        for row in db.session.execute(
                select(*_EVENT_COLUMNS)
                .where(or_(*(and_(AccessEvent.client_id == chain, AccessEvent.seq >= bases[chain])
                             for chain in batch)))
                .order_by(AccessEvent.client_id, AccessEvent.seq)):
            rows.setdefault(row.client_id, []).append(row)
        for chain in batch:
            anchored = anchors.get(chain)
            found, head = _walk(chain, rows.get(chain, []), base=bases[chain],
                                anchored=anchored)
            check.events += len(rows.get(chain, []))
            if found is not None:
                check.broken.append(found)
            elif anchored is not None and (head is None or head[0] < anchored[0]):
                shorter[chain] = anchored[0]
            check.heads[chain] = head
        check.chains += len(batch)
    check.broken += _removed(shorter)
    return check


def verify(*, full: bool = False) -> Check:
    """Check the access log against the anchor: by default only what changed since the
    last anchor; ``full`` (or before any anchor of the database) every chain from its
    start and every record of the anchor file."""
    path = _anchor_path()
    state = _state()
    if not full and state is not None:
        if not path.exists():
            return Check(False, [BrokenLink(NOBODY, 0, MISSING)])
        try:
            last = _last_record(path)
        except _FileChanged:
            return Check(False, [BrokenLink(NOBODY, 0, FILE_CHANGED)])
        if not _agrees(state, last):
            return Check(False, [BrokenLink(NOBODY, 0, _DISAGREE)])
        if not _triggers_in_place():
            return Check(False, [BrokenLink(NOBODY, 0, "the access log's change triggers "
                                            "are missing or disabled")])
        return _verify_changed(_marks())
    marks = _marks()
    anchored, problems = {}, []
    if path.exists():
        try:
            records = _all_records(path)
        except _FileChanged:
            return Check(True, [BrokenLink(NOBODY, 0, FILE_CHANGED)])
        anchored = _anchored_heads(records)
        if state is not None and not _agrees(state, records[-1]):
            problems.append(BrokenLink(NOBODY, 0, _DISAGREE))
    elif state is not None:
        problems.append(BrokenLink(NOBODY, 0, MISSING))
    broken, heads, chains, events = _verify_everything(anchored)
    return Check(True, problems + broken, chains, events, anchored=path.exists(),
                 heads=heads, marks=[(chain, version) for chain, _low, version in marks])


_DISAGREE = ("the anchor file and the database name different last anchors (a database "
             "restored without `flask backup restore`, or another anchor file)")


def verify_anchor() -> list[BrokenLink]:
    """Chains that lost events (or whose anchored event changed) since the last anchor,
    and breaks in what changed since. Clients in the erasure journal are gone on
    purpose."""
    return verify().broken


def write_anchor(*, force: bool = False, full: bool = False) -> Check:
    """Anchor the chains that changed since the last anchor (every chain if ``full``, or
    if this database was never anchored); returns what was checked. Refuses while the log
    does not match the previous anchor, so a scheduled run cannot launder a truncated
    chain (``force`` only after a deliberate restore, which keeps the old file)."""
    path = _anchor_path()
    state = _state()
    previous = None
    if path.exists() and not force:
        try:
            previous = _last_record(path)
        except _FileChanged:
            pass  # the check below reports it
    # The last run committed, but its record did not reach the file: anchor every chain.
    full = full or force or state is None or _unfinished(state, previous)
    if force:
        check = Check(True, [], marks=[(c, v) for c, _low, v in _marks()])
        check.heads = _all_heads()
        check.chains = len(check.heads)
    else:
        check = verify(full=full)
        if full:  # a lost anchor file: the full check just read every chain, start anew
            check.broken = [link for link in check.broken if link.reason != MISSING]
        if check.broken:
            raise AnchorRefused(check.broken)
    number = max(state["n"] if state else 0, previous.number if previous else 0) + 1
    heads = {chain: head for chain, head in check.heads.items() if head is not None}
    gone = sorted(str(chain) for chain, head in check.heads.items() if head is None)
    body, mac = _record(number, previous.mac if previous else "", full=full, heads=heads,
                        erased=[] if full else gone)
    db.session.commit()  # end the reads: SQLite takes its write lock with the next write
    _claim(state, {"n": number, "mac": mac, "after": previous.mac if previous else ""})
    if full:
        db.session.execute(delete(AccessChainAnchor))
    elif gone:
        db.session.execute(delete(AccessChainAnchor).where(
            AccessChainAnchor.chain_id.in_([uuid.UUID(c) for c in gone])))
    _store_anchors(heads)
    db.session.commit()
    # The database first: if the file cannot be written now, the database is ahead of it
    # (naming the file's last record as the one it followed) and the next run anchors
    # every chain.
    line = json.dumps({"body": body.decode(), "mac": mac}).encode() + b"\n"
    if full:
        _replace_file(path, line)
    else:
        _append_file(path, line)
    # Last (a mark left behind only means its chain is read again next time).
    _unmark(check.marks)
    check.full = full
    return check


def _record(number: int, prev: str, *, full: bool, heads: dict, erased: list) -> tuple:
    """A record's body and its MAC."""
    body = json.dumps({"at": utcnow().isoformat(), "n": number, "prev": prev, "full": full,
                       "heads": {str(c): [seq, h.hex()] for c, (seq, h) in heads.items()},
                       "erased": erased}, sort_keys=True, separators=(",", ":")).encode()
    return body, _anchor_mac(body)


def _all_heads() -> dict[uuid.UUID, tuple[int, bytes]]:
    newest = select(AccessEvent.client_id, func.max(AccessEvent.seq).label("seq")) \
        .group_by(AccessEvent.client_id).subquery()
    rows = db.session.execute(
        select(AccessEvent.client_id, AccessEvent.seq, AccessEvent.hash).join(
            newest, and_(AccessEvent.client_id == newest.c.client_id,
                         AccessEvent.seq == newest.c.seq)))
    return {client: (seq, digest) for client, seq, digest in rows}


def _claim(state: dict | None, new: dict) -> None:
    """Record the new anchor in the database, unless another run did since ``state`` was
    read (its row then stays held until this transaction ends)."""
    from shared.models.keys import AppMeta

    value = json.dumps(new).encode()
    if state is None:
        try:
            with db.session.begin_nested():
                db.session.execute(insert(AppMeta).values(key=ANCHOR_STATE, value=value))
        except IntegrityError:
            db.session.rollback()
            raise AnchorBusy from None
        return
    done = db.session.execute(update(AppMeta).where(AppMeta.key == ANCHOR_STATE)
                              .where(AppMeta.value == json.dumps(state).encode())
                              .values(value=value))
    if done.rowcount != 1:
        db.session.rollback()
        raise AnchorBusy


def _upsert():
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert


def _store_anchors(heads: dict[uuid.UUID, tuple[int, bytes]]) -> None:
    table = AccessChainAnchor.__table__
    statement = _upsert()(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.chain_id],
        set_={"seq": statement.excluded.seq, "hash": statement.excluded.hash})
    rows = [{"chain_id": chain, "seq": seq, "hash": digest}
            for chain, (seq, digest) in heads.items()]
    connection = db.session.connection()
    for start in range(0, len(rows), 5000):
        connection.execute(statement, rows[start:start + 5000])


def _unmark(marks: list[tuple[uuid.UUID, int]]) -> None:
    """Remove the marks this run read, each only if no write touched its chain since
    (that mark stays for the next run). In batches, each its own transaction; on
    PostgreSQL each batch first holds its chains' locks, in the writers' order, so a
    writer and the anchor queue instead of deadlocking."""
    table = AccessChainChange.__table__
    statement = table.delete().where(table.c.chain_id == bindparam("chain")) \
        .where(table.c.version == bindparam("seen"))
    marks = sorted(marks, key=lambda mark: mark[0].bytes)
    for start in range(0, len(marks), BATCH):
        batch = marks[start:start + BATCH]
        _lock_chains(db.session, [chain for chain, _version in batch])
        db.session.connection().execute(
            statement, [{"chain": chain, "seen": version} for chain, version in batch])
        db.session.commit()


def _replace_file(path, line: bytes) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(line)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _append_file(path, line: bytes) -> None:
    import os

    with open(os.open(path, os.O_RDWR | os.O_APPEND), "r+b") as out:
        if out.seek(0, 2):
            out.seek(-1, 2)
            if out.read(1) != b"\n":  # a file written by hand (or a test) may end without
                line = b"\n" + line
        out.write(line)
        out.flush()
        os.fsync(out.fileno())
