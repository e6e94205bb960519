"""Browser fixtures: the app served on localhost in a thread, and Debian's Chromium driven
by Playwright on a phone-sized screen. Skipped with a message when Chromium is missing.

Every wait is for a state the page reaches (a URL, an element, a held request), never for
an amount of time: on a loaded one-core machine a step can take many seconds. The timeout
only bounds how long a failing test hangs, so it is generous."""

from __future__ import annotations

import os
import time

import pytest

CHROMIUM = os.environ.get("EINBLICK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
TIMEOUT_MS = 60_000  # for actions, navigations and expect(): a failure, not a pace


def pytest_collection_modifyitems(config, items):
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"browser tests skipped: no Chromium at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "browser tests skipped: playwright is not installed (pip install -e '.[dev]')"
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # 5 s by default
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def new_context(browser, live_server: str, **options):
    """A context on the live server, German unless told otherwise, with TIMEOUT_MS."""
    context = browser.new_context(base_url=live_server, **{"locale": "de-DE", **options})
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def phone(browser, live_server):
    """A page in a 360×740 phone context, German, that records requests to other hosts."""
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    page.foreign_requests = []
    page.on("request", lambda request: None if request.url.startswith(live_server)
            or request.url.startswith("data:") else page.foreign_requests.append(request.url))
    yield page
    context.close()


def add_virtual_authenticator(page, transport: str = "internal") -> tuple[object, str]:
    """A Chromium virtual authenticator with resident keys and user verification."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    result = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": transport, "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    return cdp, result["authenticatorId"]


class HeldRequests:
    """The next ``count`` requests matching ``url`` are held until the test lets them go.

    This puts the page's events in the order a test describes on a fast machine and on a
    loaded one alike, where a route that sleeps would only hope that the page is quicker.
    """

    def __init__(self, page, url: str, *, count: int = 1) -> None:
        self.page, self.url, self.to_hold, self.held = page, url, count, []
        page.route(url, self._route)

    def _route(self, route) -> None:
        if self.to_hold > 0:
            self.to_hold -= 1
            self.held.append(route)
        else:
            route.continue_()

    def wait_until_held(self) -> None:
        """Until the page has sent the held requests (Playwright hands its route events
        over while the test waits in a Playwright call, hence the short waits)."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while self.to_hold > 0:
            assert time.monotonic() < deadline, f"the page never requested {self.url}"
            self.page.wait_for_timeout(20)

    def release(self) -> None:
        self.wait_until_held()
        for route in self.held:
            route.continue_()
        self.held = []


def assert_fits_phone(page) -> None:
    """No horizontal scrolling at 360 px."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def assert_accessible(page) -> None:
    """axe-core finds no serious or critical WCAG 2.1 A/AA violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in bad]


WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page, *, within: str | None = None, shut: str = ".site-menu, .lang-menu",
                   targets: int = 3) -> list[tuple[str, str, list]]:
    """Every WCAG 2.1 A/AA violation axe finds on the page (or the part ``within``),
    whatever its impact, with the folded parts (<details>) open; the panels matching
    ``shut`` (the header's menu and language panels) stay shut unless they are what is
    checked, since an open panel covers the page and axe could not judge the contrast
    beneath. axe returns only its violations: the passes it would list as well doubled
    the time of a page (the sweep of every page runs it some 300 times)."""
    from axe_playwright_python.base import AXE_SCRIPT

    page.evaluate("""([within, shut]) => document.querySelectorAll('details').forEach(d => {
        d.open = within ? d.matches(within) || d.closest(within) !== null
                        : !d.matches(shut); })""", [within, shut])
    page.evaluate(AXE_SCRIPT)
    violations = page.evaluate(
        "([within, options]) => axe.run(within || document, options).then(r => r.violations)",
        [within, {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}])
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:targets])
            for v in violations]


def open_sign_in(page, path: str) -> None:
    """Open a sign-in page and wait until its passkey autofill has fetched its challenge.
    That answer writes the session cookie too: a password sent before it arrives can
    lose its pending sign-in to it (seen once in CI under load)."""
    page.goto(path)
    page.wait_for_load_state("networkidle")


def staff_sign_in(page, person) -> None:
    """Password and the current TOTP code, as a caseworker on a tablet would."""
    import pyotp

    open_sign_in(page, "/staff/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    page.wait_for_url("**/staff/login/code")
    page.fill("input[name=code]", pyotp.TOTP(person.totp_secret).now())
    page.click("button#submit")
    page.wait_for_url("**/staff/")


def client_sign_in(page, person) -> None:
    """Email and password on the portal's sign-in page; lands on the start page."""
    open_sign_in(page, "/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button#submit")
    page.wait_for_url("**/home")


def choose_language(page, code: str) -> None:
    """Open the language switch in the header and choose a language by its own name (a
    POST that comes back to the same page, now in that language)."""
    from playwright.sync_api import expect

    switch = page.locator(".lang-menu")
    if switch.get_attribute("open") is None:
        switch.locator("summary").click()
    switch.locator(f"li[lang='{code}'] button").click()
    expect(page.locator("html")).to_have_attribute("lang", code)


class Catalogue:
    """The app's own translations of one language (the .mo catalogue through Flask-Babel),
    so a test compares what a page says with what the catalogue says rather than with
    words copied into the test. Remembers the messages the language still lacks (shown in
    English), for the test to assert on when it has walked its way."""

    def __init__(self, app, locale: str) -> None:
        self.app, self.locale, self.missing = app, locale, []

    def __call__(self, message: str, **variables) -> str:
        from flask_babel import force_locale, gettext

        with self.app.test_request_context(), force_locale(self.locale):
            text = gettext(message, **variables)
        if text == (message % variables if variables else message):
            self.missing.append(message)
        return text


def click_in_nav(page, selector: str) -> None:
    """Click a link or button of the main navigation as a reader does: on a phone the
    links are behind the menu button, which is opened first; on a wide screen they are
    in the bar below the header."""
    menu = page.locator(".site-menu")
    if menu.count() and menu.is_visible():
        if not menu.evaluate("menu => menu.open"):
            menu.locator("summary").click()
        page.locator(".site-menu__panel").locator(selector).click()
    else:
        page.locator(".site-nav").locator(selector).click()


def sign_out(page) -> None:
    """The sign-out button: in the main navigation, or in the header where a page has
    none (an account before its second factor is set up, or whose hand-over waits)."""
    if page.locator(".site-menu, .site-nav").count():
        click_in_nav(page, ".site-header__logout button")
    else:
        page.click(".site-header__logout button")
