"""Resetting a forgotten password by an emailed single-use link."""

import re
from datetime import timedelta

from sqlalchemy import select

from shared.extensions import db
from shared.models import AccountToken, UserSession
from tests.conftest import submit

NEW_PASSWORD = "copper-meadow-whistle-58"


def main(response):
    """The page's main content, without the per-request CSRF token (it carries a time)."""
    html = response.get_data(as_text=True)
    html = html[html.index("<main"):html.index("</main>")]
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", html)


def test_reset_by_link_then_sign_in_with_the_new_password(client, make_client, outbox, app):
    person = make_client()
    other_device = app.test_client()
    submit(other_device, "/login", {"email": person.email, "password": person.password})

    response = submit(client, "/reset", {"email": person.email})
    assert response.status_code == 200
    link = outbox.link(person.email, "/reset/")
    assert submit(client, link, {"password": NEW_PASSWORD}).headers["Location"] == "/login"

    assert other_device.get("/account").status_code == 302  # all sessions ended
    old = submit(client, "/login", {"email": person.email, "password": person.password})
    assert old.status_code == 200
    new = submit(client, "/login", {"email": person.email, "password": NEW_PASSWORD})
    assert new.headers["Location"] == "/home"
    # The link is single-use.
    assert client.get(link).status_code == 400


def test_reset_for_unknown_address_looks_the_same_and_sends_nothing(client, make_client, outbox):
    person = make_client()
    known = submit(client, "/reset", {"email": person.email})
    unknown = submit(client, "/reset", {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert main(known).replace(person.email, "X") == main(unknown).replace(
        "nobody@example.org", "X")
    assert outbox.to("nobody@example.org") == []


def test_reset_link_expires_after_one_hour(client, make_client, outbox, app):
    person = make_client()
    submit(client, "/reset", {"email": person.email})
    link = outbox.link(person.email, "/reset/")
    with app.app_context():
        token = db.session.scalar(select(AccountToken).where(AccountToken.purpose ==
                                                             "reset-password"))
        assert token.expires_at - token.created_at == timedelta(hours=1)
        token.expires_at -= timedelta(hours=1, seconds=1)
        db.session.commit()
    assert client.get(link).status_code == 400


def test_reset_does_not_bypass_the_second_factor(client, make_client, outbox, app):
    person = make_client(totp=True)
    submit(client, "/reset", {"email": person.email})
    submit(client, outbox.link(person.email, "/reset/"), {"password": NEW_PASSWORD})
    response = submit(client, "/login", {"email": person.email, "password": NEW_PASSWORD})
    assert response.headers["Location"] == "/login/code"
    assert client.get("/account").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(UserSession)) is None


def test_weak_new_password_is_refused_and_link_still_works(client, make_client, outbox):
    person = make_client()
    submit(client, "/reset", {"email": person.email})
    link = outbox.link(person.email, "/reset/")
    weak = submit(client, link, {"password": "qwertyuiop12"})
    assert weak.status_code == 200
    assert 'aria-invalid="true"' in weak.get_data(as_text=True)
    assert submit(client, link, {"password": NEW_PASSWORD}).status_code == 302


def test_reset_requests_are_rate_limited_per_address(client, make_client, outbox):
    person = make_client()
    statuses = [submit(client, "/reset", {"email": person.email}).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert len(outbox.to(person.email)) == 5


def test_ways_of_writing_one_address_share_one_reset_budget(client, make_client, outbox):
    person = make_client(email="mia@example.org")
    variants = ["Mia@Example.org", "mia@example。org", "ｍｉａ@example.org",
                "mia@EXAMPLE．org", "mia@example｡org", "MIA@example.org"]
    statuses = [submit(client, "/reset", {"email": v}).status_code for v in variants]
    assert statuses == [200] * 5 + [429]
    assert len(outbox.to(person.email)) == 5
