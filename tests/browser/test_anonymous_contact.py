"""Anonymous first contact (issue 17, item 4), in German, as the people do it: on a 320 px
phone without JavaScript a young person writes to the team of Jugendberatung with only a
chosen name and a password, and lands in the conversation; at a desk the caseworker sees
the name marked as an anonymous contact and answers; on another phone the young person
signs in with the name and reads the answer. axe finds nothing on the pages of the way,
and nothing scrolls sideways at 320 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    PHONE,
    Catalogue,
    assert_fits_phone,
    axe_violations,
    new_context,
    staff_sign_in,
)

PSEUDONYM = "Sonnenblume 7"
PASSWORD = "leise Wolken über dem Hafen"
TOPIC = "Streit zu Hause"
BODY = "Meine Eltern streiten jede Nacht, und ich kann nicht schlafen."
ANSWER = "Danke, dass Sie uns schreiben. Sie können uns jederzeit hier erreichen."
NARROW = {**PHONE, "viewport": {"width": 320, "height": 740}}


@pytest.fixture
def team(make_bookable):
    return make_bookable("Jugendberatung")


def test_an_anonymous_first_contact_is_answered_and_read(app, browser, live_server, team):
    de = Catalogue(app, "de")
    phone = new_context(browser, live_server, java_script_enabled=False, **NARROW)
    page = phone.new_page()
    page.goto("/")
    page.get_by_role("link", name=de("Write anonymously")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(de("Write anonymously"))
    assert_fits_phone(page)
    page.get_by_label(de("A name you choose")).fill(PSEUDONYM)
    page.get_by_label(de("Choose a password")).fill(PASSWORD)
    page.get_by_label(de("To which team?")).select_option(label="Jugendberatung")
    page.get_by_label(de("Topic")).fill(TOPIC)
    page.get_by_label(de("Your message")).fill(BODY)
    page.get_by_role("button", name=de("Send message")).click()
    expect(page.get_by_text(BODY)).to_be_visible()
    path = page.url.removeprefix(live_server)
    assert_fits_phone(page)
    phone.close()

    desk = new_context(browser, live_server, viewport={"width": 1280, "height": 800})
    caseworker = desk.new_page()
    staff_sign_in(caseworker, team.staff)
    caseworker.goto("/staff/messages")
    marked = de("%(pseudonym)s (anonymous contact)", pseudonym=PSEUDONYM)
    expect(caseworker.get_by_role("link", name=re.compile(re.escape(marked)))).to_be_visible()
    caseworker.get_by_role("link", name=re.compile(re.escape(TOPIC))).click()
    expect(caseworker.get_by_text(BODY)).to_be_visible()
    expect(caseworker.get_by_role("link", name=de("Open the case file"))).to_have_count(0)
    caseworker.get_by_label(de("Your answer")).fill(ANSWER)
    caseworker.get_by_role("button", name=de("Send answer")).click()
    expect(caseworker.get_by_text(ANSWER)).to_be_visible()
    desk.close()

    # axe needs JavaScript: the pages of the way again, in a browser that runs it.
    again = new_context(browser, live_server, **NARROW)
    page = again.new_page()
    page.goto("/messages/anonymous")
    assert axe_violations(page) == []
    page.goto("/login")
    page.get_by_role("link", name=de("Sign in with your name")).click()
    assert_fits_phone(page)
    assert axe_violations(page) == []
    page.get_by_label(de("A name you choose")).fill(PSEUDONYM)
    page.get_by_label(de("Password"), exact=True).fill(PASSWORD)
    page.get_by_role("button", name=de("Sign in"), exact=True).click()
    page.wait_for_url("**/messages")
    page.goto(path)
    expect(page.get_by_text(ANSWER)).to_be_visible()
    assert_fits_phone(page)
    assert axe_violations(page) == []
    page.goto("/account/anonymous")
    expect(page.get_by_text(PSEUDONYM)).to_be_visible()
    assert_fits_phone(page)
    assert axe_violations(page) == []
    # The page of the emailed link for an address for notifications (it checks the link
    # only when its button is pressed).
    page.goto("/account/anonymous/email/link-from-the-email")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        de("Email address for notifications"))
    assert_fits_phone(page)
    assert axe_violations(page) == []
    assert de.missing == []
    again.close()
