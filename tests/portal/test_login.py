"""Signing in and out, sessions, timeouts and rate limits."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from shared import security_log
from shared.extensions import db
from shared.models import UserSession
from tests.conftest import security_events, submit


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
    assert "E-Mail-Adresse oder Passwort ist nicht richtig." in main(wrong)


def test_sign_in_renews_the_session_and_sign_out_kills_a_replayed_cookie(client, app, auth,
                                                                         make_client):
    person = make_client()
    client.get("/login")
    before = cookie(client, app)
    assert auth.login(person).headers["Location"] == "/home"
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
    assert response.headers["Location"] == "/home"


def test_staff_cannot_sign_in_to_the_portal(client, make_staff):
    staff = make_staff(role="admin")
    response = submit(client, "/login", {"email": staff.email, "password": staff.password})
    assert response.status_code == 200
    assert "/home" not in response.headers.get("Location", "")


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
    assert ("Es gab zu viele Versuche. Zu Ihrer Sicherheit warten Sie bitte ein paar Minuten "
            "und versuchen Sie es dann noch einmal." in right.get_data(as_text=True))


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
    assert first.headers["Location"] == "/home"
    submit(client, "/logout", {})
    with app.app_context():
        stored = db.session.get(Account, person.account_id).password_hash
    assert PasswordHasher().verify(stored, "fine-harbour-lantern-92")  # rehashed as NFKC
    plain = submit(client, "/login", {"email": person.email,
                                      "password": "fine-harbour-lantern-92"})
    assert plain.headers["Location"] == "/home"


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
        assert response.headers.get("Location") == "/home", variant
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


# -- wrong second-factor codes lock the pending sign-in, not the account -------------------
def password_step(client, person, prefix=""):
    response = submit(client, f"{prefix}/login",
                      {"email": person.email, "password": person.password})
    assert response.headers["Location"] == f"{prefix}/login/code"


def enter_code(client, code, prefix=""):
    return submit(client, f"{prefix}/login/code", {"code": code})


def wrong_codes(client, person, clock, count, prefix=""):
    return [enter_code(client, clock.wrong_code(person.totp_secret), prefix)
            for _ in range(count)]


def right_code(client, person, clock, prefix=""):
    clock.advance()  # a code is accepted once: each sign-in uses the next step
    return enter_code(client, clock.code(person.totp_secret), prefix)


def test_five_wrong_codes_end_the_sign_in_not_the_account(app, client, make_client, totp_clock,
                                                         outbox):
    person = make_client(totp=True)
    password_step(client, person)
    copied_cookie = cookie(client, app)  # holds the pending sign-in
    answers = wrong_codes(client, person, totp_clock, 5)
    assert [a.status_code for a in answers[:4]] == [200] * 4
    assert "nicht richtig" in main(answers[3])
    assert answers[4].headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert "Das waren fünf falsche Codes" in page
    assert "Passwort noch einmal" in page
    assert client.get("/login/code").headers["Location"] == "/login"

    # The count is kept on the server: the copied cookie buys no new tries, not even
    # with the right code.
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], copied_cookie)
    assert right_code(client, person, totp_clock).headers["Location"] == "/login"

    # The owner is emailed once (not again within the hour) ...
    password_step(client, person)
    assert wrong_codes(client, person, totp_clock, 5)[-1].headers["Location"] == "/login"
    warnings = [m for m in outbox.to(person.email)
                if m["Subject"] == "Jemand scheint Ihr Passwort zu kennen"]
    assert len(warnings) == 1
    assert "/reset" in warnings[0].get_content()
    # ... and, with the right password and code, is never locked out.
    password_step(client, person)
    assert right_code(client, person, totp_clock).headers["Location"] == "/home"

    with app.app_context():
        ref = security_log.pseudonym(person.account_id)
    assert security_events(app, "login.restarted") == [("refused", ref)] * 2
    assert security_events(app, "login.password_known") == [("ok", ref)]
    # The replayed cookie's code was refused unchecked, and that is recorded too.
    assert sorted(security_events(app, "login.second_factor")) == (
        [("failed", ref)] * 10 + [("ok", ref), ("refused", ref)])
    assert security_events(app, "login.password") == [("ok", ref)] * 3


def test_guessing_from_new_browsers_stops_for_the_day_but_not_the_owners_known_device(
    app, make_client, totp_clock, outbox
):
    person = make_client(totp=True)
    owner = app.test_client()
    password_step(owner, person)
    assert right_code(owner, person, totp_clock).headers["Location"] == "/home"
    submit(owner, "/logout", {})

    # Someone who knows the password restarts after every five wrong codes ...
    attacker = app.test_client()
    for _ in range(4):
        password_step(attacker, person)
        assert wrong_codes(attacker, person, totp_clock, 5)[-1].headers["Location"] == "/login"
    # ... until browsers that never signed in to this account may not try codes today,
    # whatever the code; a made-up device cookie does not help.
    attacker.set_cookie("einblick-device", "made-up")
    password_step(attacker, person)
    assert right_code(attacker, person, totp_clock).headers["Location"] == "/login"
    assert "zu viele falsche Codes" in attacker.get("/login").get_data(as_text=True)
    with app.app_context():
        ref = security_log.pseudonym(person.account_id)
    assert ("refused", ref) in security_events(app, "login.second_factor")

    # The owner's own device signs in as always.
    password_step(owner, person)
    assert right_code(owner, person, totp_clock).headers["Location"] == "/home"

    # A new password (by email) opens new browsers at once: the guesser no longer has it.
    new_phone = app.test_client()
    submit(new_phone, "/reset", {"email": person.email})
    submit(new_phone, outbox.link(person.email, "/reset/"),
           {"password": "copper-meadow-whistle-58"})
    person.password = "copper-meadow-whistle-58"
    password_step(new_phone, person)
    assert right_code(new_phone, person, totp_clock).headers["Location"] == "/home"


def password_warnings(outbox, person):
    return [m for m in outbox.to(person.email)
            if m["Subject"] == "Jemand scheint Ihr Passwort zu kennen"]


def test_four_codes_at_a_time_still_warn_the_owner_after_five_since_the_last_sign_in(
    app, make_client, totp_clock, outbox
):
    person = make_client(totp=True)
    with app.app_context():
        ref = security_log.pseudonym(person.account_id)
    owner, attacker = app.test_client(), app.test_client()
    # Four wrong codes, then the owner signs in: their sign-in starts the count again.
    password_step(attacker, person)
    wrong_codes(attacker, person, totp_clock, 4)
    password_step(owner, person)
    assert right_code(owner, person, totp_clock).headers["Location"] == "/home"
    password_step(attacker, person)
    assert [r.status_code for r in wrong_codes(attacker, person, totp_clock, 4)] == [200] * 4
    assert password_warnings(outbox, person) == []

    # One more wrong code after the password again: five since the owner's sign-in.
    password_step(attacker, person)
    assert wrong_codes(attacker, person, totp_clock, 1)[0].status_code == 200
    warnings = password_warnings(outbox, person)
    assert len(warnings) == 1
    assert "seit Ihrer letzten Anmeldung" in warnings[0].get_content()
    assert security_events(app, "login.password_known") == [("ok", ref)]

    # Going on four at a time: at most one email an hour, and the daily cap still holds.
    wrong_codes(attacker, person, totp_clock, 3)
    for _ in range(2):
        password_step(attacker, person)
        assert [r.status_code for r in wrong_codes(attacker, person, totp_clock, 4)] == [200] * 4
    assert len(password_warnings(outbox, person)) == 1
    password_step(attacker, person)
    totp_clock.advance()
    assert enter_code(attacker, totp_clock.code(person.totp_secret)).headers["Location"] == (
        "/login")  # paused: twenty wrong codes today from browsers the owner never used

    # An hour later, a refused (paused) code warns the owner again.
    with app.app_context():
        from shared.auth import code_attempts

        app.extensions[code_attempts._EXTENSION].clear(  # the hour has passed
            code_attempts.WARNING_MAILS, "password-known-mail", str(person.account_id))
    password_step(attacker, person)
    totp_clock.advance()
    assert enter_code(attacker, totp_clock.code(person.totp_secret)).headers["Location"] == (
        "/login")
    assert len(password_warnings(outbox, person)) == 2
    assert security_events(app, "login.password_known") == [("ok", ref)] * 2


# -- after signing in, next= only leads to a page (never to an address that takes no GET) ---
def post_without_session(client, path, **kwargs):
    """A form posted after the session ended (the CSRF token of a fresh page)."""
    from tests.conftest import csrf_token

    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token}, **kwargs)


def test_a_form_posted_after_the_session_ended_leads_after_sign_in_to_a_page(client,
                                                                            make_client):
    person = make_client()
    login = {"email": person.email, "password": person.password}
    stale = post_without_session(client, "/account/sessions/end-others")
    assert stale.headers["Location"].startswith("/login")
    assert "end-others" not in stale.headers["Location"]
    signed_in = submit(client, stale.headers["Location"], login)
    assert client.get(signed_in.headers["Location"]).status_code == 200
    submit(client, "/logout", {})

    # The browser named the page that holds the form: back to it.
    stale = post_without_session(client, "/account/sessions/end-others",
                                 headers={"Referer": "http://localhost/account/security"})
    signed_in = submit(client, stale.headers["Location"], login)
    assert signed_in.headers["Location"] == "/account/security"
    assert client.get("/account/security").status_code == 200
    submit(client, "/logout", {})

    # Another site's page is not followed; nor is a hand-made next= that takes no GET.
    stale = post_without_session(client, "/account/sessions/end-others",
                                 headers={"Referer": "https://evil.example/account"})
    assert submit(client, stale.headers["Location"], login).headers["Location"] == "/home"
    submit(client, "/logout", {})
    crafted = submit(client, "/login?next=/account/sessions/end-others", login)
    assert crafted.headers["Location"] == "/home"
    submit(client, "/logout", {})
    # A page asked for with GET is still where signing in leads.
    asked = client.get("/account/security")
    assert asked.headers["Location"] == "/login?next=/account/security"
    assert submit(client, asked.headers["Location"], login).headers["Location"] == (
        "/account/security")


def test_the_code_step_keeps_only_a_next_that_answers_get(client, make_client, totp_clock):
    person = make_client(totp=True)
    answer = submit(client, "/login?next=/account/security/recovery-codes",
                    {"email": person.email, "password": person.password})
    assert answer.headers["Location"] == "/login/code"
    totp_clock.advance()
    done = submit(client, "/login/code", {"code": totp_clock.code(person.totp_secret)})
    assert done.headers["Location"] == "/home"


def test_the_code_step_ends_five_minutes_after_the_password(app, make_client, sign_in_clock):
    """The right code within five minutes signs in; after them, it is refused and the
    person is asked for the password again (the clock is moved, not waited for)."""
    from tests.conftest import csrf_token

    person = make_client(totp=True)
    five_minutes = 5 * 60
    outcomes = {}
    for waited in (five_minutes - 5, five_minutes + 1):
        browser = app.test_client()
        password_step(browser, person)
        form = browser.get("/login/code").get_data(as_text=True)
        sign_in_clock.advance(waited)
        answer = browser.post("/login/code", data={
            "csrf_token": csrf_token(form), "code": sign_in_clock.code(person.totp_secret)})
        outcomes[waited] = answer.headers["Location"]
        if waited > five_minutes:
            assert "Bitte melden Sie sich noch einmal an." in browser.get("/login").get_data(
                as_text=True)
            assert browser.get("/account").headers["Location"].startswith("/login")
            assert browser.get("/login/code").headers["Location"] == "/login"
    assert outcomes == {five_minutes - 5: "/home", five_minutes + 1: "/login"}


# Links an attacker might send: each would lead the browser to evil.example if followed
# after signing in (a backslash is a slash to a browser, a tab is dropped), or to a page
# that does not exist. As typed into the address bar, so percent escapes stay escaped.
CRAFTED_NEXT = ["/\\evil.example", "/\\\\evil.example", "/%5Cevil.example",
                "/%5c%5Cevil.example", "//evil.example", "/%09/evil.example",
                "/%0A/evil.example", "%2F%2Fevil.example", "/%5C%09evil.example"]


def add_page_at_the_root(app) -> None:
    """A page at /<name> (as a help or news page could be): the URL map then matches
    "/\\evil.example" too, so only safe_next's own checks stand in the way."""
    app.add_url_rule("/<name>", "root_page", lambda name: name)


@pytest.mark.parametrize("root_page", [False, True], ids=["todays-pages", "a-page-at-the-root"])
@pytest.mark.parametrize("crafted", CRAFTED_NEXT)
def test_a_crafted_next_never_leads_away_after_signing_in(app, client, make_client, crafted,
                                                         root_page):
    from tests.conftest import csrf_token

    if root_page:
        add_page_at_the_root(app)
    person = make_client()
    page = client.get(f"/login?next={crafted}")
    answer = client.post(f"/login?next={crafted}", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "email": person.email,
        "password": person.password})
    assert answer.headers["Location"] == "/home"


@pytest.mark.parametrize("crafted", ["/\\evil.example", "/%09/evil.example"])
def test_a_crafted_next_is_not_kept_through_the_code_step(app, client, make_client,
                                                         totp_clock, crafted):
    from tests.conftest import csrf_token

    add_page_at_the_root(app)
    person = make_client(totp=True)
    page = client.get(f"/login?next={crafted}")
    answer = client.post(f"/login?next={crafted}", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "email": person.email,
        "password": person.password})
    assert answer.headers["Location"] == "/login/code"
    assert right_code(client, person, totp_clock).headers["Location"] == "/home"


def test_a_next_to_a_page_of_this_site_is_still_followed(app, make_client):
    """Positive control for the tests above: the same link to a real page is followed."""
    from tests.conftest import csrf_token

    add_page_at_the_root(app)
    person = make_client()
    for wanted in ("/my-data", "/hilfe"):
        browser = app.test_client()
        page = browser.get(f"/login?next={wanted}")
        answer = browser.post(f"/login?next={wanted}", data={
            "csrf_token": csrf_token(page.get_data(as_text=True)), "email": person.email,
            "password": person.password})
        assert answer.headers["Location"] == wanted
