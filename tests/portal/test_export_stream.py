"""A long access log (issue 16 item 6): the export streams it, with the same content as the
export built in memory, in memory that does not grow with the history; the access log page
costs the same statements for a short and a long history and pages by "Newer"/"Older"."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from datetime import timedelta

from tests.conftest import submit


def _seed_visits(app, account_id, count: int, *, staff_ids=(), start_seq: int = 0):
    """``count`` access events by the given staff members (system events between), one a
    minute, written in one statement; returns the client id."""
    from sqlalchemy import func, insert, select

    from shared import audit
    from shared.extensions import db
    from shared.models import AccessEvent, Client
    from shared.models.base import utcnow

    kinds = [("bookings", "view", audit.BOOKING_LISTS), ("contact,household", "view",
                                                         audit.OPEN_FILE),
             ("contact", "change", None)]
    with app.app_context():
        client_id = db.session.scalar(select(Client.id).where(Client.account_id == account_id))
        seq0 = db.session.scalar(select(func.max(AccessEvent.seq))
                                 .where(AccessEvent.client_id == client_id)) or 0
        began = utcnow().replace(microsecond=0) - timedelta(days=300)
        rows = []
        for n in range(count):
            category, action, purpose = kinds[n % len(kinds)]
            staff = list(staff_ids) + [None]
            rows.append({"id": uuid.uuid4(), "client_id": client_id, "seq": seq0 + n + 1,
                         "staff_member_id": staff[n % len(staff)], "role": "caseworker",
                         "category": category, "action": action, "purpose": purpose,
                         "grant_id": None,
                         "created_at": began + timedelta(minutes=seq0 + n),
                         "prev_hash": b"\0" * 32, "hash": b"\1" * 32})
        db.session.execute(insert(AccessEvent), rows)
        db.session.commit()
        return client_id


def _staff_ids(app, make_staff, count: int = 2) -> list[uuid.UUID]:
    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import StaffMember

    ids = []
    for n in range(count):
        person = make_staff()
        with app.app_context():
            member = db.session.scalar(select(StaffMember)
                                       .where(StaffMember.account_id == person.account_id))
            member.name = f"Fachkraft {n}"
            db.session.commit()
            ids.append(member.id)
    return ids


def test_a_long_access_log_exports_the_same_content_streamed(app, client, auth, make_client,
                                                             make_staff):
    from shared.extensions import db
    from shared.models import Account
    from shared.services import export

    person = make_client(full_name="Nina Lang")
    staff_ids = _staff_ids(app, make_staff)
    _seed_visits(app, person.account_id, 5000, staff_ids=staff_ids)
    auth.login(person)
    with app.test_request_context("/"):
        expected = export.build_data(db.session.get(Account, person.account_id))
    response = submit(client, "/my-data/export", {})
    assert response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    data = json.loads(archive.read("data.json"))
    # The same content as the export built in memory (made a moment earlier); that one
    # listed the access log's values in no order, the stream oldest first.
    me = data["subjects"][0]
    times = next(item for item in me["categories"]["access-log"]
                 if item["column"] == "access_events.created_at")["values"]
    assert times == sorted(times)
    assert _unordered(data["subjects"]) == _unordered(expected["subjects"])
    log = me["access_log"]
    assert len(log) >= 5000
    # Newest first: the last seeded was the 5,000th (contact and household data).
    assert [line["category"] for line in log[:3]] == ["contact,household", "bookings",
                                                      "contact"]
    assert {line["staff"] for line in log} >= {"Fachkraft 0", "Fachkraft 1"}
    values = {item["column"]: item for item in me["categories"]["access-log"]}
    assert len(values["access_events.created_at"]["values"]) == len(log)
    assert len(values["access_events.created_at"]["shown"]) == len(log)
    assert values["access_events.staff_member_id"]["shown"].count("Fachkraft 0") == 1667
    rows = list(csv.reader(io.StringIO(archive.read("me/access-log.csv").decode())))
    assert rows[0] == ["at", "staff", "role", "category", "action", "reason"]
    assert len(rows) == len(log) + 1
    assert rows[1][1] == log[0]["staff"]
    category_rows = list(csv.reader(io.StringIO(
        archive.read("me/data/access-log.csv").decode())))
    assert sum(1 for row in category_rows if row[0] == "access_events.created_at") == len(log)
    index = archive.read("index.html").decode()
    listed = index[index.index('<ul class="access-log">'):]
    assert listed[:listed.index("</ul>")].count("<li>") == len(log)
    manifest = json.loads(archive.read("manifest.json"))["files"]
    import hashlib

    for name, digest in manifest.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest


def _unordered(subjects: list[dict]) -> list[dict]:
    for subject in subjects:
        for item in subject["categories"].get("access-log", []):
            item["values"] = sorted(item["values"], key=repr)
            item["shown"] = sorted(item["shown"])
    return subjects


def _export_peak(app, client, auth, person) -> tuple[int, int]:
    """The export downloaded over HTTP, chunk by chunk as a browser receives it; returns the
    peak of memory allocated meanwhile (tracemalloc) and the ZIP's size."""
    import gc
    import tracemalloc

    from tests.conftest import csrf_token

    page = client.get("/my-data/export")
    token = csrf_token(page.get_data(as_text=True))
    gc.collect()
    tracemalloc.start()
    try:
        response = client.post("/my-data/export", data={"csrf_token": token},
                               buffered=False)
        assert response.mimetype == "application/zip"
        size = 0
        for chunk in response.response:
            size += len(chunk)
        response.close()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, size


def test_the_exports_memory_does_not_grow_with_the_access_log(app, client, auth, make_client,
                                                               make_staff):
    person = make_client(full_name="Nina Lang")
    staff_ids = _staff_ids(app, make_staff)
    _seed_visits(app, person.account_id, 1000, staff_ids=staff_ids)
    auth.login(person)
    _export_peak(app, client, auth, person)  # anything done once per process is done
    few, few_size = _export_peak(app, client, auth, person)
    _seed_visits(app, person.account_id, 4000, staff_ids=staff_ids)
    many, many_size = _export_peak(app, client, auth, person)
    assert many_size > 3 * few_size  # five times the log: a much larger ZIP
    # ... in the same memory, give or take 1 MB (the ZIP of 5,000 visits alone is larger).
    assert many < few + 1024 * 1024, (few, many, many_size)


def test_the_access_log_pages_by_position_at_the_same_cost_for_a_long_history(
        app, client, auth, make_client, make_staff):
    """Who looked at my data: 30 or 300 visits cost the page the same statements (nothing
    counted beyond a bound, nothing skipped); "Older" and "Newer" walk the whole log once,
    without a visit twice or left out."""
    import re

    from tests.conftest import get_counting_statements

    person = make_client(full_name="Nina Lang")
    staff_ids = _staff_ids(app, make_staff, count=1)
    _seed_visits(app, person.account_id, 30, staff_ids=staff_ids)
    auth.login(person)
    client.get("/my-data/access")  # caches warm
    first, few = get_counting_statements(app, client, "/my-data/access")
    assert "30 Besuche" in first.get_data(as_text=True)
    _seed_visits(app, person.account_id, 270, staff_ids=staff_ids)
    first, many = get_counting_statements(app, client, "/my-data/access")
    assert many == few, f"30 visits: {few} statements, 300 visits: {many}"
    page = first.get_data(as_text=True)
    assert "300 Besuche" in page
    assert 'rel="prev"' not in page
    older = re.search(r'rel="next" href="(/my-data/access\?older=[^"]+)"', page).group(1)
    _, deeper = get_counting_statements(app, client, older)
    _seed_visits(app, person.account_id, 3000, staff_ids=staff_ids)
    _, deepest = get_counting_statements(app, client, older)
    assert deepest == deeper
    assert "Mehr als 1.000 Besuche" in client.get("/my-data/access").get_data(as_text=True)

    def times(html: str) -> list[str]:
        return re.findall(r'<span class="kern-body">(\d\d:\d\d): ', html)

    # Walk 330 visits of a fresh history by "Older", then back by "Newer".
    other = make_client(full_name="Ida Kurz")
    _seed_visits(app, other.account_id, 330, staff_ids=staff_ids)
    auth.login(other)
    url, pages, seen = "/my-data/access", [], []
    while url:
        html = client.get(url).get_data(as_text=True)
        pages.append(html)
        seen += times(html)
        found = re.search(r'rel="next" href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(pages) == 14  # 13 full pages of 25 and 5 more
    assert len(seen) == 330
    back = re.search(r'rel="prev" href="([^"]+)"', pages[-1]).group(1).replace("&amp;", "&")
    assert times(client.get(back).get_data(as_text=True)) == times(pages[-2])
    # Newer from the second page: the first page again, without a link to newer ones.
    newest = re.search(r'rel="prev" href="([^"]+)"', pages[1]).group(1).replace("&amp;", "&")
    html = client.get(newest).get_data(as_text=True)
    assert times(html) == times(pages[0])
    assert 'rel="prev"' not in html
