"""Arabic on a 360×740 phone (issue 15, item 2): the main client pages (and since issue 17
the conversations) are right to left
and mirrored, nothing scrolls sideways, axe finds no WCAG 2.1 A/AA violation of any
impact, and emails, phone numbers and names keep their place in a sentence. The language
switch works by keyboard and without JavaScript."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, Client
from shared.services import consents, messages
from tests.browser.conftest import (
    PHONE,
    assert_fits_phone,
    axe_violations,
    choose_language,
    client_sign_in,
    new_context,
)

pytestmark = pytest.mark.markup  # the same on every database (tests/conftest.py)

VISITOR_PAGES = ["/", "/register", "/login", "/reset", "/contact", "/bookings/new",
                 "/messages/anonymous", "/login/anonymous"]
CLIENT_PAGES = ["/home", "/bookings", "/bookings/new", "/household", "/consents", "/my-data",
                "/my-data/access", "/account", "/account/security", "/messages",
                "/messages/new"]


def publish_photo_consent(app) -> str:
    with app.app_context():
        template = consents.save_template(
            key="fotos", texts={
                "de": {"title": "Fotos in der Kita",
                       "text": "Ich willige ein, dass Fotos gemacht werden."},
                "ar": {"title": "صور في الحضانة", "text": "أوافق على التقاط الصور لطفلي."}},
            purpose="Fotos", legal_basis="Art. 6 Abs. 1 lit. a DSGVO", audience="Kita-Team",
            guardian_signs=True)
        consents.publish(template.id)
        return str(template.id)


def in_arabic(browser, live_server, **options):
    context = new_context(browser, live_server, **{**PHONE, **options})
    context.add_cookies([{"name": "einblick_lang", "value": "ar", "url": live_server}])
    return context


def check_right_to_left(page, path: str, problems: dict) -> None:
    """Open ``path``; note what is not right to left, scrolls sideways or fails axe."""
    response = page.goto(path)
    found = []
    if response.status != 200:
        found.append(f"status {response.status}")
    html = page.locator("html")
    if (html.get_attribute("lang"), html.get_attribute("dir")) != ("ar", "rtl"):
        found.append(f"lang/dir {html.get_attribute('lang')}/{html.get_attribute('dir')}")
    try:
        assert_fits_phone(page)
    except AssertionError as overflow:
        found.append(str(overflow))
    found += axe_violations(page)
    if found:
        problems[path] = found


def test_client_pages_in_arabic_are_right_to_left_fit_and_pass_axe(browser, live_server, app,
                                                                    make_client,
                                                                    make_bookable):
    bookable = make_bookable()
    template_id = publish_photo_consent(app)
    person = make_client(full_name="Mia Demir")
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
        thread = messages.start_thread(
            account=db.session.get(Account, person.account_id), client_id=own,
            service_id=bookable.service_id, topic="نوم الطفل",
            body="ابني لا ينام جيداً منذ أسابيع.")
        conversation = f"/messages/{thread.id}"
    problems: dict[str, list] = {}

    visitor = in_arabic(browser, live_server)
    page = visitor.new_page()
    for path in VISITOR_PAGES + [f"/bookings/new/{bookable.service_id}"]:
        check_right_to_left(page, path, problems)
    check_right_to_left(page, page.locator("a.slot--next").get_attribute("href"), problems)
    visitor.close()

    context = in_arabic(browser, live_server)
    page = context.new_page()
    client_sign_in(page, person)
    for path in CLIENT_PAGES + [f"/bookings/new/{bookable.service_id}",
                                f"/consents/{template_id}/{own}", conversation]:
        check_right_to_left(page, path, problems)
    assert problems == {}

    # Mirrored: the menu button at the left, the organisation's name at the right.
    page.goto("/home")
    menu = page.locator(".site-menu__button").bounding_box()
    brand = page.locator(".site-header__brand").bounding_box()
    assert menu["x"] + menu["width"] <= brand["x"]
    # The email address stays one left-to-right piece inside the Arabic page.
    page.goto("/account")
    email = page.locator("main bdi[dir=ltr]", has_text=person.email)
    expect(email).to_have_count(1)
    assert email.evaluate("el => getComputedStyle(el).direction") == "ltr"
    # The organisation's phone number too, in a tel: link.
    page.goto("/contact")
    expect(page.locator("main a[href^='tel:'] bdi[dir=ltr]").first).to_be_visible()
    context.close()


def test_the_language_switch_works_by_keyboard(browser, live_server):
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    page.goto("/")
    summary = page.locator(".lang-menu summary")
    arabic = page.locator(".lang-menu li[lang='ar'] button")

    def tab_to(target) -> None:
        for _ in range(12):
            page.keyboard.press("Tab")
            if target.evaluate("el => el === document.activeElement"):
                return
        raise AssertionError("never reached by the Tab key")

    tab_to(summary)
    expect(summary).to_contain_text("Deutsch")
    page.keyboard.press("Enter")
    expect(page.locator(".lang-menu")).to_have_attribute("open", "")
    assert axe_violations(page, within=".lang-menu") == []
    tab_to(arabic)
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert page.url == f"{live_server}/"  # back on the same page
    expect(page.locator(".lang-menu summary")).to_contain_text("العربية")
    # Enter on the summary closes the list again without choosing.
    page.locator(".lang-menu summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".lang-menu")).to_have_attribute("open", "")
    page.keyboard.press("Enter")
    expect(page.locator(".lang-menu")).not_to_have_attribute("open", "")
    context.close()


def test_the_language_switch_works_without_javascript(browser, live_server):
    context = new_context(browser, live_server, java_script_enabled=False, **PHONE)
    page = context.new_page()
    page.goto("/register")
    choose_language(page, "ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert page.url == f"{live_server}/register"
    choose_language(page, "uk")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    assert page.url == f"{live_server}/register"
    context.close()
