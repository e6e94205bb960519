"""Signing in and out, sessions, timeouts and rate limits."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from shared.extensions import db
from shared.models import UserSession
from tests.conftest import submit


def cookie(client, app):
    value = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return value.value if value else None


def main(response):
    """The page's main content, without the per-request CSRF token (it carries a time)."""
    html = response.get_data(as_text=True)
    html = html[html.index("<main"):html.index("</main>")]
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", html)


def test_wrong_password_and_unknown_address_look_the_same(client, make_client):
    person = make_client()
    wrong = submit(client, "/login", {"email": person.email, "password": "wrong-password-xyz"})
    unknown = submit(client, "/login", {"email": "nobody@example.org",
                                        "password": "wrong-password-xyz"})
    assert wrong.status_code == unknown.status_code == 200
    assert main(wrong).replace(person.email, "X") == main(unknown).replace(
        "nobody@example.org", "X"
    )
    assert "nicht richtig" in main(wrong) or "not right" in main(wrong)


def test_sign_in_renews_the_session_and_sign_out_kills_a_replayed_cookie(client, app, auth,
                                                                         make_client):
    person = make_client()
    client.get("/login")
    before = cookie(client, app)
    assert auth.login(person).headers["Location"] == "/account"
    after = cookie(client, app)
    assert after
    assert after != before
    assert client.get("/account").status_code == 200

    auth.logout()
    assert client.get("/account").status_code == 302
    # An attacker who copied the cookie before log-out gets nothing with it.
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], after)
    replay = client.get("/account")
    assert replay.status_code == 302
    assert replay.headers["Location"].startswith("/login")
    with app.app_context():
        assert db.session.scalar(select(UserSession)) is None


@pytest.mark.parametrize(("column", "minutes", "alive"), [
    ("last_seen_at", 29, True),
    ("last_seen_at", 31, False),
    ("created_at", 11 * 60, True),
    ("created_at", 12 * 60 + 1, False),
])
def test_idle_and_absolute_timeouts_for_clients(client, app, auth, make_client, column, minutes,
                                                alive):
    person = make_client()
    auth.login(person)
    with app.app_context():
        row = db.session.scalar(select(UserSession))
        shifted = getattr(row, column) - timedelta(minutes=minutes)
        values = {column: shifted}
        if column == "created_at":  # keep the session active, only old
            values["last_seen_at"] = row.last_seen_at
        db.session.execute(update(UserSession).values(**values))
        db.session.commit()
    response = client.get("/account")
    assert (response.status_code == 200) is alive


def test_authenticated_pages_are_not_cached(client, auth, make_client):
    auth.login(make_client())
    response = client.get("/account")
    assert response.headers["Cache-Control"] == "no-store"


def test_next_parameter_only_leads_to_this_site(client, make_client):
    person = make_client()
    page = client.get("/login?next=https://evil.example/")
    from tests.conftest import csrf_token

    response = client.post(
        "/login?next=https://evil.example/",
        data={"csrf_token": csrf_token(page.get_data(as_text=True)), "email": person.email,
              "password": person.password},
    )
    assert response.headers["Location"] == "/account"


def test_staff_cannot_sign_in_to_the_portal(client, make_staff):
    staff = make_staff(role="admin")
    response = submit(client, "/login", {"email": staff.email, "password": staff.password})
    assert response.status_code == 200
    assert "/account" not in response.headers.get("Location", "")


def test_repeated_failures_are_rate_limited_per_account(client, make_client):
    person = make_client()
    statuses = [
        submit(client, "/login", {"email": person.email, "password": f"wrong-{i}-aaaaaaaa"}
               ).status_code
        for i in range(11)
    ]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429
    # Even the right password waits now, so guessing cannot continue.
    right = submit(client, "/login", {"email": person.email, "password": person.password})
    assert right.status_code == 429
    assert "wait" in right.get_data(as_text=True) or "warten" in right.get_data(as_text=True)


def test_an_old_hash_of_an_unnormalised_password_still_verifies_and_is_renewed(
    client, app, make_client
):
    from argon2 import PasswordHasher

    from shared.models import Account

    person = make_client(password="ﬁne-harbour-lantern-92")  # with the ligature "ﬁ"
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        # As stored before passwords were normalised: a hash of the raw form.
        account.password_hash = PasswordHasher().hash("ﬁne-harbour-lantern-92")
        db.session.commit()
    first = submit(client, "/login", {"email": person.email,
                                      "password": "ﬁne-harbour-lantern-92"})
    assert first.headers["Location"] == "/account"
    submit(client, "/logout", {})
    with app.app_context():
        stored = db.session.get(Account, person.account_id).password_hash
    assert PasswordHasher().verify(stored, "fine-harbour-lantern-92")  # rehashed as NFKC
    plain = submit(client, "/login", {"email": person.email,
                                      "password": "fine-harbour-lantern-92"})
    assert plain.headers["Location"] == "/account"


# One address, written as a phone keyboard, a Japanese input method or a mail client might.
ADDRESS_VARIANTS = [
    "Mia@Bücher.org",
    "mia@bücher。org",  # ideographic full stop U+3002
    "ｍｉａ@bücher.org",  # fullwidth letters
    "mia@xn--bcher-kva.org",  # the domain in its ASCII (IDNA) form
    "MIA@BÜCHER．ORG",  # fullwidth full stop U+FF0E
    "mia@bücher｡org",  # halfwidth ideographic full stop U+FF61
]


def test_every_way_of_writing_the_address_signs_in(client, make_client):
    person = make_client(email="mia@bücher.org")
    for variant in ADDRESS_VARIANTS:
        response = submit(client, "/login", {"email": variant, "password": person.password})
        assert response.headers.get("Location") == "/account", variant
        submit(client, "/logout", {})


def test_ways_of_writing_one_address_share_one_failure_budget(client, make_client):
    person = make_client(email="mia@bücher.org")
    statuses = [
        submit(client, "/login", {"email": ADDRESS_VARIANTS[i % len(ADDRESS_VARIANTS)],
                                  "password": f"wrong-{i}-aaaaaaaa"}).status_code
        for i in range(10)
    ]
    assert statuses == [200] * 10
    for variant in ADDRESS_VARIANTS:
        refused = submit(client, "/login", {"email": variant, "password": person.password})
        assert refused.status_code == 429, variant
        assert "warten" in refused.get_data(as_text=True)
