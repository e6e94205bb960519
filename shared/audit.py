"""The access log: who on staff read or changed which category of a client's data.

Events are append-only and hash-chained per client: each event's HMAC covers its fields
and the previous event's hash. A unique (client, sequence number) makes concurrent
writers that saw the same chain head collide; the loser re-reads the head and retries,
so the chain never forks, on SQLite or with several PostgreSQL workers. Events hold ids
and categories, never personal data values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from shared import erasure_journal
from shared.extensions import db
from shared.models.audit import AccessEvent
from shared.models.base import current_keyring, utcnow

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
# The role of an event written for a guardian's action in the portal (an invitation, its
# withdrawal) rather than for staff: the young person sees those in their log too.
GUARDIAN = "guardian"


def event_hash(event: AccessEvent) -> bytes:
    payload = json.dumps(
        {
            "client": str(event.client_id),
            "seq": event.seq,
            "staff": str(event.staff_member_id) if event.staff_member_id else None,
            "role": event.role,
            "category": event.category,
            "action": event.action,
            "grant": str(event.grant_id) if event.grant_id else None,
            "at": event.created_at.isoformat(),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    # Keyed (HMAC under a key derived from the index key): someone who can write to the
    # database but has no key cannot recompute a chain after changing it.
    return hmac.new(_chain_key(), event.prev_hash + payload, hashlib.sha256).digest()


def _chain_key() -> bytes:
    return current_keyring().blind_index("access-log-chain", "einblick")


def record_access(
    *, client_id: uuid.UUID, staff_member, category: str, action: str = VIEW,
    grant_id: uuid.UUID | None = None, role: str | None = None,
) -> AccessEvent:
    """Append an event to the client's chain (in its own savepoint; commits nothing).
    ``role`` names who acted when it was no staff member (default "system")."""
    _lock_chain(client_id)
    for attempt in range(MAX_RETRIES):
        if attempt:
            time.sleep(random.uniform(0, 0.005 * attempt))  # noqa: S311 - jitter only
        head = db.session.scalar(
            select(AccessEvent)
            .where(AccessEvent.client_id == client_id)
            .order_by(AccessEvent.seq.desc())
            .limit(1)
        )
        event = AccessEvent(
            client_id=client_id,
            seq=(head.seq + 1) if head else 1,
            staff_member_id=staff_member.id if staff_member else None,
            role=staff_member.role if staff_member else (role or "system"),
            category=category,
            action=action,
            grant_id=grant_id,
            created_at=utcnow().replace(microsecond=0),
            prev_hash=head.hash if head else GENESIS,
        )
        event.hash = event_hash(event)
        try:
            with db.session.begin_nested():
                db.session.add(event)
        except IntegrityError:
            continue  # another writer took this sequence number: read the new head
        return event
    raise RuntimeError("could not append to the access log")


def _lock_chain(client_id: uuid.UUID) -> None:
    """On PostgreSQL, hold the client's chain head for this transaction, so writers queue
    instead of colliding. SQLite serialises writers itself; the unique sequence number
    and the retry above cover the rest."""
    if db.session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(client_id.bytes[:8], "big", signed=True)
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


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

    from sqlalchemy import and_, func

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
