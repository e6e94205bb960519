"""Forms survive the idle timeout (issue 14, item 6), at 360×740 in German.

With JavaScript the page warns two minutes before the idle limit and "Angemeldet bleiben"
keeps the session; the page's clock is moved (Playwright's clock), never waited for.
Without JavaScript a form sent after the session ended (its last use moved back in the
database) is kept: after signing in again the same form is filled in, and sending it works.
(Playwright cannot evaluate scripts in a page without JavaScript, so the layout and axe
checks run in the test with JavaScript, on the same pages' layout.)
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.extensions import db
from shared.models import Assignment, Client, FormDraft, Note, StaffMember, UserSession
from shared.models.base import utcnow
from tests.browser.conftest import (
    PHONE,
    assert_accessible,
    assert_fits_phone,
    client_sign_in,
    new_context,
)

WARNING = "Sie werden in 2 Minuten zu Ihrer Sicherheit abgemeldet."
ENDED = "Sie wurden zu Ihrer Sicherheit abgemeldet."
KEPT = "Ihre Eingaben wurden aufbewahrt. Nach der Anmeldung sehen Sie sie wieder."
REFILLED = "Bitte prüfen Sie sie und senden Sie das Formular noch einmal ab."


def idle_for(app, person, minutes: float) -> None:
    """The server's side of the minutes the page's clock is moved on."""
    with app.app_context():
        for row in db.session.scalars(select(UserSession).where(
                UserSession.account_id == person.account_id)):
            row.last_seen_at -= timedelta(minutes=minutes)
        db.session.commit()


def move_on(page, app, person, minutes: float, *, asks: bool) -> None:
    """Let ``minutes`` pass for the page and the server alike; when the page is due to ask
    the server how long is left (before it warns or says the session ended), wait for
    its answer."""
    idle_for(app, person, minutes)
    seconds = round(minutes * 60)
    if asks:
        with page.expect_response(lambda r: "/session/status" in r.url):
            page.clock.fast_forward(seconds * 1000)
    else:
        page.clock.fast_forward(seconds * 1000)


def last_seen(app, person):
    with app.app_context():
        return db.session.scalar(select(UserSession.last_seen_at).where(
            UserSession.account_id == person.account_id))


def staff_sign_in_at(page, person, clock, *, then: str) -> None:
    """Password and a fresh code (the test's TOTP clock moves one step on, so a second
    sign-in never repeats a used code)."""
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    page.wait_for_url("**/staff/login/code")
    clock.advance()
    page.fill("input[name=code]", clock.code(person.totp_secret))
    page.click("button#submit")
    page.wait_for_url(then)


def caseworker_with_client(app, make_client, make_staff):
    make_client(full_name="Mia Demir")
    worker = make_staff(role="caseworker")
    with app.app_context():
        client = db.session.scalar(select(Client))
        member = db.session.scalar(select(StaffMember))
        db.session.add(Assignment(client_id=client.id, staff_member_id=member.id))
        db.session.commit()
        return worker, client.id


@pytest.mark.parametrize("area", ["portal", "staff"])
def test_the_warning_comes_two_minutes_before_and_stay_signed_in_keeps_the_session(
        browser, live_server, app, make_client, make_staff, totp_clock, area):
    from playwright.sync_api import expect

    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    page.clock.install()  # the page's timers and Date.now, moved by the test
    calls = []
    page.on("request", lambda request: calls.append(request.url)
            if "/session/keep-alive" in request.url else None)
    if area == "portal":
        person = make_client(full_name="Mia Demir")
        client_sign_in(page, person)
        page.goto("/household/new")
        field = page.locator("input[name=full_name]")
        limit = 30
    else:
        person, _client_id = caseworker_with_client(app, make_client, make_staff)
        page.goto("/staff/login")
        staff_sign_in_at(page, person, totp_clock, then="**/staff/")
        field = page.locator("a.site-header__brand")
        limit = 15
    warning = page.locator("[data-idle-state=warning]")
    ended = page.locator("[data-idle-state=ended]")
    expect(warning).to_be_hidden()
    field.focus()  # the user is typing here (or has a link in focus) when the warning comes
    if area == "portal":
        page.keyboard.type("Emil")

    move_on(page, app, person, limit - 3, asks=False)  # three minutes left: no warning yet
    expect(warning).to_be_hidden()
    move_on(page, app, person, 65 / 60, asks=True)  # less than two minutes left
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(WARNING)
    assert calls == []  # the page never kept the session alive by itself
    assert_fits_phone(page)
    assert_accessible(page)

    before = last_seen(app, person)
    page.get_by_role("button", name="Angemeldet bleiben").click()
    expect(warning).to_be_hidden()
    expect(field).to_be_focused()  # back where the user was, what was typed still there
    if area == "portal":
        expect(field).to_have_value("Emil")
    assert len(calls) == 1
    assert last_seen(app, person) - before > timedelta(minutes=limit - 3)
    assert utcnow() - last_seen(app, person) < timedelta(minutes=1)

    # The limit counts from the click: nothing until nearly a whole limit later, then the
    # warning, then, with no click, the end.
    move_on(page, app, person, limit - 3, asks=False)
    expect(warning).to_be_hidden()
    move_on(page, app, person, 65 / 60, asks=True)
    expect(warning).to_be_visible()
    move_on(page, app, person, 2, asks=True)
    expect(ended).to_be_visible()
    expect(ended).to_contain_text(ENDED)
    expect(warning).to_be_hidden()
    sign_in = ended.get_by_role("link", name="Wieder anmelden")
    expect(sign_in).to_have_attribute("href", "/login?next=/household/new" if area == "portal"
                                      else "/staff/login?next=/staff/")
    assert len(calls) == 1
    assert_accessible(page)
    context.close()


def test_without_javascript_a_parents_form_survives_the_timeout(browser, live_server, app,
                                                                make_client):
    from playwright.sync_api import expect

    parent = make_client(full_name="Mia Demir")
    context = new_context(browser, live_server, java_script_enabled=False, **PHONE)
    page = context.new_page()
    client_sign_in(page, parent)
    page.goto("/household/new")
    page.fill("input[name=full_name]", "Emil Demir")
    page.fill("input[name=birth_date]", "2019-05-04")
    page.click("button#submit")
    page.wait_for_url("**/household")
    page.locator("a[href$='/edit']").first.click()
    page.wait_for_url("**/household/*/edit")
    edit_url = page.url
    expect(page.locator("[data-idle-state=warning]")).to_be_hidden()
    page.fill("textarea[name=allergies]", "Erdnüsse und Sesam")
    page.fill("input[name=contact_name]", "Oma Ayse")
    page.fill("input[name=contact_phone]", "0170 1234567")
    idle_for(app, parent, 31)  # the parent looked up the phone number for half an hour

    page.click("button#submit")

    page.wait_for_url(lambda url: "/login?next=" in url)
    expect(page.locator("main")).to_contain_text(KEPT)
    with app.app_context():
        assert db.session.scalar(select(FormDraft)) is not None
        assert db.session.scalar(select(Client).where(Client.account_id.is_(None))
                                 ).allergies in (None, "")
    page.fill("input[name=email]", parent.email)
    page.fill("input[name=password]", parent.password)
    page.click("button#submit")
    page.wait_for_url(edit_url)
    expect(page.locator("main")).to_contain_text(REFILLED)
    expect(page.locator("textarea[name=allergies]")).to_have_value("Erdnüsse und Sesam")
    expect(page.locator("input[name=contact_phone]")).to_have_value("0170 1234567")
    page.click("button#submit")
    page.wait_for_url("**/household")
    with app.app_context():
        child = db.session.scalar(select(Client).where(Client.account_id.is_(None)))
        assert child.allergies == "Erdnüsse und Sesam"
        assert db.session.scalar(select(FormDraft)) is None
    context.close()


def test_without_javascript_a_caseworkers_note_survives_the_timeout(
        browser, live_server, app, make_client, make_staff, totp_clock):
    from playwright.sync_api import expect

    worker, client_id = caseworker_with_client(app, make_client, make_staff)
    context = new_context(browser, live_server, java_script_enabled=False, **PHONE)
    page = context.new_page()
    page.goto("/staff/login")
    staff_sign_in_at(page, worker, totp_clock, then="**/staff/")
    page.goto(f"/staff/clients/{client_id}")
    note = "Gespräch mit Mia: Schulwechsel im Sommer geplant."
    page.fill("textarea[name=body]", note)
    page.check("#note-visible-to-client")
    idle_for(app, worker, 16)  # staff are signed out after 15 minutes

    page.click("form[action$='/notes'] button[type=submit]")

    page.wait_for_url(lambda url: "/staff/login?next=" in url)
    expect(page.locator("main")).to_contain_text(KEPT)
    staff_sign_in_at(page, worker, totp_clock, then=f"**/staff/clients/{client_id}")
    expect(page.locator("main")).to_contain_text(REFILLED)
    expect(page.locator("textarea[name=body]")).to_have_value(note)
    expect(page.locator("#note-visible-to-client")).to_be_checked()
    expect(page.locator("#document-visible-to-client")).not_to_be_checked()
    with app.app_context():
        assert db.session.scalar(select(Note)) is None  # nothing was sent unasked
    page.click("form[action$='/notes'] button[type=submit]")
    page.wait_for_selector(f"text={note}")
    with app.app_context():
        saved = db.session.scalar(select(Note))
        assert saved.body == note
        assert saved.visible_to_client
        assert db.session.scalar(select(FormDraft)) is None
    context.close()


def test_a_session_used_in_another_tab_is_not_reported_as_ending(browser, live_server, app,
                                                                 make_client):
    """Two tabs: the parent works in the second one. When the first tab's count says two
    minutes are left, it asks the server, learns the session was used, and stays quiet."""
    from playwright.sync_api import expect

    person = make_client(full_name="Mia Demir")
    context = new_context(browser, live_server, **PHONE)
    first = context.new_page()
    first.clock.install()
    client_sign_in(first, person)
    move_on(first, app, person, 27, asks=False)
    second = context.new_page()
    second.goto("/household")  # the session is used: the idle limit counts from now
    assert utcnow() - last_seen(app, person) < timedelta(minutes=1)
    with first.expect_response(lambda r: "/session/status" in r.url) as answer:
        first.clock.fast_forward("01:05")
    assert answer.value.json()["seconds_left"] > 29 * 60
    expect(first.locator("[data-idle-state=warning]")).to_be_hidden()
    expect(first.locator("[data-idle-state=ended]")).to_be_hidden()
    context.close()
