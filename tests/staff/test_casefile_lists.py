"""The case file's own lists (notes, documents, appointments) a page at a time: a client of
many years has hundreds of notes; the file shows the newest 20 of each list and leads to
older ones, at the same statements however long the lists are."""

import re
from datetime import timedelta

from sqlalchemy import select

from shared.extensions import db
from shared.models import Note
from shared.models.base import utcnow
from shared.services import casefile
from tests.conftest import get_counting_statements, staff_member_id
from tests.staff.test_casefile import case  # noqa: F401 (the fixture)


def add_notes(app, worker, client_id, first: int, count: int) -> None:
    """Notes "Notiz <n>", one a minute apart, <n> from ``first``: the highest is the newest."""
    with app.app_context():
        member = db.session.get(casefile.StaffMember, staff_member_id(app, worker))
        for n in range(first, first + count):
            note = casefile.add_note(member=member, client_id=client_id, session_id=None,
                                     body=f"Notiz {n:03d}", visible_to_client=False,
                                     confidential=False)
            note.created_at = utcnow() - timedelta(days=1) + timedelta(minutes=n)
        db.session.commit()


def notes_shown(html: str) -> list[str]:
    return re.findall(r'<p class="kern-body note__body">(Notiz \d+)</p>', html)


def test_notes_are_shown_twenty_at_a_time_newest_first(app, client, auth, case):  # noqa: F811
    _person, worker, client_id = case
    add_notes(app, worker, client_id, 1, 45)
    auth.login(worker, area="staff")
    url = f"/staff/clients/{client_id}"
    first = client.get(url).get_data(as_text=True)
    assert notes_shown(first) == [f"Notiz {n:03d}" for n in range(45, 25, -1)]
    pager = re.search(r'data-testid="pager-notes">(.*?)</nav>', first, re.S).group(1)
    assert "Seite 1 von 3" in pager
    assert 'rel="prev"' not in pager
    older = re.search(r'rel="next" href="([^"]+)"', pager).group(1)
    assert older == f"{url}?notes=2#notes-heading"
    second = client.get(older.split("#")[0]).get_data(as_text=True)
    assert notes_shown(second) == [f"Notiz {n:03d}" for n in range(25, 5, -1)]
    third = client.get(f"{url}?notes=3").get_data(as_text=True)
    assert notes_shown(third) == [f"Notiz {n:03d}" for n in range(5, 0, -1)]
    newer = re.search(r'data-testid="pager-notes">.*?rel="prev" href="([^"]+)"', third,
                      re.S).group(1)
    assert newer == f"{url}?notes=2#notes-heading"
    # Every note reached once; nonsense or a page past the end shows a real page.
    assert sorted(notes_shown(first) + notes_shown(second) + notes_shown(third)) == [
        f"Notiz {n:03d}" for n in range(1, 46)]
    assert notes_shown(client.get(f"{url}?notes=x").get_data(as_text=True)) == \
        notes_shown(first)
    assert notes_shown(client.get(f"{url}?notes=99").get_data(as_text=True)) == \
        notes_shown(third)
    with app.app_context():
        assert len(db.session.scalars(select(Note).where(Note.client_id == client_id)).all()) \
            == 45


def test_a_long_file_costs_the_same_statements_as_a_short_one(app, client, auth,
                                                              case):  # noqa: F811
    _person, worker, client_id = case
    add_notes(app, worker, client_id, 1, 3)
    auth.login(worker, area="staff")
    url = f"/staff/clients/{client_id}"
    client.get(url)  # caches warm
    short_page, short = get_counting_statements(app, client, url)
    assert len(notes_shown(short_page.get_data(as_text=True))) == 3
    assert 'data-testid="pager-notes"' not in short_page.get_data(as_text=True)
    add_notes(app, worker, client_id, 4, 60)
    long_page, long = get_counting_statements(app, client, url)
    assert len(notes_shown(long_page.get_data(as_text=True))) == 20
    assert long == short, f"3 notes: {short} statements, 63 notes: {long}"
