"""German by default, English on request, a remembered language switch, complete catalogues."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from shared.config import SUPPORTED_LOCALES
from shared.extensions import db
from shared.models import Account
from tests.conftest import submit

ROOT = Path(__file__).resolve().parent.parent


def lang_of(response) -> str:
    return re.search(r'<html lang="([a-z]+)"', response.get_data(as_text=True)).group(1)


def test_german_is_the_default(client):
    response = client.get("/")
    assert lang_of(response) == "de"
    assert "Willkommen" in response.get_data(as_text=True)


@pytest.mark.parametrize(("header", "expected"), [
    ("en-GB,en;q=0.9,de;q=0.8", "en"),
    ("de-AT,en;q=0.5", "de"),
    ("fr-FR,en;q=0.7,de;q=0.3", "en"),
    ("tr", "tr"),
    ("uk-UA,ru;q=0.5", "uk"),
    ("ar-SY", "ar"),
    ("ru", "de"),
])
def test_accept_language_picks_the_first_supported_language(client, header, expected):
    assert lang_of(client.get("/login", headers={"Accept-Language": header})) == expected


def test_language_switch_needs_a_post_with_csrf(client):
    assert client.get("/language/en").status_code == 405
    assert client.post("/language/en").status_code == 400


def test_language_switch_is_remembered_over_the_browser_setting(client):
    response = submit(client, "/language/en", {"next": "/login"}, form_url="/")
    assert response.headers["Location"] == "/login"
    page = client.get("/login", headers={"Accept-Language": "de"})
    assert lang_of(page) == "en"
    assert "Sign in" in page.get_data(as_text=True)
    back = submit(client, "/language/de", {"next": "https://evil.example/"}, form_url="/")
    assert back.headers["Location"] == "/"
    assert lang_of(client.get("/login", headers={"Accept-Language": "en"})) == "de"


def test_signed_in_choice_is_saved_on_the_account(app, auth, client, make_client):
    person = make_client()
    auth.login(person)
    submit(client, "/language/en", {}, form_url="/account")
    with app.app_context():
        assert db.session.get(Account, person.account_id).locale == "en"
    fresh_browser = app.test_client()
    submit(fresh_browser, "/login", {"email": person.email, "password": person.password})
    assert lang_of(fresh_browser.get("/account", headers={"Accept-Language": "de"})) == "en"
    with app.app_context():
        assert db.session.scalar(select(Account)).locale == "en"


def test_emails_are_sent_in_the_users_language(client, outbox):
    submit(client, "/language/en", {}, form_url="/")
    submit(client, "/register", {"email": "english@example.org"})
    assert outbox.last_to("english@example.org")["Subject"] == "Confirm your email address"
    submit(client, "/language/de", {}, form_url="/")
    submit(client, "/register", {"email": "deutsch@example.org"})
    assert outbox.last_to("deutsch@example.org")["Subject"] != "Confirm your email address"


@pytest.mark.markup
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_catalogue_is_complete_and_has_no_fuzzy_entries(locale):
    with (ROOT / f"translations/{locale}/LC_MESSAGES/messages.po").open("rb") as fh:
        catalog = read_po(fh)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            problems.append(f"untranslated: {message.id!r}")
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set(re.findall(r"%\(\w+\)[sd]", " ".join(ids)))
        for string in strings:
            found = set(re.findall(r"%\(\w+\)[sd]", string or ""))
            # A plural form may leave the number out where the language says it in words
            # (Arabic "ساعتين", two hours); it may never bring a placeholder of its own.
            if string and (found - wanted or (len(strings) == 1 and found != wanted)):
                problems.append(f"placeholders differ: {message.id!r}")
        if isinstance(message.id, tuple) and len(strings) != catalog.num_plurals:
            problems.append(f"plural forms: {message.id!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.markup
def test_every_text_in_the_code_is_in_the_catalogue(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "--no-location", "."],
        cwd=ROOT, check=True, capture_output=True,
    )
    with pot.open("rb") as fh:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    missing = {}
    for locale in SUPPORTED_LOCALES:
        with (ROOT / f"translations/{locale}/LC_MESSAGES/messages.po").open("rb") as fh:
            known = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
        if extracted - known:
            missing[locale] = sorted(extracted - known)[:10]
    assert not missing, f"run `make extract` and translate: {missing}"


@pytest.mark.markup
@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_pybabel_statistics_show_every_language_complete(locale, tmp_path):
    """What a translator's tool reports: every message of the catalogue translated."""
    result = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "compile", "--statistics",
         "-l", locale, "-o", str(tmp_path / "messages.mo"),
         "-i", f"translations/{locale}/LC_MESSAGES/messages.po"],
        cwd=ROOT, check=True, capture_output=True, text=True)
    assert re.search(r"(\d+) of \1 messages \(100%\) translated", result.stderr), result.stderr
