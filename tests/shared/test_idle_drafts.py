"""Forms survive the idle timeout (issue 14, item 6), without JavaScript: a form sent after
the session ended is kept, sealed, for the account that was signed in; after signing in
again the same page shows it filled in, with a notice, and nothing is sent on its own.
And the idle warning's data: the seconds left, and "stay signed in"."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import select

from shared.extensions import db
from tests.conftest import Auth, assign_caseworker, csrf_token, submit

KEPT = "Ihre Eingaben wurden aufbewahrt"
REFILLED = "Sie wurden zu Ihrer Sicherheit abgemeldet; Ihre Eingaben wurden aufbewahrt."


def client_id_of(app, person):
    from shared.models import Client

    with app.app_context():
        return db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))


def idle_for(app, person, minutes: int) -> None:
    """The person's sessions were last used ``minutes`` ago (instead of waiting)."""
    from shared.models import UserSession

    with app.app_context():
        for row in db.session.scalars(select(UserSession).where(
                UserSession.account_id == person.account_id)):
            row.last_seen_at -= timedelta(minutes=minutes)
        db.session.commit()


def signed_in_page_token(client) -> str:
    """The CSRF token a signed-in page hands its idle warning (the meta tag idle.js reads)."""
    page = client.get("/home").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def drafts_in_db(app):
    from shared.models import FormDraft

    with app.app_context():
        return list(db.session.scalars(select(FormDraft)))


def post_from(browser, page_url: str, action: str, data: dict):
    """Post a form as the browser does from the page that holds it: with the CSRF token
    the page carried, and the page named in the Referer."""
    page = browser.get(page_url)
    assert page.status_code == 200
    payload = {"csrf_token": csrf_token(page.get_data(as_text=True)), **data}
    return browser.post(action, data=payload, headers={"Referer": f"http://localhost{page_url}"})


def post_after_timeout(browser, token: str, page_url: str, action: str, data: dict):
    return browser.post(action, data={"csrf_token": token, **data},
                        headers={"Referer": f"http://localhost{page_url}"})


def sign_in_from(client, auth, login_url: str, person):
    """Sign in on the page the timeout led to (its address names where to go back)."""
    response = submit(client, login_url, {"email": person.email, "password": person.password})
    if person.totp_secret and "/login/code" in response.headers.get("Location", ""):
        auth.clock.advance()
        response = submit(client, response.headers["Location"],
                          {"code": auth.clock.code(person.totp_secret)})
    return response


def add_child(client) -> None:
    response = submit(client, "/household/new", {
        "full_name": "Emil Demir", "birth_date": "2019-05-04", "allergies": "Erdnüsse",
        "group_name": "Igel", "contact_name": "Oma Ayse", "contact_phone": "0170 1234567"})
    assert response.status_code == 302


def child_id(app):
    from shared.models import Client

    with app.app_context():
        return next(c.id for c in db.session.scalars(select(Client))
                    if c.full_name == "Emil Demir")


CHILD_EDIT = {"full_name": "Emil Demir", "birth_date": "2019-05-04",
              "allergies": "Erdnüsse und Sesam", "medical_notes": "Inhalator im Rucksack",
              "group_name": "Igel", "contact_name": "Oma Ayse",
              "contact_phone": "0170 1234567", "submit": "Speichern"}


def test_a_parents_half_done_edit_survives_the_timeout_and_is_sent_after_signing_in(
        app, client, auth, make_client):
    parent = make_client(full_name="Mia Demir")
    auth.login(parent)
    add_child(client)
    edit = f"/household/{child_id(app)}/edit"
    token = csrf_token(client.get(edit).get_data(as_text=True))
    idle_for(app, parent, 31)  # the parent typed for more than half an hour

    response = post_after_timeout(client, token, edit, edit, CHILD_EDIT)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    login_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert KEPT in login_page
    [draft] = drafts_in_db(app)
    assert draft.account_id == parent.account_id
    assert b"Sesam" not in draft.content  # sealed
    assert b"Inhalator" not in draft.content
    with app.app_context():
        from shared.models import Client

        assert db.session.get(Client, child_id(app)).allergies == "Erdnüsse"  # not sent

    back = sign_in_from(client, auth, response.headers["Location"], parent)
    assert back.headers["Location"] == edit
    page = client.get(edit).get_data(as_text=True)
    assert REFILLED in html.unescape(page)
    assert "Erdnüsse und Sesam" in html.unescape(page)
    assert "Inhalator im Rucksack" in page
    assert drafts_in_db(app) == []  # used once, then gone
    with app.app_context():
        from shared.models import Client

        assert db.session.get(Client, child_id(app)).allergies == "Erdnüsse"  # still not sent

    assert REFILLED not in html.unescape(client.get(edit).get_data(as_text=True))  # once
    assert submit(client, edit, CHILD_EDIT).status_code == 302
    with app.app_context():
        from shared.models import Client

        child = db.session.get(Client, child_id(app))
        assert child.allergies == "Erdnüsse und Sesam"
        assert child.medical_notes == "Inhalator im Rucksack"


def test_a_correction_request_survives_the_timeout(app, client, auth, make_client):
    from shared.models import CorrectionRequest

    parent = make_client(full_name="Mia Demir")
    auth.login(parent)
    page_url = "/my-data/corrections"
    page = client.get(page_url)
    assert page.status_code == 200
    token = csrf_token(page.get_data(as_text=True))
    client_value = re.search(r'<option[^>]*value="([^"]+)"', page.get_data(as_text=True))
    data = {"message": "Meine Telefonnummer ist jetzt 0171 555", "about": "other"}
    if client_value:
        data["client"] = client_value.group(1)
    idle_for(app, parent, 31)
    response = post_after_timeout(client, token, page_url, page_url, data)
    assert response.status_code == 302
    assert sign_in_from(client, auth, response.headers["Location"], parent).headers[
        "Location"] == page_url
    refilled = html.unescape(client.get(page_url).get_data(as_text=True))
    assert "Meine Telefonnummer ist jetzt 0171 555" in refilled
    with app.app_context():
        assert db.session.scalar(select(CorrectionRequest)) is None  # nothing sent unasked
    assert drafts_in_db(app) == []


def test_a_caseworkers_note_survives_the_staff_timeout(app, client, auth, make_client,
                                                        make_staff):
    from shared.models import Note

    person = make_client(full_name="Mia Demir")
    worker = make_staff(role="caseworker")
    mia = client_id_of(app, person)
    assign_caseworker(app, mia, worker)
    auth.login(worker, area="staff")
    file_url = f"/staff/clients/{mia}"
    token = csrf_token(client.get(file_url).get_data(as_text=True))
    idle_for(app, worker, 16)  # staff: 15 minutes
    note = {"body": "Gespräch mit Mia: Schulwechsel im Sommer geplant.",
            "visible_to_client": "y", "corrects": ""}

    response = post_after_timeout(client, token, file_url, f"{file_url}/notes", note)

    assert response.headers["Location"].startswith("/staff/login?next=")
    assert len(drafts_in_db(app)) == 1
    assert sign_in_from(client, auth, response.headers["Location"], worker).headers[
        "Location"] == file_url
    page = html.unescape(client.get(file_url).get_data(as_text=True))
    assert REFILLED in page
    assert "Gespräch mit Mia: Schulwechsel im Sommer geplant.</textarea>" in page
    boxes = {re.search(r'id="([^"]+)"', tag).group(1): " checked" in tag
             for tag in re.findall(r"<input[^>]*visible[^>]*>", page)}
    assert boxes == {"note-visible-to-client": True, "document-visible-to-client": False}
    with app.app_context():
        assert db.session.scalar(select(Note)) is None
    assert drafts_in_db(app) == []
    assert submit(client, f"{file_url}/notes", note, form_url=file_url).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Note)).body == note["body"]


def test_another_account_signing_in_on_the_same_browser_never_sees_the_draft(
        app, client, auth, make_client):
    parent = make_client(full_name="Mia Demir")
    other = make_client(full_name="Jonas Berg")
    auth.login(parent)
    add_child(client)
    edit = f"/household/{child_id(app)}/edit"
    token = csrf_token(client.get(edit).get_data(as_text=True))
    idle_for(app, parent, 31)
    post_after_timeout(client, token, edit, edit, CHILD_EDIT)
    assert len(drafts_in_db(app)) == 1

    auth.login(other)

    assert drafts_in_db(app) == []  # deleted unseen
    assert client.get(edit).status_code in (403, 404)
    auth.logout()
    auth.login(parent)
    page = html.unescape(client.get(edit).get_data(as_text=True))
    assert "Erdnüsse und Sesam" not in page
    assert REFILLED not in page


def test_passwords_codes_and_tokens_are_never_kept():
    from werkzeug.datastructures import MultiDict

    from shared.auth.drafts import kept_fields

    names, fields = kept_fields(MultiDict([
        ("csrf_token", "t"), ("current", "old-secret"), ("password", "new-secret"),
        ("code", "123456"), ("recovery_code", "abcd-efgh"), ("note-body", "Text"),
        ("submit", "Speichern"), ("allergies", "Sesam"), ("note-submit", "x")]))
    assert names == {"note-body", "allergies"}
    assert fields == [("note-body", "Text"), ("allergies", "Sesam")]


def test_a_form_of_only_secrets_or_buttons_keeps_nothing(app, client, auth, make_client):
    parent = make_client()
    auth.login(parent)
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    idle_for(app, parent, 31)
    response = post_after_timeout(client, token, "/account/password", "/account/password",
                                  {"current": parent.password, "password": "x" * 20})
    assert response.status_code == 302
    assert drafts_in_db(app) == []


def test_a_draft_lives_one_hour(app, client, auth, make_client, monkeypatch):
    from shared.auth import drafts
    from shared.models.base import utcnow

    parent = make_client(full_name="Mia Demir")
    auth.login(parent)
    add_child(client)
    edit = f"/household/{child_id(app)}/edit"
    token = csrf_token(client.get(edit).get_data(as_text=True))
    idle_for(app, parent, 31)
    post_after_timeout(client, token, edit, edit, CHILD_EDIT)
    later = utcnow() + timedelta(minutes=61)
    monkeypatch.setattr(drafts, "utcnow", lambda: later)
    auth.login(parent)
    assert "Erdnüsse und Sesam" not in html.unescape(client.get(edit).get_data(as_text=True))
    assert drafts_in_db(app) == []


def test_an_expired_session_without_a_posted_form_keeps_nothing(app, client, auth,
                                                               make_client):
    parent = make_client()
    auth.login(parent)
    idle_for(app, parent, 31)
    assert client.get("/household").headers["Location"].startswith("/login")
    assert drafts_in_db(app) == []


# -- the idle warning's data and "stay signed in" -------------------------------------------
def seconds_left(page: str) -> int:
    return int(re.search(r'data-idle-seconds-left="(\d+)"', page).group(1))


def test_signed_in_pages_carry_the_seconds_left_and_visitors_none(app, client, auth,
                                                                  make_client, make_staff):
    assert "data-idle-seconds-left" not in client.get("/login").get_data(as_text=True)
    assert "idle.js" not in client.get("/login").get_data(as_text=True)
    parent = make_client()
    auth.login(parent)
    page = client.get("/home").get_data(as_text=True)
    assert 29 * 60 < seconds_left(page) <= 30 * 60
    assert "idle.js" in page
    assert "Sie werden in 2 Minuten zu Ihrer Sicherheit abgemeldet." in page
    assert "Angemeldet bleiben" in page
    staff_browser = app.test_client()
    Auth(staff_browser, auth.clock).login(make_staff(role="reception"), area="staff")
    staff_page = staff_browser.get("/staff/").get_data(as_text=True)
    assert 14 * 60 < seconds_left(staff_page) <= 15 * 60


def test_stay_signed_in_counts_the_idle_limit_from_now(app, client, auth, make_client):
    from shared.models import UserSession
    from shared.models.base import utcnow

    parent = make_client()
    auth.login(parent)
    token = signed_in_page_token(client)
    idle_for(app, parent, 28)
    assert client.post("/session/keep-alive").status_code == 400  # no CSRF token

    response = client.post("/session/keep-alive", headers={"X-CSRFToken": token})

    assert response.status_code == 200
    assert response.json["signed_in"] is True
    assert response.json["seconds_left"] > 29 * 60
    with app.app_context():
        row = db.session.scalar(select(UserSession))
        assert utcnow() - row.last_seen_at < timedelta(seconds=10)


def test_stay_signed_in_after_the_end_says_signed_out(app, client, auth, make_client):
    parent = make_client()
    auth.login(parent)
    token = signed_in_page_token(client)
    idle_for(app, parent, 31)
    response = client.post("/session/keep-alive", headers={"X-CSRFToken": token})
    assert response.status_code == 401
    assert response.json == {"signed_in": False}


def test_asking_how_long_is_left_is_no_use_of_the_session(app, client, auth, make_client):
    """The warning asks before it shows (another tab may have used the session): the
    answer does not prolong the session, and after the end it leaves the row, so a form
    sent next is still kept."""
    from shared.models import UserSession

    parent = make_client(full_name="Mia Demir")
    auth.login(parent)
    add_child(client)
    edit = f"/household/{child_id(app)}/edit"
    token = csrf_token(client.get(edit).get_data(as_text=True))
    idle_for(app, parent, 20)
    with app.app_context():
        before = db.session.scalar(select(UserSession.last_seen_at))
    answer = client.get("/session/status")
    assert answer.status_code == 200
    assert 9 * 60 < answer.json["seconds_left"] <= 10 * 60
    with app.app_context():
        assert db.session.scalar(select(UserSession.last_seen_at)) == before

    idle_for(app, parent, 11)
    assert client.get("/session/status").status_code == 401
    assert client.get("/session/status").json == {"signed_in": False}
    response = post_after_timeout(client, token, edit, edit, CHILD_EDIT)
    assert response.headers["Location"].startswith("/login?next=")
    assert len(drafts_in_db(app)) == 1


def test_a_draft_nobody_came_back_for_goes_at_the_retention_purge(app, client, auth,
                                                                   make_client):
    from shared.models.base import utcnow
    from shared.services import erasure

    parent = make_client(full_name="Mia Demir")
    auth.login(parent)
    add_child(client)
    edit = f"/household/{child_id(app)}/edit"
    token = csrf_token(client.get(edit).get_data(as_text=True))
    idle_for(app, parent, 31)
    post_after_timeout(client, token, edit, edit, CHILD_EDIT)
    assert len(drafts_in_db(app)) == 1  # nobody signs in again
    with app.app_context():
        assert erasure.purge(now=utcnow() + timedelta(minutes=59)).counts.get(
            "form_drafts") is None
        db.session.commit()
    assert len(drafts_in_db(app)) == 1
    with app.app_context():
        assert erasure.purge(now=utcnow() + timedelta(minutes=61)).counts["form_drafts"] == 1
        db.session.commit()
    assert drafts_in_db(app) == []
