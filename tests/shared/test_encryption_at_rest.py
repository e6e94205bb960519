"""Canary values written through the real forms never appear in plaintext in the database
files (SQLite file and WAL) or in a pg_dump."""

import re
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared.extensions import db
from tests.conftest import submit


def raw_database_bytes(app) -> bytes:
    with app.app_context():
        url = make_url(str(db.engine.url))
        if url.get_backend_name() == "sqlite":
            path = Path(url.database)
            return b"".join(
                p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
                if p.exists()
            )
    dump = subprocess.run(
        ["pg_dump", "--no-owner", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
         "-U", url.username or "postgres", url.database],
        check=True, capture_output=True,
    )
    return dump.stdout


def test_canaries_from_the_forms_are_not_stored_in_plaintext(app, client, outbox, totp_clock,
                                                             runner):
    tag = uuid.uuid4().hex[:10]
    email = f"canary.{tag}@example.org"
    password = f"canary-password-{tag}-meadow"
    name = f"Kanarienvogel Zwitscher{tag}"
    staff_name = f"Stabsmitglied{tag}"

    submit(client, "/register", {"email": email})
    submit(client, outbox.link(email, "/confirm/"), {"password": password, "submit": "1"})
    submit(client, "/account", {"full_name": name})
    page = client.get("/account/security/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)</code>', page).group(1)
    codes_page = submit(client, "/account/security/totp", {"code": totp_clock.code(secret)})
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", codes_page.get_data(as_text=True))
    assert len(codes) == 10
    assert runner.invoke(args=["staff", "create", "--email", f"staff.{tag}@example.org",
                               "--role", "caseworker", "--name", staff_name]).exit_code == 0
    # The values really were stored: the account page shows them back.
    shown = client.get("/account").get_data(as_text=True)
    assert name in shown
    assert email in shown

    raw = raw_database_bytes(app)
    assert len(raw) > 10_000
    assert b"caseworker" in raw  # control: the scan sees plaintext columns (the role)
    canaries = [email, email.lower(), tag, password, name, "Zwitscher", secret, staff_name,
                f"staff.{tag}", *codes, *(c.replace("-", "") for c in codes)]
    for canary in canaries:
        assert canary.encode() not in raw, f"{canary!r} found in plaintext"


@pytest.mark.skipif("postgres" in __import__("os").environ.get("DATABASE_URL", ""),
                    reason="SQLite only")
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(app):
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
