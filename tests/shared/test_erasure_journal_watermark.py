"""The erasure journal is applied once and remembered: the database keeps a watermark
(how much of the journal it has applied), a start reads only what was appended since, a
restored backup replays from its own older watermark, and a journal that does not continue
what was applied (replaced, truncated) is applied in full. The admins' erasure page and
the retention purge go through restricted files a page at a time."""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, AppMeta, Booking, Client, DataKey
from shared.models.base import utcnow
from shared.services import erasure
from tests.conftest import add_booking, counting_statements, get_counting_statements, submit
from tests.portal.test_erasure import confirm_delete, own_client_id


def journal_of(app):
    return app.extensions["einblick"].config.erasure_journal_path


def pad_journal(app, n: int) -> None:
    """``n`` entries for clients this database never held (as after years of erasures)."""
    with app.app_context():
        erasure.journal_append([uuid.uuid4() for _ in range(n)], at=utcnow())


def test_a_start_applies_nothing_again_once_the_watermark_is_current(app, make_client,
                                                                      monkeypatch):
    from shared.app import create_app, reapply_erasure_journal

    person = make_client(full_name="Wieder Da")
    with app.app_context():
        own = own_client_id(person.account_id)
        erasure.journal_append([own], at=utcnow())  # a request that died half-way
    pad_journal(app, 300)
    restarted = create_app(app.extensions["einblick"].config)
    with restarted.app_context():
        assert db.session.get(Client, own) is None  # carried out at the start
        assert db.session.get(Account, person.account_id) is None
        db.session.remove()
        db.engine.dispose()

    applied = []
    original = erasure._apply_entries
    monkeypatch.setattr(erasure, "_apply_entries",
                        lambda entries: applied.append(len(entries)) or original(entries))
    costs = []
    for more in (0, 3000):  # the same work with 300 entries and with 3,300
        pad_journal(app, more)
        with app.app_context():
            assert erasure.apply_journal() == 0  # the start after the entries came
        applied.clear()
        with app.app_context(), counting_statements(app) as seen:
            reapply_erasure_journal()
            db.session.remove()
        assert len([s for s in seen if "app_meta" in s]) == 1  # the watermark, read once
        costs.append(len(seen))
        again = create_app(app.extensions["einblick"].config)  # a whole start, too
        with again.app_context():
            db.engine.dispose()
        assert applied == []  # nothing read from the journal was applied again
    assert costs[0] == costs[1]


def test_only_the_entries_after_the_watermark_are_applied(app, make_client, monkeypatch):
    first = make_client(full_name="Erste Person")
    second = make_client(full_name="Zweite Person")
    with app.app_context():
        ids = own_client_id(first.account_id), own_client_id(second.account_id)
    pad_journal(app, 50)
    with app.app_context():
        erasure.journal_append([ids[0]], at=utcnow())
        assert erasure.apply_journal() == 1
    applied = []
    original = erasure._apply_entries
    monkeypatch.setattr(erasure, "_apply_entries",
                        lambda entries: applied.append(entries) or original(entries))
    with app.app_context():
        erasure.journal_append([ids[1]], at=utcnow())
        assert erasure.apply_journal() == 1
        assert [client_id for client_id, _at, _action in applied[0]] == [ids[1]]
        assert db.session.get(Client, ids[1]) is None


def test_a_restored_older_backup_replays_the_entries_after_its_own_watermark(
        app, client, auth, runner, make_client, tmp_path):
    from shared.app import create_app
    from shared.services import backup

    early, late, staying = (make_client(full_name=name) for name in
                            ("Frueh Weg", "Spaet Weg", "Bleibt Hier"))
    auth.login(early)
    assert confirm_delete(client).status_code == 302
    with app.app_context():
        erasure.apply_journal()  # a start after it: the watermark covers this erasure
    path = tmp_path / "backup.dump"
    assert runner.invoke(args=["backup", "create", str(path)]).exit_code == 0
    auth.login(late)
    assert confirm_delete(client).status_code == 302
    with app.app_context():
        erasure.apply_journal()  # the live database's watermark is past both
        late_account = late.account_id

    result = runner.invoke(args=["backup", "restore", str(path), "--yes"])
    assert result.exit_code == 0, result.output
    assert "1 clients erased again" in result.output  # the later one, from the watermark
    with app.app_context():
        db.session.remove()
        assert db.session.get(Account, late_account) is None
        assert db.session.get(Account, early.account_id) is None
        assert db.session.get(Account, staying.account_id) is not None

    # A restore made by other means (no journal step) is corrected at the next start.
    with app.app_context():
        backup.restore_database(path)
        assert db.session.get(Account, late_account) is not None
        db.session.remove()
        db.engine.dispose()
    restarted = create_app(app.extensions["einblick"].config)
    with restarted.app_context():
        assert db.session.get(Account, late_account) is None
        assert db.session.get(Account, staying.account_id) is not None
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("how", ["truncated", "replaced"])
def test_a_journal_that_does_not_continue_the_watermark_is_applied_in_full(app, make_client,
                                                                          how):
    person = make_client(full_name="Noch Da")
    with app.app_context():
        own = own_client_id(person.account_id)
    pad_journal(app, 200)
    with app.app_context():
        assert erasure.apply_journal() == 0
        path = journal_of(app)
        length = path.stat().st_size
        # The journal is swapped for another one that names the client before its end.
        path.unlink()
        erasure.journal_append([own], at=utcnow())
        if how == "replaced":  # longer than the old one, so only its bytes tell
            erasure.journal_append([uuid.uuid4() for _ in range(400)], at=utcnow())
            assert path.stat().st_size > length
        assert erasure.apply_journal() == 1
        assert db.session.get(Client, own) is None
        assert erasure.apply_journal() == 0


def test_a_process_that_read_an_older_watermark_does_not_move_it_back(app):
    from shared.erasure_journal import Watermark

    pad_journal(app, 5)
    with app.app_context():
        erasure.apply_journal()
        old = db.session.get(AppMeta, erasure.WATERMARK_KEY).value
    pad_journal(app, 5)
    with app.app_context():
        erasure.apply_journal()
        new = db.session.get(AppMeta, erasure.WATERMARK_KEY).value
        assert Watermark.load(new).offset > Watermark.load(old).offset
        # Slower processes that read the older watermark, or none, finish later.
        for stale in (old, None):
            erasure._store_watermark(stale, Watermark(1, "x", "y"))
            db.session.commit()
            db.session.expire_all()
            assert db.session.get(AppMeta, erasure.WATERMARK_KEY).value == new


@pytest.mark.skipif(not __import__("tests.conftest", fromlist=["x"]).postgres_requested(),
                    reason="advisory lock: PostgreSQL")
def test_workers_starting_together_apply_the_journal_once(app, make_client, monkeypatch):
    """Several workers start at once: one applies the new entries, the others wait for
    it and then find the watermark current."""
    people = [make_client(full_name=f"Zugleich {i}") for i in range(3)]
    with app.app_context():
        ids = [own_client_id(person.account_id) for person in people]
        erasure.journal_append(ids, at=utcnow())
    pad_journal(app, 100)
    applied, touched, errors = [], [], []
    original = erasure._apply_entries
    monkeypatch.setattr(erasure, "_apply_entries",
                        lambda entries: applied.append(len(entries)) or original(entries))
    start = threading.Barrier(3)

    def worker() -> None:
        try:
            with app.app_context():
                start.wait(10)
                touched.append(erasure.apply_journal())
                db.session.remove()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(touched) == [0, 0, 3]
    assert applied == [103]  # the others found the watermark moved under the lock
    with app.app_context():
        assert db.session.scalar(select(Client.id).where(Client.id.in_(ids))) is None
        assert erasure.apply_journal() == 0


# -- restricted files a page at a time ---------------------------------------------------
HOURS = itertools.count()  # one appointment an hour: a staff member's never overlap


def restricted_clients(app, bookable, n: int) -> list[uuid.UUID]:
    """``n`` restricted files, one day apart (oldest first), each with an appointment that
    took place and is kept."""
    ids = []
    with app.app_context():
        now = utcnow().replace(microsecond=0)
        for i in range(n):
            key = DataKey.generate()
            row = Client(data_key=key, restricted_at=now - timedelta(days=20 - i))
            row.full_name = f"Kanarien Eingeschraenkt {i}"
            db.session.add_all([key, row])
            db.session.flush()
            add_booking(row, bookable, end=now - timedelta(days=30, hours=next(HOURS)))
            ids.append(row.id)
        db.session.commit()
    return ids


def shown(html: str) -> list[str]:
    return re.findall(r'data-client="([^"]+)"', html)


def test_the_erasure_page_shows_a_page_at_a_time_at_the_same_cost(app, client, auth,
                                                                  make_staff, make_bookable,
                                                                  monkeypatch):
    ids = [str(i) for i in restricted_clients(app, make_bookable(), 5)]
    auth.login(make_staff(role="admin"), area="staff")
    monkeypatch.setattr(erasure, "PAGE_SIZE", 2)

    first, cost_first = get_counting_statements(app, client, "/staff/erasures")
    html = first.get_data(as_text=True)
    assert shown(html) == ids[:2]  # the oldest requests first
    assert "Seite 1 von 3, die ältesten Anträge zuerst" in html
    assert 'href="/staff/erasures?page=2"' in html
    assert "?page=0" not in html
    assert "Neuere" in html
    assert "Ältere" not in html
    assert html.count('data-testid="kept"') == 2  # what is kept, for each file

    last, cost_last = get_counting_statements(app, client, "/staff/erasures?page=3")
    html = last.get_data(as_text=True)
    assert shown(html) == ids[4:]
    assert 'href="/staff/erasures?page=2"' in html
    assert "Neuere" not in html
    assert cost_first == cost_last  # two files or one: the same statements

    monkeypatch.setattr(erasure, "PAGE_SIZE", 50)
    _all, cost_all = get_counting_statements(app, client, "/staff/erasures")
    assert shown(_all.get_data(as_text=True)) == ids
    assert cost_all == cost_first  # five files, the same statements
    assert "Seite" not in _all.get_data(as_text=True)  # one page: no pager

    monkeypatch.setattr(erasure, "PAGE_SIZE", 2)
    beyond = client.get("/staff/erasures?page=99").get_data(as_text=True)
    assert shown(beyond) == ids[4:]  # past the end: the last page
    assert shown(client.get("/staff/erasures?page=x").get_data(as_text=True)) == ids[:2]
    # A decision taken on page 2 comes back to page 2.
    response = submit(client, f"/staff/erasures/{ids[2]}?page=2", {"decision": "keep"},
                      form_url="/staff/erasures?page=2")
    assert response.headers["Location"].endswith("/staff/erasures?page=2")


@pytest.mark.parametrize("role", ["caseworker", "reception"])
def test_only_admins_page_through_erasures(app, client, auth, make_staff, make_bookable,
                                           role):
    restricted_clients(app, make_bookable(), 3)
    auth.login(make_staff(role=role), area="staff")
    for url in ("/staff/erasures", "/staff/erasures?page=2"):
        response = client.get(url)
        assert response.status_code == 403
        assert "data-client" not in response.get_data(as_text=True)


def test_the_purge_goes_through_restricted_files_a_page_at_a_time(app, make_bookable,
                                                                   monkeypatch):
    bookable = make_bookable()
    monkeypatch.setattr(erasure, "PAGE_SIZE", 2)
    costs = []
    for more in (2, 4, 4):  # 2, 6 and 10 files: 1, 3 and 5 pages
        restricted_clients(app, bookable, more)
        with app.app_context(), counting_statements(app) as seen:
            result = erasure.purge()
            db.session.remove()
        assert result.counts.get("clients") is None  # everything is still kept
        costs.append(len(seen))
    assert costs[2] - costs[1] == costs[1] - costs[0]  # the same statements for every page
    assert (costs[1] - costs[0]) // 2 <= 1 + 2 * len(erasure.DUTIES)

    # Due rows go, and a file with nothing left goes as a whole, across pages.
    ids = restricted_clients(app, bookable, 5)
    with app.app_context():
        ids = list(db.session.scalars(select(Client.id)))
        for client_id in ids:
            db.session.get(Client, client_id).restricted_at = utcnow() - timedelta(days=4000)
        for booking in db.session.scalars(select(Booking)):
            booking.end_at = utcnow() - timedelta(days=4100)
            booking.start_at = booking.end_at - timedelta(hours=1)
        db.session.commit()
        result = erasure.purge()
        assert result.counts["clients"] == len(ids) == 15
        assert result.counts["bookings"] == 15
        assert db.session.scalar(select(Client.id).where(Client.id.in_(ids))) is None
