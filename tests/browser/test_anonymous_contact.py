"""Anonymous first contact (issue 17, item 4), in English, as the people do it: on a 320 px
phone without JavaScript a young person picks English with the page's language switch and
writes to the team of youth counselling with only a chosen name and a password, and lands
in the conversation; at a desk the caseworker, who reads English too, sees the name marked
as an anonymous contact and answers; on another phone the young person picks English
again, signs in with the name, reads the answer, finds the caseworker's read in the access
log and asks for notifications by email. Every page says lang="en" and shows no German of
the catalogue; axe finds nothing on the pages of the way, and nothing scrolls sideways at
320 px. (The German words of these pages: tests/browser/test_messages.py; one language per
journey keeps the suite within its time.)"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, Message, MessageThread, Service
from tests.browser.conftest import (
    PHONE,
    Catalogue,
    assert_fits_phone,
    axe_violations,
    choose_language,
    new_context,
    staff_sign_in,
)
from tests.helpers.languages import assert_reads_in_english, german_on

PSEUDONYM = "Sunflower 7"
PASSWORD = "quiet clouds over the harbour"
TOPIC = "Arguments at home"
BODY = "My parents argue every night, and I cannot sleep."
ANSWER = "Thank you for writing to us. You can reach us here at any time."
TEAM = "Youth counselling"
ADDRESS = "sunflower7@example.org"
NARROW = {**PHONE, "viewport": {"width": 320, "height": 740}}
# What people wrote stays as written; the rest of each page is the catalogue's English.
WRITTEN = (PSEUDONYM, TOPIC, BODY, ANSWER, TEAM, "T. Tester")


@pytest.fixture
def team(app, make_bookable):
    """Jugendberatung, with its English name as the organisation entered it."""
    bookable = make_bookable("Jugendberatung")
    with app.app_context():
        service = db.session.get(Service, bookable.service_id)
        service.translations = {"en": {"name": TEAM}}
        db.session.commit()
    return bookable


def in_english(page) -> None:
    """Each page of the way: English only, and nothing scrolls sideways at 320 px."""
    assert_reads_in_english(page, written=WRITTEN)
    assert_fits_phone(page)


def test_an_anonymous_first_contact_is_answered_and_read(app, browser, live_server, team,
                                                         outbox):
    en = Catalogue(app, "en")
    phone = new_context(browser, live_server, java_script_enabled=False, **NARROW)
    page = phone.new_page()
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "de")  # the browser says German
    assert german_on(page) != []  # the check below sees German where there is some
    choose_language(page, "en")  # as she would: the switch in the header, no JavaScript
    page.get_by_role("link", name=en("Write anonymously")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Write anonymously"))
    in_english(page)
    page.get_by_label(en("A name you choose")).fill(PSEUDONYM)
    page.get_by_label(en("Choose a password")).fill(PASSWORD)
    page.get_by_label(en("To which team?")).select_option(label=TEAM)
    page.get_by_label(en("Topic")).fill(TOPIC)
    page.get_by_label(en("Your message")).fill(BODY)
    page.get_by_role("button", name=en("Send message")).click()
    expect(page.get_by_text(BODY)).to_be_visible()
    path = page.url.removeprefix(live_server).split("#")[0]
    in_english(page)
    phone.close()
    with app.app_context():
        thread = db.session.scalar(select(MessageThread))
        account = db.session.get(Account, thread.started_by_account_id)
        assert account.pseudonym == PSEUDONYM
        assert account.is_pseudonymous
        assert account.email in (None, "")
        assert account.locale == "en"  # notifications in the language she chose
        assert (thread.topic, thread.service_id) == (TOPIC, team.service_id)
        assert path == f"/messages/{thread.id}"

    desk = new_context(browser, live_server, viewport={"width": 1280, "height": 800})
    caseworker = desk.new_page()
    staff_sign_in(caseworker, team.staff)
    caseworker.goto("/staff/messages")
    choose_language(caseworker, "en")
    marked = en("%(pseudonym)s (anonymous contact)", pseudonym=PSEUDONYM)
    expect(caseworker.get_by_role("link", name=re.compile(re.escape(marked)))).to_be_visible()
    assert_reads_in_english(caseworker, written=WRITTEN)
    caseworker.get_by_role("link", name=re.compile(re.escape(TOPIC))).click()
    expect(caseworker.get_by_text(BODY)).to_be_visible()
    expect(caseworker.get_by_role("link", name=en("Open the case file"))).to_have_count(0)
    assert_reads_in_english(caseworker, written=WRITTEN)
    caseworker.get_by_label(en("Your answer")).fill(ANSWER)
    caseworker.get_by_role("button", name=en("Send answer")).click()
    expect(caseworker.get_by_text(ANSWER)).to_be_visible()
    assert_reads_in_english(caseworker, written=WRITTEN)
    desk.close()
    with app.app_context():
        answer = db.session.scalar(select(Message).where(Message.from_staff.is_(True)))
        assert (answer.body, answer.thread_id) == (ANSWER, thread.id)
        assert answer.read_by_client_at is None

    # axe needs JavaScript: the pages of the way again, on another phone that runs it,
    # where she picks English again before signing in.
    again = new_context(browser, live_server, **NARROW)
    page = again.new_page()
    page.goto("/messages/anonymous")
    choose_language(page, "en")
    in_english(page)
    assert axe_violations(page) == []
    page.goto("/login")
    page.get_by_role("link", name=en("Sign in with your name")).click()
    in_english(page)
    assert axe_violations(page) == []
    page.get_by_label(en("A name you choose")).fill(PSEUDONYM)
    page.get_by_label(en("Password"), exact=True).fill(PASSWORD)
    page.get_by_role("button", name=en("Sign in"), exact=True).click()
    page.wait_for_url("**/messages")
    in_english(page)
    page.goto(path)
    expect(page.get_by_text(ANSWER)).to_be_visible()
    in_english(page)
    assert axe_violations(page) == []
    with app.app_context():
        assert db.session.get(Message, answer.id).read_by_client_at is not None
    page.goto("/account/anonymous")
    expect(page.get_by_text(PSEUDONYM)).to_be_visible()
    in_english(page)
    assert axe_violations(page) == []
    # Her access log names the caseworker who read her conversation.
    page.get_by_role("link", name=en("My data"), exact=True).last.click()
    page.wait_for_url("**/my-data")
    page.click("main a[href='/my-data/access']")
    page.wait_for_url("**/my-data/access")
    visit = page.locator(".access-log__group", has_text="T. Tester")
    expect(visit.locator(".access-log__item", has_text=f"({en('messages')}").first
           ).to_be_visible()
    in_english(page)
    # An address for notifications: the emailed link's page (a button confirms it).
    page.goto("/account/anonymous")
    page.get_by_label(en("Email address for notifications")).fill(ADDRESS)
    page.get_by_role("button", name=en("Send confirmation link")).click()
    page.goto(outbox.link(ADDRESS, "/account/anonymous/email/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        en("Email address for notifications"))
    in_english(page)
    assert axe_violations(page) == []
    again.close()
