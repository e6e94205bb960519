"""Benchmark: the export of a client with 1,000 bookings, 200 documents of 1 MB and 5,000
access events. Budget (issue 7): under 10 s and under 200 MB of memory.

    make bench
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared import crypto  # noqa: E402
from shared.app import create_app  # noqa: E402
from shared.cli import upgrade_database  # noqa: E402
from shared.config import Config  # noqa: E402
from shared.extensions import db  # noqa: E402
from tests.conftest import create_postgres_database, drop_postgres_database  # noqa: E402


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="einblick-bench-"))
    # A database of its own on a PostgreSQL server (dropped afterwards), never the one
    # DATABASE_URL names: that may be the test suite's or a real one.
    server_url = os.environ.get("DATABASE_URL", "")
    database_url = (create_postgres_database(server_url) if server_url.startswith("postgres")
                    else f"sqlite:///{workdir / 'bench.sqlite3'}")
    try:
        return _run(workdir, database_url)
    finally:
        if server_url.startswith("postgres"):
            drop_postgres_database(database_url)


def _run(workdir: Path, database_url: str) -> int:
    config = Config(env="test", instance_path=str(workdir), database_url=database_url,
                    master_keys="b:" + crypto.b64encode(b"\x05" * 32),
                    index_key=crypto.b64encode(b"\x06" * 32),
                    secret_key="bench-only-not-a-secret")  # noqa: S106
    app = create_app(config)
    with app.app_context():
        upgrade_database()
        account_id = seed()
    from shared.services import export

    with app.test_request_context("/"):
        started = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        size = 0
        for chunk in export.stream(account_id):
            size += len(chunk)
        elapsed = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"export: {size / 1e6:.1f} MB ZIP in {elapsed:.2f} s; "
          f"peak RSS {peak_mb:.0f} MB (before export {before / 1024:.0f} MB)")
    ok = elapsed < 10 and peak_mb < 200
    print("within budget (10 s, 200 MB)" if ok else "OVER BUDGET (10 s, 200 MB)")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()  # before its database is dropped
    return 0 if ok else 1


def seed():
    """One client with the issue's volumes, written in batches."""
    from sqlalchemy import insert

    from shared import audit
    from shared.models import (
        Account,
        Booking,
        Client,
        DataKey,
        Document,
        Service,
        StaffMember,
    )
    from shared.models.audit import AccessEvent
    from shared.models.base import utcnow
    from shared.services import staff

    member, _ = staff.create_staff(email="bench@example.org", role="caseworker",
                                   name="B. Bench", invite=False)
    data_key = DataKey.generate()
    account = Account(kind="client", data_key=data_key, locale="de")
    account.email = "client@example.org"
    client = Client(data_key=data_key, account=account)
    client.full_name = "Bench Client"
    service = Service(name="Beratung", duration_minutes=45)
    db.session.add_all([data_key, account, client, service])
    db.session.commit()
    start = utcnow() - timedelta(days=2000)
    for i in range(1000):
        booking = Booking(client_id=client.id, data_key=data_key, service_id=service.id,
                          staff_member_id=member.id, status="confirmed",
                          start_at=start + timedelta(hours=i),
                          end_at=start + timedelta(hours=i, minutes=45))
        booking.note = f"Notiz {i}"
        db.session.add(booking)
    db.session.commit()
    client_id, account_id, key_id, member_id = client.id, account.id, data_key.id, member.id
    payload = os.urandom(1024 * 1024)
    for i in range(200):
        data_key = db.session.get(DataKey, key_id)
        document = Document(client_id=client_id, data_key=data_key, category="other",
                            content_type="application/pdf", size=len(payload),
                            uploaded_by_id=member_id, visible_to_client=True)
        document.filename = f"dokument-{i}.pdf"
        document.content = payload
        db.session.add(document)
        if i % 20 == 19:
            db.session.commit()
            db.session.expunge_all()
    db.session.commit()
    member = db.session.get(StaffMember, member_id)
    previous = audit.GENESIS
    rows = []
    for seq in range(1, 5001):
        event = AccessEvent(client_id=client_id, seq=seq, staff_member_id=member.id,
                            role="caseworker", category="bookings", action="view",
                            created_at=utcnow().replace(microsecond=0), prev_hash=previous)
        event.hash = audit.event_hash(event)
        previous = event.hash
        rows.append({c.name: getattr(event, c.key) for c in AccessEvent.__table__.columns
                     if getattr(event, c.key) is not None or c.name == "grant_id"})
    for row in rows:
        row.setdefault("id", __import__("uuid").uuid4())
    db.session.execute(insert(AccessEvent), rows)
    db.session.commit()
    return account_id


if __name__ == "__main__":
    sys.exit(main())
