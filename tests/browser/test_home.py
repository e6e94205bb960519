"""On a 360×740 phone a parent signs in and lands on the start page: the navigation is
one line with a menu button, the next appointment is right there with the team's number
to tap, and the menu (by touch, by keyboard, without JavaScript) leads to "my data"."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Client
from tests.browser.conftest import (
    PHONE,
    assert_accessible,
    assert_fits_phone,
    choose_language,
    client_sign_in,
    new_context,
)
from tests.conftest import add_booking

# Tuesday 5 March 2030, 15:40 UTC: 16:40 in Berlin.
START = datetime(2030, 3, 5, 15, 40, tzinfo=UTC)


@pytest.fixture
def parent(app, make_client, make_bookable):
    person = make_client(email="mia.demir@example.org", full_name="Mia Demir")
    counselling = make_bookable("Elternberatung")
    with app.app_context():
        own = db.session.scalar(select(Client).where(Client.account_id == person.account_id))
        add_booking(own, counselling, end=START + timedelta(minutes=45), minutes=45)
        db.session.commit()
    return person


def content_starts_at(page) -> float:
    """How far down the page the main content begins, in CSS pixels."""
    return page.locator("main").bounding_box()["y"]


def test_the_start_page_on_a_phone(phone, parent):
    page = phone
    client_sign_in(page, parent)
    assert page.url.endswith("/home")

    assert content_starts_at(page) <= 60
    menu = page.locator(".site-menu > summary")
    expect(menu).to_have_text("Menü")
    assert menu.bounding_box()["height"] >= 44
    expect(page.locator(".site-menu__panel")).to_be_hidden()

    next_appointment = page.locator(".home-next")
    expect(next_appointment).to_contain_text("Dienstag, 5. März 2030, 16:40")
    expect(next_appointment).to_contain_text("Elternberatung")
    expect(next_appointment).to_contain_text("Ort: Raum 2")
    call = next_appointment.locator("a[href^='tel:']")
    expect(call).to_have_attribute("href", "tel:+49301234567")
    expect(call).to_contain_text("+49 30 1234567")
    assert call.bounding_box()["height"] >= 44
    with page.expect_download() as info:
        next_appointment.locator("a[href$='/appointment.ics']").click()
    assert b"Elternberatung" in open(info.value.path(), "rb").read()
    assert_fits_phone(page)
    assert_accessible(page)

    menu.click()
    panel = page.locator(".site-menu__panel")
    expect(panel).to_be_visible()
    for link in panel.locator("a").all():
        assert link.bounding_box()["height"] >= 44, link.inner_text()
    assert_fits_phone(page)
    assert_accessible(page)
    panel.get_by_role("link", name="Meine Daten").click()
    page.wait_for_url("**/my-data")

    # By keyboard: Tab to the menu button (past the language switch), Enter opens it, Tab
    # reaches the links.
    page.goto("/home")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the brand
    while not page.evaluate("document.activeElement.matches('.site-menu > summary')"):
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    while page.evaluate("document.activeElement.textContent.trim()") != "Meine Daten":
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/my-data")


def test_the_menu_works_without_javascript_and_in_english(browser, live_server, parent):
    context = new_context(browser, live_server, locale="en-GB", java_script_enabled=False,
                          **PHONE)
    page = context.new_page()
    client_sign_in(page, parent)
    choose_language(page, "en")  # the account says German
    expect(page.locator("h1")).to_have_text("Overview")
    assert content_starts_at(page) <= 60
    shown = page.locator(".home-next .kern-body--bold").inner_text()
    assert "2030" in shown
    expect(page.locator(".home-next a[href^='tel:']")).to_contain_text("Call us")
    page.locator(".site-menu > summary").click()
    page.locator(".site-menu__panel").get_by_role("link", name="My data").click()
    page.wait_for_url("**/my-data")
    page.goto("/bookings")  # the same time, said the same way, as on the appointments page
    assert page.locator(".booking .kern-body--bold").inner_text() == shown
    context.close()


def test_on_a_wide_screen_the_links_stand_in_a_bar(browser, live_server, parent):
    context = new_context(browser, live_server, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    client_sign_in(page, parent)
    expect(page.locator(".site-menu")).to_be_hidden()
    bar = page.locator(".site-nav")
    expect(bar.get_by_role("link", name="Übersicht")).to_have_attribute("aria-current", "page")
    bar.get_by_role("link", name="Meine Daten").click()
    page.wait_for_url("**/my-data")
    assert_accessible(page)
    context.close()
