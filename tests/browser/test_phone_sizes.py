"""Phones: buttons and navigation are at least 44 px tall at 360 px, and at 320 px with
the text at 200 % nothing scrolls sideways (issue 14, item 9)."""

import pytest

from tests.browser.conftest import PHONE, client_sign_in, new_context, staff_sign_in

pytestmark = pytest.mark.markup  # the same on every database (tests/conftest.py)

PORTAL_PAGES = ["/home", "/bookings", "/bookings/new", "/household", "/account",
                "/account/security", "/my-data", "/consents"]
PUBLIC_PAGES = ["/login", "/register", "/reset", "/contact"]

# Visible primary actions and navigation: buttons, button-like links, the menu and its links.
TARGETS = """() => {
  const selector = "button:not(.kern-btn--x-small), .kern-btn:not(.kern-btn--x-small), "
    + ".site-nav a, .site-menu summary, .site-menu__panel a, .site-menu__panel button";
  return [...document.querySelectorAll(selector)]
    .filter(el => el.offsetParent !== null && el.getClientRects().length)
    .map(el => ({text: (el.innerText || el.getAttribute("aria-label") || "").trim().slice(0, 40),
                 height: el.getBoundingClientRect().height}))
    .filter(target => target.height < 44);
}"""


def too_small(page) -> list:
    """The visible targets less than 44 px tall, with the menu opened if there is one."""
    small = page.evaluate(TARGETS)
    menu = page.locator(".site-menu")
    if menu.count() and menu.is_visible():
        menu.locator("summary").click()
        small += page.evaluate(TARGETS)
    return small


@pytest.fixture
def signed_in_phone(browser, live_server, make_client):
    person = make_client(full_name="Mia Demir")
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    client_sign_in(page, person)
    yield page
    context.close()


def test_actions_and_navigation_are_44_px_tall_at_360_px(browser, live_server,
                                                         signed_in_phone, make_staff):
    problems = {}
    for path in PORTAL_PAGES:
        signed_in_phone.goto(path)
        if small := too_small(signed_in_phone):
            problems[path] = small
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    for path in PUBLIC_PAGES:
        page.goto(path)
        if small := too_small(page):
            problems[path] = small
    staff_sign_in(page, make_staff())
    for path in ["/staff/", "/staff/clients", "/staff/bookings"]:
        page.goto(path)
        if small := too_small(page):
            problems[path] = small
    context.close()
    assert problems == {}


def test_nothing_scrolls_sideways_at_320_px_with_text_at_200_percent(browser, live_server,
                                                                     make_client):
    person = make_client(full_name="Mia Demir")
    context = new_context(browser, live_server, **{**PHONE, "viewport": {"width": 320,
                                                                          "height": 640}})
    page = context.new_page()
    overflowing = {}

    def check(path: str) -> None:
        page.goto(path)
        page.evaluate("document.documentElement.style.fontSize = '200%'")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 0:
            wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter(el => el.getBoundingClientRect().right
                              > document.documentElement.clientWidth + 1)
                .slice(0, 3).map(el => el.tagName + '.' + el.className)""")
            overflowing[path] = (overflow, wide)

    for path in PUBLIC_PAGES:
        check(path)
    client_sign_in(page, person)
    for path in PORTAL_PAGES:
        check(path)
    context.close()
    assert overflowing == {}
