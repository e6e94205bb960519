"""Backups of the database, and restores that never bring an erased client back.

SQLite: the online backup API gives a consistent copy of a live database. PostgreSQL:
``pg_dump``/``pg_restore`` in the custom format. Keys are not part of a backup. After
every restore the erasure journal (kept outside the database) is applied again.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from shared.extensions import db
from shared.services import erasure


class BackupError(Exception):
    pass


def _sqlite_path() -> str:
    return db.engine.url.database


def _pg_args() -> tuple[list[str], dict[str, str]]:
    url = db.engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    args = ["--host", url.host or "localhost", "--port", str(url.port or 5432),
            "--username", url.username or "postgres", "--dbname", url.database]
    return args, env


def create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if db.engine.dialect.name == "sqlite":
        _sqlite_copy(_sqlite_path(), str(path))
    else:
        args, env = _pg_args()
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(path), *args], env)
    os.chmod(path, 0o600)


def restore(path: Path) -> int:
    """Replace the database with the backup; returns how many clients were erased again."""
    from shared import audit
    from shared.cli import upgrade_database

    restore_database(path)
    # An older backup may predate migrations the journal's erasure relies on.
    erased = upgrade_database() + erasure.apply_journal()
    # The access log is now as old as the backup: anchor that, on purpose, so `flask audit
    # verify` does not report the events after the backup as removed.
    if audit.anchor_exists():
        audit.replace_anchor_after_restore()
    return erased


def restore_database(path: Path) -> None:
    """Only the copy back (the journal is applied by ``restore`` and at every start)."""
    db.session.remove()
    db.engine.dispose()
    if db.engine.dialect.name == "sqlite":
        _sqlite_copy(str(path), _sqlite_path())
    else:
        args, env = _pg_args()
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
              *args, str(path)], env)
    db.engine.dispose()


def _sqlite_copy(source_path: str, target_path: str) -> None:
    """SQLite's online backup: a consistent copy even while others write."""
    source = sqlite3.connect(source_path)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()[:500]}")
