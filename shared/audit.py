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
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import erasure_journal
from shared.extensions import db
from shared.models.audit import AccessEvent
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
PURPOSES = (OPEN_FILE, FIND, BOOKING_LISTS, BOOKING_DECISION, CASE_WORK, CONSENT_WORK,
            CORRECTION_WORK, ERASURE_WORK, REVIEW, ACCOUNT_RECOVERY)

_PENDING = "einblick.pending-access"
_PURPOSE = "einblick.access-purpose"


def event_hash(event: AccessEvent) -> bytes:
    return _mac(client_id=event.client_id, seq=event.seq, staff_member_id=event.staff_member_id,
                role=event.role, category=event.category, action=event.action,
                grant_id=event.grant_id, created_at=event.created_at, purpose=event.purpose,
                prev_hash=event.prev_hash)


def _mac(*, client_id, seq, staff_member_id, role, category, action, grant_id, created_at,
         purpose, prev_hash) -> bytes:
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
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    # Keyed (HMAC under a key derived from the index key): someone who can write to the
    # database but has no key cannot recompute a chain after changing it.
    return hmac.new(_chain_key(), prev_hash + payload, hashlib.sha256).digest()


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
    clients = db.session.scalars(select(AccessEvent.client_id).distinct()).all()
    return [broken for c in clients if (broken := verify_chain(c)) is not None]


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


def write_anchor(*, force: bool = False) -> int:
    """Record every client's chain head; returns how many chains were anchored. Refuses
    while the log does not match the previous anchor, so a scheduled run cannot launder a
    truncated chain (``force`` only after a deliberate restore, which keeps the old file)."""
    import os

    if not force and _anchor_path().exists():
        broken = verify_anchor()
        if broken:
            raise AnchorRefused(broken)

    heads = select(AccessEvent.client_id, func.max(AccessEvent.seq).label("seq")) \
        .group_by(AccessEvent.client_id).subquery()
    rows = db.session.execute(
        select(AccessEvent.client_id, AccessEvent.seq, AccessEvent.hash).join(
            heads, and_(AccessEvent.client_id == heads.c.client_id,
                        AccessEvent.seq == heads.c.seq))).all()
    body = json.dumps({"at": utcnow().isoformat(),
                       "heads": {str(c): [seq, h.hex()] for c, seq, h in rows}},
                      sort_keys=True, separators=(",", ":")).encode()
    path = _anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(json.dumps({"body": body.decode(), "mac": _anchor_mac(body)}).encode())
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    return len(rows)


def verify_anchor() -> list[BrokenLink]:
    """Chains that lost events (or whose anchored event changed) since the last anchor.
    Clients in the erasure journal are gone on purpose."""
    path = _anchor_path()
    if not path.exists():
        return []
    stored = json.loads(path.read_text())
    body = stored["body"].encode()
    if not hmac.compare_digest(stored["mac"], _anchor_mac(body)):
        return [BrokenLink(uuid.UUID(int=0), 0, "the anchor file was changed")]
    from shared.models.clients import Client

    broken = []
    for client, (seq, digest) in json.loads(body)["heads"].items():
        client_id = uuid.UUID(client)
        event = db.session.scalar(select(AccessEvent).where(AccessEvent.client_id == client_id)
                                  .where(AccessEvent.seq == seq))
        if event is None:
            # Gone on purpose only if the client is gone and was erased (the journal is
            # written before an erasure starts, so read it now, not before the loop).
            if db.session.get(Client, client_id) is None and \
                    client_id in erasure_journal.erased_clients():
                continue
            broken.append(BrokenLink(client_id, seq, "events were removed since the anchor"))
        elif event.hash.hex() != digest:
            broken.append(BrokenLink(client_id, seq, "the anchored event was changed"))
    return broken
