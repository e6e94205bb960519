"""The erasure journal: which clients were erased, and as of when (ids only, no names).

Kept outside the database, so that a restored backup can be corrected: the erasure service
(``shared.services.erasure``) appends before it touches a row and applies the journal again
after a restore, after migrations and at every start; the access log's anchor check
(``shared.audit``) reads it to tell a chain that was erased on purpose from one that was cut.
It knows no tables, so both may use it without the log depending on the erasure service.

The journal only grows. The database remembers how much of it has been applied (a
``Watermark``: the byte offset, and hashes of the journal's first and of its last 4 KiB
before that offset), so a start reads only what was appended since. A backup carries the
watermark of its own time: restored, it replays from there. A journal that is shorter
than the watermark, or whose bytes there differ (replaced, truncated, another file), is
replayed from its beginning.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app

ERASE = "erase"  # erase as of this time (keeping what a duty requires)
SHRED = "shred"  # nothing is kept


def journal_path() -> Path:
    return current_app.extensions["einblick"].config.erasure_journal_path


def journal_append(client_ids: list[uuid.UUID], *, at: datetime, action: str = ERASE) -> None:
    """Append and fsync before any row is touched: an erasure that is in the journal is
    carried out, even if this request dies half-way."""
    path = journal_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"client": str(cid), "at": at.isoformat(), "action": action}) + "\n"
                    for cid in client_ids)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, lines.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def journal_entries() -> list[tuple[uuid.UUID, datetime, str]]:
    path = journal_path()
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            entries.append((uuid.UUID(item["client"]), datetime.fromisoformat(item["at"]),
                            item.get("action", ERASE)))
    return entries


def erased_clients() -> set[uuid.UUID]:
    """Every client the journal names (whatever the action)."""
    return {client_id for client_id, _at, _action in journal_entries()}


# -- what has been applied -------------------------------------------------------------
WINDOW = 4096  # bytes hashed at the journal's start and before the watermark


@dataclass(frozen=True)
class Watermark:
    """How much of the journal a database has applied: every entry before ``offset``."""

    offset: int
    head: str  # SHA-256 of the journal's first min(WINDOW, offset) bytes
    tail: str  # SHA-256 of the (up to) WINDOW bytes before offset

    def dump(self) -> bytes:
        return json.dumps({"offset": self.offset, "head": self.head,
                           "tail": self.tail}).encode()

    @classmethod
    def load(cls, value: bytes | None) -> Watermark | None:
        try:
            item = json.loads(value)
            return cls(int(item["offset"]), str(item["head"]), str(item["tail"]))
        except (TypeError, ValueError, KeyError):
            return None  # unreadable: as if nothing had been applied


@dataclass(frozen=True)
class Tail:
    entries: list[tuple[uuid.UUID, datetime, str]]
    mark: Watermark  # the watermark once these entries are applied
    replaced: bool  # the watermark did not fit this journal: read from its beginning


def _mark_at(fh, offset: int) -> Watermark:
    fh.seek(0)
    head = hashlib.sha256(fh.read(min(WINDOW, offset))).hexdigest()
    start = max(0, offset - WINDOW)
    fh.seek(start)
    tail = hashlib.sha256(fh.read(offset - start)).hexdigest()
    return Watermark(offset, head, tail)


def journal_tail(since: Watermark | None) -> Tail:
    """The entries after ``since`` (all of them if ``since`` does not fit this journal),
    up to the last complete line. Reads at most 2 × WINDOW bytes besides the new entries."""
    path = journal_path()
    if not path.exists():
        return Tail([], since or Watermark(0, _EMPTY, _EMPTY), False)
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        fits = since is not None and since.offset <= size and _mark_at(fh, since.offset) == since
        start = since.offset if fits else 0
        fh.seek(start)
        data = fh.read(size - start)
        data = data[:data.rfind(b"\n") + 1]  # a line being written is read next time
        entries = []
        for line in data.decode().splitlines():
            if line.strip():
                item = json.loads(line)
                entries.append((uuid.UUID(item["client"]), datetime.fromisoformat(item["at"]),
                                item.get("action", ERASE)))
        end = start + len(data)
        mark = since if fits and end == since.offset else _mark_at(fh, end)
    return Tail(entries, mark, replaced=since is not None and since.offset > 0 and not fits)


_EMPTY = hashlib.sha256(b"").hexdigest()
