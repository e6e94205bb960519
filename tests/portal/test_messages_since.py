"""What an open conversation page asks every few seconds (shared/static/js/messages.js):
the messages after the last one it shows, in the page's own markup, read as the page
reads them (the team's marked read for the client; for staff, a visit in the client's
access log and the client's messages marked read), nothing when nothing is new (and then
no visit either), never another person's conversation, and no use of the session."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from shared.extensions import db
from shared.models import AccessEvent, Message, UserSession
from shared.models.base import utcnow
from tests.conftest import submit
from tests.portal.test_messages import (
    ANSWER,
    BODY,
    own_client_id,
    signed_in,
    staff_thread,
    thread_path,
    write,
)


@pytest.fixture
def team(make_bookable):
    """The service Elternberatung and the caseworker who offers it."""
    return make_bookable("Elternberatung")


def last_message_id(app, path: str) -> uuid.UUID:
    with app.app_context():
        return db.session.scalar(select(Message.id).where(
            Message.thread_id == uuid.UUID(path.rsplit("/", 1)[1]))
            .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))


def since(browser, path: str, after) -> object:
    return browser.get(f"{path}/since?after={after}")


def visits(app, client_id) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AccessEvent)
                                 .where(AccessEvent.client_id == client_id))


def test_the_client_page_gets_the_answer_in_its_own_markup_and_reads_it(
        app, auth, make_client, team):
    mia = make_client(full_name="Mia Demir")
    browser = signed_in(app, auth, mia)
    path = thread_path(write(browser, team.service_id))
    first = last_message_id(app, path)
    page = browser.get(path).get_data(as_text=True)
    assert f'data-messages-since="{path}/since"' in page
    assert f'data-messages-after="{first}"' in page
    assert 'src="/static/js/messages.js"' in page

    nothing = since(browser, path, first)
    assert nothing.status_code == 204
    assert nothing.get_data() == b""

    caseworker = signed_in(app, auth, team.staff, area="staff")
    assert submit(caseworker, staff_thread(path), {"body": ANSWER}).status_code == 302
    answer = last_message_id(app, path)
    news = since(browser, path, first)
    assert news.status_code == 200
    assert news.headers["X-Messages-After"] == str(answer)
    assert news.headers["Cache-Control"] == "no-store"
    html = news.get_data(as_text=True)
    assert "<p data-messages-news>1 neue Nachricht</p>" in html
    assert re.search(r'<li class="message message--team" id="latest">\s*<p class="kern-body '
                     r'kern-body--small message__meta"><span class="kern-body--bold"><bdi>'
                     r'T\. Tester</bdi></span> · ', html)
    assert ANSWER in html
    assert BODY not in html  # only what is new
    with app.app_context():
        assert db.session.get(Message, answer).read_by_client_at is not None
    # The page, reloaded, renders the same item with the same macro.
    item = re.search(r"<li class=\"message message--team\".*?</li>", html, re.S).group(0)
    assert item in browser.get(path).get_data(as_text=True)
    assert since(browser, path, answer).status_code == 204
    assert "neue Nachricht" not in browser.get("/home").get_data(as_text=True)


def test_the_staff_page_logs_a_visit_only_when_it_shows_something_new(
        app, auth, make_client, team):
    mia = make_client(full_name="Mia Demir")
    browser = signed_in(app, auth, mia)
    path = thread_path(write(browser, team.service_id))
    client_id = own_client_id(app, mia)
    caseworker = signed_in(app, auth, team.staff, area="staff")
    assert caseworker.get(staff_thread(path)).status_code == 200
    first = last_message_id(app, path)
    before = visits(app, client_id)

    for _ in range(3):  # the page asking with nothing new reads nothing of hers
        assert since(caseworker, staff_thread(path), first).status_code == 204
    assert visits(app, client_id) == before

    assert submit(browser, path, {"body": "Noch eine Frage: geht es auch am Montag?"},
                  content_type="multipart/form-data").status_code == 302
    news = since(caseworker, staff_thread(path), first)
    assert news.status_code == 200
    html = news.get_data(as_text=True)
    assert "Noch eine Frage: geht es auch am Montag?" in html
    assert "<bdi>Mia Demir</bdi>" in html
    assert visits(app, client_id) == before + 1
    with app.app_context():
        event = db.session.scalars(select(AccessEvent).where(AccessEvent.client_id == client_id)
                                   .order_by(AccessEvent.seq.desc())).first()
        assert (event.category, event.purpose) == ("messages", "message-work")
        assert db.session.scalar(select(func.count()).select_from(Message).where(
            Message.from_staff.is_(False)).where(Message.read_by_staff_at.is_(None))) == 0


def test_nobody_else_gets_the_messages_and_a_wrong_cursor_is_not_found(
        app, auth, make_client, make_staff, team):
    mia = make_client(full_name="Mia Demir")
    browser = signed_in(app, auth, mia)
    path = thread_path(write(browser, team.service_id))
    first = last_message_id(app, path)

    other = signed_in(app, auth, make_client(full_name="Ole Berg"))
    assert since(other, path, first).status_code == 404
    outsider = signed_in(app, auth, make_staff(role="caseworker"), area="staff")
    assert since(outsider, staff_thread(path), first).status_code == 404  # not her service
    for after in ("", "nonsense", uuid.uuid4()):
        assert since(browser, path, after).status_code == 404
    signed_out = app.test_client()
    response = since(signed_out, path, first)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_asking_for_news_is_no_use_of_the_session(app, auth, make_client, team):
    """An open page asks every few seconds: that must not keep the session alive."""
    mia = make_client(full_name="Mia Demir")
    browser = signed_in(app, auth, mia)
    path = thread_path(write(browser, team.service_id))
    first = last_message_id(app, path)
    earlier = utcnow() - timedelta(minutes=5)
    with app.app_context():
        db.session.execute(update(UserSession).values(last_seen_at=earlier))
        db.session.commit()
    assert since(browser, path, first).status_code == 204
    with app.app_context():
        seen = db.session.scalar(select(UserSession.last_seen_at)
                                 .where(UserSession.account_id == mia.account_id))
        assert abs((seen - earlier).total_seconds()) < 1
    browser.get("/home")  # a page the person opens is use
    with app.app_context():
        seen = db.session.scalar(select(UserSession.last_seen_at)
                                 .where(UserSession.account_id == mia.account_id))
        assert seen > earlier + timedelta(minutes=4)
