"""Staff: created by CLI with an emailed invitation, second factor before anything else,
and a staff area that no client can open."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import AccountToken, StaffMember
from tests.conftest import STRONG_PASSWORD, submit

# Every staff page that needs a signed-in staff member. Extend when adding staff views.
PROTECTED_STAFF_PAGES = ["/staff/", "/staff/setup/second-factor"]


def test_created_by_cli_invited_by_email_and_forced_to_set_up_a_second_factor(
    runner, client, outbox, app, totp_clock
):
    result = runner.invoke(args=["staff", "create", "--email", "Neu@Example.org",
                                 "--role", "caseworker", "--name", "N. Neumann"])
    assert result.exit_code == 0, result.output
    link = outbox.link("Neu@example.org", "/staff/invitation/")
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        assert member.role == "caseworker"
        assert member.name == "N. Neumann"
        token = db.session.scalar(select(AccountToken))
        assert token.expires_at - token.created_at == timedelta(hours=72)

    response = submit(client, link, {"password": STRONG_PASSWORD})
    assert response.headers["Location"] == "/staff/setup/second-factor"
    # Before a second factor exists, no other staff page opens.
    assert client.get("/staff/").headers["Location"] == "/staff/setup/second-factor"

    page = client.get("/staff/setup/second-factor").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)</code>', page).group(1)
    done = submit(client, "/staff/setup/second-factor", {"code": totp_clock.code(secret)})
    assert done.status_code == 200
    assert len(re.findall(r"<li><code>", done.get_data(as_text=True))) == 10
    assert client.get("/staff/").status_code == 200

    # The invitation link works once.
    assert client.get(link).status_code == 400

    submit(client, "/staff/logout", {})
    first = submit(client, "/staff/login", {"email": "neu@example.org",
                                            "password": STRONG_PASSWORD})
    assert first.headers["Location"] == "/staff/login/code"
    totp_clock.advance()
    second = submit(client, "/staff/login/code", {"code": totp_clock.code(secret)})
    assert second.headers["Location"] == "/staff/"


def test_invitation_expires_after_72_hours(runner, client, outbox, app):
    runner.invoke(args=["staff", "create", "--email", "late@example.org", "--role", "reception"])
    link = outbox.link("late@example.org", "/staff/invitation/")
    with app.app_context():
        token = db.session.scalar(select(AccountToken))
        token.expires_at = token.created_at - timedelta(seconds=1)
        db.session.commit()
    assert client.get(link).status_code == 400


def test_cli_rejects_bad_input(runner):
    assert runner.invoke(args=["staff", "create", "--email", "x@example.org",
                               "--role", "boss"]).exit_code != 0
    assert runner.invoke(args=["staff", "create", "--email", "not-an-email",
                               "--role", "admin"]).exit_code != 0
    runner.invoke(args=["staff", "create", "--email", "twice@example.org", "--role", "admin"])
    again = runner.invoke(args=["staff", "create", "--email", "twice@example.org",
                                "--role", "admin"])
    assert again.exit_code != 0
    assert "exists" in again.output


@pytest.mark.parametrize("path", PROTECTED_STAFF_PAGES)
def test_anonymous_visitors_are_sent_to_staff_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


@pytest.mark.parametrize("path", PROTECTED_STAFF_PAGES)
def test_a_client_account_cannot_open_any_staff_page(client, auth, make_client, path):
    auth.login(make_client())
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("role", ["admin", "caseworker", "reception"])
def test_every_role_reaches_the_staff_home_after_two_factors(client, auth, make_staff, role):
    person = make_staff(role=role)
    auth.login(person, area="staff")
    response = client.get("/staff/")
    assert response.status_code == 200
    assert "T. Tester" in response.get_data(as_text=True)


def test_a_staff_account_is_not_a_client(client, auth, make_staff):
    auth.login(make_staff(role="caseworker"), area="staff")
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"


def test_a_client_cannot_sign_in_as_staff(client, make_client):
    person = make_client()
    response = submit(client, "/staff/login", {"email": person.email,
                                               "password": person.password})
    assert response.status_code == 200
    assert client.get("/staff/").status_code == 302


def test_deactivated_staff_are_signed_out_at_once(client, auth, make_staff, app):
    person = make_staff(role="reception")
    auth.login(person, area="staff")
    with app.app_context():
        member = db.session.scalar(select(StaffMember))
        member.active = False
        db.session.commit()
    response = client.get("/staff/")
    assert response.headers["Location"] == "/staff/login"
    assert client.get("/staff/").headers["Location"].startswith("/staff/login")


def test_staff_sessions_idle_out_after_15_minutes(client, auth, make_staff, app):
    from shared.models import UserSession

    auth.login(make_staff(), area="staff")
    with app.app_context():
        row = db.session.scalar(select(UserSession))
        row.last_seen_at -= timedelta(minutes=16)
        db.session.commit()
    assert client.get("/staff/").status_code == 302


def test_five_wrong_codes_restart_a_staff_sign_in_and_never_lock_the_account(
    client, make_staff, totp_clock, outbox
):
    member = make_staff(role="admin")
    login = {"email": member.email, "password": member.password}
    for _ in range(2):  # once locked the whole account for the day
        assert submit(client, "/staff/login", login).headers["Location"] == "/staff/login/code"
        for attempt in range(5):
            answer = submit(client, "/staff/login/code",
                            {"code": totp_clock.wrong_code(member.totp_secret)})
            assert answer.status_code == (302 if attempt == 4 else 200)
        assert answer.headers["Location"] == "/staff/login"
        assert "fünf falsche Codes" in client.get("/staff/login").get_data(as_text=True)
    warning = outbox.last_to(member.email)
    assert warning["Subject"] == "Jemand scheint Ihr Passwort zu kennen"
    assert "/staff/account/security" in warning.get_content()

    assert submit(client, "/staff/login", login).headers["Location"] == "/staff/login/code"
    totp_clock.advance()
    done = submit(client, "/staff/login/code", {"code": totp_clock.code(member.totp_secret)})
    assert done.headers["Location"] == "/staff/"


def test_guesses_at_the_staff_confirmation_are_security_events(app, client, auth, make_staff,
                                                              totp_clock):
    from shared import security_log
    from tests.conftest import age_sign_ins, security_events

    member = make_staff(role="caseworker")
    auth.login(member, area="staff")
    age_sign_ins(app)
    answer = submit(client, "/staff/account/confirm",
                    {"password": "guess-xxxxxxxxxxxx", "code": "123456"})
    assert "Das ist nicht Ihr Passwort." in answer.get_data(as_text=True)
    totp_clock.advance()
    assert submit(client, "/staff/account/confirm", {
        "password": member.password, "code": totp_clock.code(member.totp_secret)
    }).headers["Location"] == "/staff/account/security"
    with app.app_context():
        ref = security_log.pseudonym(member.account_id)
    assert security_events(app, "reauth") == [("failed", ref), ("ok", ref)]


def test_team_changes_are_security_events_about_the_changed_account(app, client, auth,
                                                                    make_staff):
    from shared import security_log
    from tests.conftest import security_events, staff_member_id

    admin = make_staff(role="admin")
    receptionist = make_staff(role="reception")
    auth.login(admin, area="staff")
    target = staff_member_id(app, receptionist)
    for action, data in (("role", {"role": "caseworker"}), ("deactivate", {}),
                         ("activate", {}), ("invite", {})):
        answer = submit(client, f"/staff/team/{target}/{action}", data, form_url="/staff/team")
        assert answer.headers["Location"] == "/staff/team", action
    # An admin cannot demote themselves: refused, and recorded about the admin.
    submit(client, f"/staff/team/{staff_member_id(app, admin)}/role", {"role": "reception"},
           form_url="/staff/team")
    with app.app_context():
        changed = security_log.pseudonym(receptionist.account_id)
        own = security_log.pseudonym(admin.account_id)
        assert db.session.get(StaffMember, target).role == "caseworker"
    assert security_events(app, "staff.changed") == [("ok", changed)] * 4 + [("refused", own)]


def test_a_staff_form_posted_after_the_session_ended_leads_after_sign_in_to_a_page(
        app, client, make_staff, totp_clock):
    import uuid

    from tests.conftest import csrf_token

    member = make_staff(role="admin")
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    stale = client.post(f"/staff/break-glass/{uuid.uuid4()}/reviewed",
                        data={"csrf_token": token},
                        headers={"Referer": "http://localhost/staff/break-glass"})
    assert stale.headers["Location"] == "/staff/login?next=/staff/break-glass"
    password = submit(client, stale.headers["Location"],
                      {"email": member.email, "password": member.password})
    assert password.headers["Location"] == "/staff/login/code"
    totp_clock.advance()
    done = submit(client, "/staff/login/code", {"code": totp_clock.code(member.totp_secret)})
    assert done.headers["Location"] == "/staff/break-glass"
    assert client.get(done.headers["Location"]).status_code == 200
    submit(client, "/staff/logout", {})

    # Without a Referer: the staff home page, not the address that takes no GET.
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    stale = client.post(f"/staff/break-glass/{uuid.uuid4()}/reviewed",
                        data={"csrf_token": token})
    assert stale.headers["Location"] == "/staff/login"


def test_the_staff_code_step_ends_five_minutes_after_the_password(app, make_staff,
                                                                  sign_in_clock):
    from tests.conftest import csrf_token

    person = make_staff(role="caseworker")
    five_minutes = 5 * 60
    outcomes = {}
    for waited in (five_minutes - 5, five_minutes + 1):
        browser = app.test_client()
        password = submit(browser, "/staff/login",
                          {"email": person.email, "password": person.password})
        assert password.headers["Location"] == "/staff/login/code"
        form = browser.get("/staff/login/code").get_data(as_text=True)
        sign_in_clock.advance(waited)
        answer = browser.post("/staff/login/code", data={
            "csrf_token": csrf_token(form), "code": sign_in_clock.code(person.totp_secret)})
        outcomes[waited] = answer.headers["Location"]
        if waited > five_minutes:
            assert "Bitte melden Sie sich noch einmal an." in browser.get(
                "/staff/login").get_data(as_text=True)
            assert browser.get("/staff/").headers["Location"].startswith("/staff/login")
    assert outcomes == {five_minutes - 5: "/staff/", five_minutes + 1: "/staff/login"}


@pytest.mark.parametrize("crafted", ["/\\evil.example", "/%5C%5Cevil.example",
                                     "/%5Cevil.example", "//evil.example", "/%09/evil.example",
                                     "/%5C/evil.example"])
def test_a_crafted_next_never_leads_a_staff_member_away(app, client, make_staff, totp_clock,
                                                        crafted):
    """Even with a page at the root that the URL map would match (a help page, say)."""
    from tests.conftest import csrf_token

    app.add_url_rule("/<name>", "root_page", lambda name: name)
    person = make_staff(role="caseworker")
    page = client.get(f"/staff/login?next={crafted}")
    password = client.post(f"/staff/login?next={crafted}", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "email": person.email,
        "password": person.password})
    assert password.headers["Location"] == "/staff/login/code"
    totp_clock.advance()
    answer = submit(client, "/staff/login/code", {"code": totp_clock.code(person.totp_secret)})
    assert answer.headers["Location"] == "/staff/"
