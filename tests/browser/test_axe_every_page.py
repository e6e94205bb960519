"""axe on every page of the URL map, in German and English (issue 14, "Done when").

The demo data is loaded into the live server's database. Each demo account signs in in a
browser context of its own (staff at a desk, 1280×800; clients on a phone, 360×740); so do
a new staff member before setting up a second factor, and a client and a staff member who
stop at their code pages; a visitor browses without signing in. Every GET route of the URL
map that shows an HTML page is opened once per language: as the first account for which
one of its URLs (with the demo's ids filled in) answers 200, and as the visitor as well
where the page is public. The booking step of a chosen slot, reached only by a link, is
followed from the slots page. axe runs with the WCAG 2.1 A and AA rules, and every
violation counts, whatever its impact.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pyotp
import pytest

from tests.browser.conftest import PHONE, axe_violations, new_context, staff_sign_in
from tests.helpers.pages import SLOT_LINK, page_urls_by_route

pytestmark = pytest.mark.markup  # the same on every database (tests/conftest.py)

DESK = {"viewport": {"width": 1280, "height": 800}}
LANGUAGES = ("de", "en")

# (route, axe rule) pairs that still fail in pages other work is changing at the time of
# writing; the test asserts that each of them still fails, so a fix shows up as a failure
# that asks to shorten this list, and nothing new can hide behind it.
KNOWN: set[tuple[str, str]] = set()

# Routes no account reaches, and why. A new route that the sweep cannot reach fails the
# test until it is reached or named here.
NOT_REACHED = {
    "/healthz": "the load balancer's liveness check, plain text, not a page",
    "/readyz": "the load balancer's readiness check, plain text, not a page",
    "/my-data/documents/<uuid:document_id>": "a download, not a page",
    "/session/status": "the idle warning's time left, JSON for idle.js, not a page",
    "/staff/documents/<uuid:document_id>": "a download, not a page",
    "/messages/attachments/<uuid:attachment_id>": "a download, not a page",
    "/staff/messages/attachments/<uuid:attachment_id>": "a download, not a page",
    "/messages/<uuid:thread_id>/since": "new messages for messages.js, a fragment, not a page",
    "/staff/messages/<uuid:thread_id>/since": "new messages for messages.js, a fragment, "
                                              "not a page",
    "/account/anonymous": "an anonymous contact's account page (the demo has none): axe "
                          "checks it in tests/browser/test_anonymous_contact.py",
    "/account/anonymous/email/<token>": "reached by an emailed link only: axe checks it in "
                                        "tests/browser/test_anonymous_contact.py",
}


def _forget_first_recovery_codes(app) -> None:
    """As before the demo clients were given their first recovery codes."""
    from shared.auth import recovery
    from shared.extensions import db
    from shared.models.accounts import CLIENT
    from shared.services import accounts, demo

    with app.app_context():
        for person in demo.DEMO_ACCOUNTS:
            if person.role is None:
                recovery.delete_all(accounts.find_account(email=person.email, kind=CLIENT))
        db.session.commit()


# Pages that show something once (a GET that changes what the next one shows): the state
# before is made again before each visit.
SHOWN_ONCE = {"/account/security/recovery-codes/first": _forget_first_recovery_codes}


def _young_people(app, outbox, make_young_person) -> tuple[dict, dict]:
    """The own-account states the demo does not have: a parent whose invitation to a
    17-year-old is still open, a young person who took up the invitation and waits for
    staff to confirm it in person, and one whose account staff confirmed. Returns who
    signs in with what, and the URLs of the routes only they reach."""
    from shared.extensions import db
    from shared.models import Account
    from shared.services import casefile, household, staff
    from tests.conftest import YOUNG_PASSWORD, claim_invitation

    waiting = make_young_person("Lara Demir")
    confirmed = make_young_person("Tom Berg")
    with app.app_context():
        for person, address in ((waiting, "lara@example.org"), (confirmed, "tom@example.org")):
            household.invite_dependant(inviter=db.session.get(Account, person.parent.account_id),
                                       client_id=person.client_id, email=address)
    for address in ("lara@example.org", "tom@example.org"):
        claim_invitation(app, outbox, address)
    open_invitation = make_young_person("Ella Krüger")
    with app.app_context():
        admin = staff.find_staff(email="admin@example.org")
        caseworker = staff.find_staff(email="caseworker@example.org")
        casefile.assign(admin=admin, client_id=confirmed.client_id,
                        staff_member_id=caseworker.id)
        casefile.confirm_handover(member=caseworker, client_id=confirmed.client_id,
                                  session_id=None)
        household.invite_dependant(inviter=db.session.get(Account,
                                                          open_invitation.parent.account_id),
                                   client_id=open_invitation.client_id,
                                   email="ella@example.org")
    people = {"young person waiting": ("lara@example.org", YOUNG_PASSWORD),
              "young person confirmed": ("tom@example.org", YOUNG_PASSWORD),
              "parent of an invited child": (open_invitation.parent.email,
                                             open_invitation.parent.password)}
    urls = {"/account/handover": "/account/handover",
            "/household/<uuid:client_id>/invitation/withdraw":
                f"/household/{open_invitation.client_id}/invitation/withdraw",
            "/household/guardians/<uuid:link_id>":
                f"/household/guardians/{confirmed.guardianship_id}"}
    return people, urls


def _sign_in_client(page, email: str, password: str, totp_secret: str | None = None,
                    *, lands_on: str = "/home") -> None:
    """The portal's sign-in, with the authenticator app's code where the account has one."""
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button#submit")
    if totp_secret:
        page.wait_for_url("**/login/code")
        page.fill("input[name=code]", pyotp.TOTP(totp_secret).now())
        page.click("button#submit")
    page.wait_for_url(f"**{lands_on}")


def _fill_mias_file(app) -> None:
    """A note and a document in Mia's file, written by her caseworker, so that the case
    file and Mia's pages show one of each."""
    from shared.models.accounts import CLIENT
    from shared.services import accounts, casefile, staff
    from staff.clients import CATEGORY_LABELS

    with app.app_context():
        caseworker = staff.find_staff(email="caseworker@example.org")
        mia = accounts.find_account(email="mia@example.org", kind=CLIENT).client.id
        casefile.add_note(member=caseworker, client_id=mia, session_id=None,
                          body="Gespräch über die Schule", visible_to_client=True,
                          confidential=False)
        casefile.add_document(member=caseworker, client_id=mia, session_id=None,
                              filename="bericht.pdf",
                              data=b"%PDF-1.7\n%%EOF\n" + b"0" * 200,
                              category=next(iter(CATEGORY_LABELS)), visible_to_client=True,
                              confidential=False)


@pytest.fixture(autouse=True)
def _sign_ins_wait_for_the_sweep(monkeypatch):
    """The code pages of a half-finished sign-in are opened in both languages, minutes
    apart on a busy machine; the five minutes a pending sign-in lasts are tested in
    tests/portal/test_login.py."""
    from shared.auth import login_flow

    monkeypatch.setattr(login_flow, "PENDING_SECONDS", 2 * 60 * 60)


@pytest.fixture
def config_overrides() -> dict:
    """The sweep walks every page in two languages, for minutes on a busy machine: the
    step-up and idle windows must not close half-way (a page would answer with the
    sign-in confirmation instead of itself). What those windows guard is tested elsewhere
    (tests/portal/test_erasure.py, tests/browser/test_idle_timeout.py)."""
    return {"step_up_minutes": 120, "client_idle_minutes": 120, "staff_idle_minutes": 120}


@pytest.fixture
def demo_browsers(app, browser, live_server, outbox, make_young_person):
    """A signed-in page for every demo account, a new staff member before setting up a
    second factor, a client and a staff member half-way through signing in (their code
    pages), in the order pages are tried, and the visitor's page last."""
    from shared.services import demo, staff
    from tests.conftest import STRONG_PASSWORD, Person

    with app.app_context():
        for _line in demo.load():
            pass
    _fill_mias_file(app)
    pages, contexts = {}, []
    for account in demo.DEMO_ACCOUNTS:
        context = new_context(browser, live_server, **(DESK if account.role else PHONE))
        contexts.append(context)
        page = context.new_page()
        if account.role:
            staff_sign_in(page, Person(account.email, account.password,
                                       account.totp_secret, None))
        else:
            _sign_in_client(page, account.email, account.password, account.totp_secret)
        pages[account.role or account.email.split("@")[0]] = page
    people, extra_urls = _young_people(app, outbox, make_young_person)
    for who, (email, password) in people.items():
        context = new_context(browser, live_server, **PHONE)
        contexts.append(context)
        page = context.new_page()
        _sign_in_client(page, email, password, lands_on="/account/handover"
                        if who == "young person waiting" else "/home")
        pages[who] = page
    with app.app_context():
        staff.create_staff(email="neu@example.org", role="caseworker", name="N. Neumann")
    context = new_context(browser, live_server, **DESK)
    contexts.append(context)
    page = context.new_page()
    page.goto(outbox.link("neu@example.org", "/staff/invitation/"))
    page.fill("input[name=password]", STRONG_PASSWORD)
    page.click("button#submit")
    page.wait_for_url("**/staff/setup/second-factor")
    pages["staff without a second factor"] = page
    # Half-way through signing in: the password given, the code page waiting. Tried last,
    # since a staff page that needs the second factor ends such a session.
    for who, area, options, account in (("client at the code", "", PHONE, "jonas@"),
                                        ("staff at the code", "/staff", DESK, "reception@")):
        person = next(a for a in demo.DEMO_ACCOUNTS if a.email.startswith(account))
        context = new_context(browser, live_server, **options)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{area}/login")
        page.fill("input[name=email]", person.email)
        page.fill("input[name=password]", person.password)
        page.click("button#submit")
        page.wait_for_url(f"**{area}/login/code")
        pages[who] = page
    visitor = new_context(browser, live_server, **PHONE)
    contexts.append(visitor)
    pages["visitor"] = visitor.new_page()
    yield pages, extra_urls
    for context in contexts:
        context.close()


def _answers_html(page, url: str) -> bool:
    """The URL answers 200 with an HTML page for this browser's account (a request with the
    context's cookies, without drawing the page)."""
    response = page.context.request.get(url, max_redirects=0)
    return response.status == 200 and response.headers.get(
        "content-type", "").startswith("text/html")


def _violations(page, *, within: str | None = None) -> list[tuple[str, str, list]]:
    """axe's WCAG 2.1 A/AA violations on the page (or the part ``within``), whatever their
    impact, with every folded part (<details>) open so that what is one tap away is
    checked too (the language panel as well); but the phone menu stays shut unless it is
    what is checked, since its open panel covers the page and axe could then not judge
    the contrast beneath."""
    return axe_violations(page, within=within, shut=".site-menu", targets=4)


def _set_language(pages: dict, live_server: str, language: str) -> None:
    for page in pages.values():
        page.context.add_cookies([{"name": "einblick_lang", "value": language,
                                   "url": live_server}])


def test_axe_finds_no_violation_on_any_page_in_either_language(app, demo_browsers,
                                                                live_server):
    """Every page of the URL map passes axe's WCAG 2.1 A/AA rules in German and English."""
    demo_browsers, extra_urls = demo_browsers
    routes = page_urls_by_route(app)
    for route, url in extra_urls.items():
        routes[route].insert(0, url)
    # Which URL of each route to open, and as whom: the first account it answers, and the
    # visitor as well for a public page.
    visits: list[tuple[str, str, str]] = []  # (route, url, who)
    for route, urls in sorted(routes.items()):
        chosen = next(((url, who) for url in urls for who in demo_browsers
                       if who != "visitor" and _answers_html(demo_browsers[who], url)), None)
        if chosen:
            visits.append((route, *chosen))
        public = next((url for url in urls if _answers_html(demo_browsers["visitor"], url)),
                      None)
        if public:
            visits.append((route, public, "visitor"))
    reached = {route for route, _url, _who in visits}
    assert set(routes) - reached <= NOT_REACHED.keys(), sorted(set(routes) - reached)
    assert len(reached) > 50

    adapter = app.url_map.bind("localhost")
    problems: dict[tuple[str, str], list[str]] = {}
    pages_checked = slot_pages = 0
    menus_checked: set[tuple[str, str]] = set()
    for language in LANGUAGES:
        _set_language(demo_browsers, live_server, language)
        for route, url, who in visits:
            page = demo_browsers[who]
            to_check = [(route, url)]
            for path_route, path in to_check:
                if path_route in SHOWN_ONCE:
                    SHOWN_ONCE[path_route](app)
                page.set_viewport_size(DESK["viewport"] if path.startswith("/staff")
                                       else PHONE["viewport"])
                response = page.goto(path)
                assert response.status == 200, (who, path, response.status)
                assert urlsplit(page.url).path == path, (who, path, page.url)
                assert page.locator("html").get_attribute("lang") == language, path
                pages_checked += 1
                found = _violations(page)
                if (who, language) not in menus_checked and page.locator(
                        ".site-menu").is_visible():
                    # The phone menu, open, once per account and language.
                    menus_checked.add((who, language))
                    found += _violations(page, within=".site-menu")
                for rule, impact, targets in found:
                    problems.setdefault((path_route, rule), []).append(
                        f"{language} {who} {path} [{impact}] {targets}")
                if path_route == route:
                    for slot_path in SLOT_LINK.findall(page.content())[:1]:
                        slot_rule = adapter.match(slot_path, return_rule=True)[0].rule
                        to_check.append((slot_rule, slot_path))
                        slot_pages += 1
    assert pages_checked > 120
    assert slot_pages >= len(LANGUAGES), "no slot page was reached from a slots page"
    assert {("mia", language) for language in LANGUAGES} <= menus_checked

    new = {key: found for key, found in problems.items() if key not in KNOWN}
    fixed = KNOWN - problems.keys()
    assert not new, "\n".join(f"{route} {rule}:\n    " + "\n    ".join(found)
                              for (route, rule), found in sorted(new.items()))
    assert not fixed, f"fixed, take them off KNOWN: {sorted(fixed)}"


def test_the_sweep_sees_a_violation_of_any_impact(browser, live_server):
    """The check itself: an image without a text alternative and an unlabelled field put
    into a page are found, the image inside a folded part too."""
    context = new_context(browser, live_server, **PHONE)
    page = context.new_page()
    page.goto("/login")
    page.evaluate("""() => {
        const main = document.querySelector('main');
        main.insertAdjacentHTML('beforeend',
            '<details><summary>Mehr</summary><img src="/x.png"></details>'
            + '<input type="text" name="unlabelled">');
    }""")
    found = {rule for rule, _impact, _targets in _violations(page)}
    context.close()
    assert {"image-alt", "label"} <= found


def test_forms_sent_empty_show_their_errors_accessibly(browser, live_server, make_client):
    """A form sent empty comes back with its errors (the alert, the fields marked and
    described): axe finds nothing there either, in German and English."""
    person = make_client()
    visitor = new_context(browser, live_server, **PHONE)
    client = new_context(browser, live_server, **PHONE)
    _sign_in_client(client.new_page(), person.email, person.password)
    problems = []
    for language in LANGUAGES:
        for context, path in ((visitor, "/register"), (visitor, "/login"), (visitor, "/reset"),
                              (client, "/account/password"), (client, "/household/new")):
            context.add_cookies([{"name": "einblick_lang", "value": language,
                                  "url": live_server}])
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(path)
            page.click("#main button#submit")
            page.wait_for_selector("#main .kern-alert, #main .kern-error")
            problems += [(language, path, *found) for found in _violations(page)]
    visitor.close()
    client.close()
    assert problems == []
