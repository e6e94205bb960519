"""Every page: security headers, no inline script or style, no third-party requests,
labelled inputs with the right autocomplete, secure cookies outside development."""

import re
from pathlib import Path

import pytest

from shared.app import create_app
from tests.conftest import make_config, submit
from tests.helpers.pages import SLOT_LINK, page_urls

TEMPLATES = Path(__file__).resolve().parent.parent / "shared" / "templates"
# /bookings/new: visitors see the services and free times before registering.
PUBLIC_PAGES = ["/", "/register", "/login", "/reset", "/staff/login", "/bookings/new"]
CLIENT_PAGES = ["/home", "/account", "/account/security", "/account/password",
                "/account/security/totp", "/account/confirm", "/household", "/household/new",
                "/bookings"]


@pytest.mark.markup
def test_templates_have_no_inline_script_style_or_handlers():
    for path in TEMPLATES.rglob("*.html"):
        source = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), path
        assert not re.search(r"\son[a-z]+\s*=", source), path
        assert not re.search(r"<style|\sstyle\s*=", source), path


def assert_clean_page(response):
    html = response.get_data(as_text=True)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    # Nothing loads from another host: every src/href is a path on this site (or the
    # otpauth: link that hands the TOTP secret to an app on the same phone).
    for url in re.findall(r'(?:src|href|action)="([^"]*)"', html):
        assert url.startswith(("/", "#", "otpauth://totp/")) or url == "", url
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_are_clean(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert_clean_page(response)


@pytest.mark.parametrize("path", CLIENT_PAGES)
def test_client_pages_are_clean_and_need_sign_in(client, auth, make_client, path):
    assert client.get(path).headers["Location"].startswith("/login")
    auth.login(make_client())
    response = client.get(path)
    assert response.status_code == 200
    assert_clean_page(response)
    assert response.headers["Cache-Control"] == "no-store"


EXPECTED_AUTOCOMPLETE = {
    "/register": {"email": "email"},
    "/login": {"email": "email webauthn", "password": "current-password"},
    "/reset": {"email": "email"},
    "/staff/login": {"email": "email webauthn", "password": "current-password"},
}


@pytest.mark.parametrize(("path", "expected"), EXPECTED_AUTOCOMPLETE.items())
def test_inputs_have_labels_and_autocomplete(client, path, expected):
    html = client.get(path).get_data(as_text=True)
    for name, autocomplete in expected.items():
        tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', html).group(0)
        assert f'autocomplete="{autocomplete}"' in tag
        field_id = re.search(r'\bid="([^"]+)"', tag).group(1)
        assert f'<label class="kern-label" for="{field_id}">' in html


def test_signed_in_forms_have_autocomplete(client, auth, make_client):
    auth.login(make_client())
    account = client.get("/account").get_data(as_text=True)
    assert re.search(r'<input[^>]*autocomplete="name"[^>]*name="full_name"', account)
    password = client.get("/account/password").get_data(as_text=True)
    assert re.search(r'<input[^>]*autocomplete="current-password"[^>]*name="current"', password)
    assert re.search(r'<input[^>]*autocomplete="new-password"[^>]*name="password"', password)
    totp = client.get("/account/security/totp").get_data(as_text=True)
    assert re.search(r'<input[^>]*autocomplete="one-time-code"[^>]*name="code"', totp)


def test_session_cookie_is_host_prefixed_secure_httponly_and_lax(database_url, tmp_path,
                                                                make_client):
    person = make_client()
    app = create_app(make_config(tmp_path, database_url, secure_cookies=True))
    https = app.test_client()
    https.environ_base["wsgi.url_scheme"] = "https"
    page = https.get("https://localhost/login")
    from tests.conftest import csrf_token

    response = https.post("https://localhost/login", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)),
        "email": person.email, "password": person.password},
        headers={"Referer": "https://localhost/login"})
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("__Host-"))
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Domain=" not in cookie
    assert response.headers["Strict-Transport-Security"]
    # Over HTTPS a post from another site (wrong Referer) is refused even with a token.
    forged = https.post("https://localhost/login", data={
        "csrf_token": csrf_token(https.get("https://localhost/login").get_data(as_text=True)),
        "email": person.email, "password": person.password},
        headers={"Referer": "https://evil.example/"})
    assert forged.status_code == 400


def test_csrf_error_shows_a_friendly_page(client):
    response = client.post("/login", data={"email": "a@example.org", "password": "x"})
    assert response.status_code == 400
    assert "<h1" in response.get_data(as_text=True)


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert_clean_page(response)


def test_logout_needs_a_post_with_csrf(client, auth, make_client):
    auth.login(make_client())
    assert client.get("/logout").status_code == 200  # a confirmation page, not a log-out
    assert client.get("/account").status_code == 200
    assert submit(client, "/logout", {}).status_code == 302
    assert client.get("/account").status_code == 302


def test_stylesheets_are_compressed_but_pages_are_not(client):
    import brotli

    css = client.get("/static/vendor/kern/kern.min.css",
                     headers={"Accept-Encoding": "gzip, deflate, br"})
    assert css.headers["Content-Encoding"] == "br"
    assert len(css.data) < 60_000  # 340 KB uncompressed
    assert brotli.decompress(css.data).startswith(b"@") or b"kern" in brotli.decompress(css.data)
    page = client.get("/login", headers={"Accept-Encoding": "gzip, br"})
    assert "Content-Encoding" not in page.headers


@pytest.mark.markup
def test_passkey_script_is_small_static_and_self_contained():
    script = (TEMPLATES.parent / "static" / "js" / "passkeys.js").read_text()
    assert len(script.encode()) < 10 * 1024
    assert "navigator.credentials" in script
    # No absolute URL: every request goes to the page's own origin.
    assert "http://" not in script
    assert "https://" not in script
    assert "import " not in script
    assert "eval(" not in script


# -- every page of the URL map has unique ids ---------------------------------------------------
def duplicate_ids(html: str) -> list[str]:
    """The ids that occur more than once in a page."""
    import collections

    counts = collections.Counter(re.findall(r'\sid\s*=\s*"([^"]*)"', html))
    return sorted(name for name, count in counts.items() if count > 1)


@pytest.fixture
def demo_world(app, totp_clock):
    """The demo accounts and Mia's history, a note and a document in Mia's file, and a
    browser signed in as each demo account (and one not signed in)."""
    import io

    from shared.services import demo
    from tests.conftest import Auth, Person

    with app.app_context():
        for _line in demo.load():
            pass
    browsers = {"anonymous": app.test_client()}
    for account in demo.DEMO_ACCOUNTS:
        browser = app.test_client()
        person = Person(account.email, account.password, account.totp_secret, None)
        response = Auth(browser, totp_clock).login(person, area="staff" if account.role
                                                   else "portal")
        assert response.status_code == 302, account.email
        browsers[account.role or account.email.split("@")[0]] = browser
    from shared.models.accounts import CLIENT
    from shared.services import accounts
    from staff.clients import CATEGORY_LABELS

    with app.app_context():
        mia = accounts.find_account(email="mia@example.org", kind=CLIENT).client.id
    caseworker, mia_file = browsers["caseworker"], f"/staff/clients/{mia}"
    assert submit(caseworker, f"{mia_file}/notes", {"body": "Gespräch über die Schule",
                                                    "visible_to_client": "y"},
                  form_url=mia_file).status_code == 302
    assert submit(caseworker, f"{mia_file}/documents",
                  {"file": (io.BytesIO(b"%PDF-1.7\n%%EOF\n" + b"0" * 200), "bericht.pdf"),
                   "category": next(iter(CATEGORY_LABELS)), "visible_to_client": "y"},
                  form_url=mia_file, content_type="multipart/form-data").status_code == 302
    return browsers


def visible_text(html: str) -> str:
    """What a reader sees of a page: no tags, attributes or scripts."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.markup
@pytest.mark.parametrize("language", ["de", "en"])
def test_every_page_of_the_url_map_has_unique_ids_and_readable_dates(app, demo_world,
                                                                     language):
    """A duplicated id made a label tick another form's box (issue 14): every GET page, as
    every demo account and as a visitor, with the demo's ids filled in, has unique ids; and
    its dates are in the one format of its language (no seconds, no ISO, no 12/1/26)."""
    from tests.shared.test_date_formats import machine_dates

    for browser in demo_world.values():
        browser.set_cookie("einblick_lang", language)
    pages_seen = 0
    problems = {}
    for url in page_urls(app):
        for who, browser in demo_world.items():
            response = browser.get(url)
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            pages_seen += 1
            pages = {url: response.get_data(as_text=True)}
            # The booking step of a chosen slot is only reached by a link.
            for slot_url in SLOT_LINK.findall(pages[url])[:1]:
                slot_page = browser.get(slot_url)
                if slot_page.status_code == 200:
                    pages[slot_url] = slot_page.get_data(as_text=True)
            for page_url, html in pages.items():
                found = duplicate_ids(html) + machine_dates(visible_text(html))
                if found:
                    problems[f"{who} {page_url}"] = found
    assert pages_seen > 100
    assert problems == {}, "\n".join(f"{page}: {found}" for page, found in problems.items())


def test_duplicate_ids_are_found():
    """The check itself: a page with a repeated id fails it."""
    assert duplicate_ids('<input id="confidential"><p id = "x"><input id="confidential">') == [
        "confidential"]
    assert duplicate_ids('<input id="note-confidential"><input id="document-confidential">') == []


def _code_inputs(html: str) -> dict[str, str]:
    return {re.search(r'\bname="([^"]+)"', tag).group(1): tag
            for tag in re.findall(r'<input[^>]*\bname="(?:code|recovery_code)"[^>]*>', html)}


def test_every_code_field_asks_for_a_number_pad_and_recovery_codes_for_letters(
    client, app, auth, make_client, make_staff
):
    """The app's six digits get a number pad (inputmode numeric) and the phone's code
    autofill; a recovery code (letters and digits) has its own field with a keyboard."""
    person = make_client(totp=True)
    assert submit(client, "/login", {"email": person.email, "password": person.password}
                  ).headers["Location"] == "/login/code"
    pages = {"/login/code": client.get("/login/code").get_data(as_text=True)}
    auth.login(person)
    pages["/account/confirm"] = client.get("/account/confirm").get_data(as_text=True)
    newcomer = make_client()
    fresh = app.test_client()
    Auth = type(auth)
    Auth(fresh, auth.clock).login(newcomer)
    submit(fresh, "/account/confirm", {"password": newcomer.password})
    pages["/account/security/totp"] = fresh.get("/account/security/totp").get_data(as_text=True)
    worker = make_staff()
    staff_browser = app.test_client()
    submit(staff_browser, "/staff/login", {"email": worker.email, "password": worker.password})
    pages["/staff/login/code"] = staff_browser.get("/staff/login/code").get_data(as_text=True)
    Auth(staff_browser, auth.clock).login(worker, area="staff")
    pages["/staff/account/confirm"] = staff_browser.get(
        "/staff/account/confirm").get_data(as_text=True)
    # (the staff set-up page uses the same form as /account/security/totp)

    for path, html in pages.items():
        inputs = _code_inputs(html)
        assert "code" in inputs, path
        assert 'inputmode="numeric"' in inputs["code"], path
        assert 'autocomplete="one-time-code"' in inputs["code"], path
        if path in ("/account/confirm", "/staff/account/confirm"):
            assert 'inputmode="text"' in inputs["recovery_code"], path
            assert 'autocomplete="one-time-code"' in inputs["recovery_code"], path


def test_a_recovery_code_in_its_own_field_signs_in(client, app, make_client, totp_clock):
    from shared.auth import recovery
    from shared.extensions import db
    from shared.models import Account

    person = make_client(totp=True)
    with app.app_context():
        codes = recovery.new_codes(db.session.get(Account, person.account_id))
    submit(client, "/login", {"email": person.email, "password": person.password})
    answer = submit(client, "/login/code", {"code": "", "recovery_code": codes[0]})
    assert answer.headers["Location"] == "/home"
    with app.app_context():
        assert recovery.remaining(db.session.get(Account, person.account_id)) == 9
