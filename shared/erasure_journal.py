"""The erasure journal: which clients were erased, and as of when (ids only, no names).

Kept outside the database, so that a restored backup can be corrected: the erasure service
(``shared.services.erasure``) appends before it touches a row and applies the journal again
after a restore, after migrations and at every start; the access log's anchor check
(``shared.audit``) reads it to tell a chain that was erased on purpose from one that was cut.
It knows no tables, so both may use it without the log depending on the erasure service.
"""

from __future__ import annotations

import json
import os
import uuid
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
