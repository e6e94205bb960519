"""The security event log: JSON lines without personal data, rows admins can review."""

import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from shared import security_log
from shared.config import Config, ConfigError
from shared.extensions import db
from shared.models import SecurityEvent
from tests.conftest import get_counting_statements, make_config, submit

ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def config_overrides(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    return {"security_log": str(folder / "security.jsonl")}


def log_lines(app) -> list[dict]:
    path = app.extensions["einblick"].config.security_log
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle.read().splitlines()]


def test_a_refused_page_is_one_json_line_and_a_row_without_personal_data(
        app, auth, client, make_client):
    person = make_client(email="lena.weber@example.org", full_name="Lena Weber")
    auth.login(person)
    evil = "Mozilla/5.0\r\n{\"event\":\"forged\"}"
    assert client.get("/staff/", environ_overrides={"HTTP_USER_AGENT": evil}).status_code == 403

    lines = log_lines(app)
    denied = [line for line in lines if line["event"] == "access.denied"]
    assert len(denied) == 1
    assert not [line for line in lines if line["event"] == "forged"]
    line = denied[0]
    assert line["outcome"] == "refused"
    assert line["account_kind"] == "client"
    assert line["time"].endswith("Z")
    assert line["endpoint"] == "staff.home"
    assert line["user_agent"] == evil  # kept whole, but inside one escaped JSON string
    raw = open(app.extensions["einblick"].config.security_log, encoding="utf-8").read()
    for secret in ("lena.weber", "Lena", "Weber", str(person.account_id), person.password):
        assert secret not in raw
    with app.app_context():
        rows = list(db.session.scalars(select(SecurityEvent)
                                       .where(SecurityEvent.event == "access.denied")))
        assert len(rows) == 1
        assert rows[0].account_ref == line["account"] == security_log.pseudonym(
            person.account_id)


def test_an_event_survives_the_rollback_of_its_request(app):
    with app.test_request_context("/login"):
        security_log.record("login.password", outcome=security_log.FAILED)
        db.session.rollback()
        security_log.store_pending()
    with app.app_context():
        assert db.session.scalar(select(SecurityEvent.event)) == "login.password"


def test_unknown_events_are_refused(app_ctx):
    with pytest.raises(KeyError):
        security_log.record("something.new")


def test_admins_read_recent_events_in_words(app, auth, client, make_client, make_staff):
    person = make_client()
    auth.login(person)
    client.get("/staff/")  # refused: one event about a client
    auth.logout()
    admin = make_staff(role="admin")
    auth.login(admin, area="staff")
    page = client.get("/staff/security-events").get_data(as_text=True)
    assert "Zugriff verweigert · abgelehnt" in page
    assert "ein Konto einer Klientin oder eines Klienten" in page
    assert person.email not in page
    assert str(person.account_id) not in page


def test_the_purge_drops_old_events(app, runner):
    from datetime import timedelta

    from shared.models.base import utcnow

    with app.app_context():
        db.session.add_all([
            SecurityEvent(event="login.password", outcome="ok",
                          at=utcnow() - timedelta(days=91)),
            SecurityEvent(event="login.password", outcome="ok", at=utcnow()),
        ])
        db.session.commit()
    assert runner.invoke(args=["retention", "purge"]).exit_code == 0
    with app.app_context():
        assert db.session.query(SecurityEvent).count() == 1


def readme() -> str:
    return (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readme_documents_every_event_with_its_outcomes():
    text = readme()
    for event_type in security_log.EVENT_TYPES:  # the same words as the code's table
        assert f"| `{event_type.name}` | {event_type.meaning} |" in text, event_type.name
    assert "(failed: the current password given was wrong" in text
    assert "(refused: the address already has an account, or staff gave the address" in text


def test_the_readme_documents_the_settings_and_what_admins_see():
    text = readme()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    for variable in ("EINBLICK_SECURITY_LOG", "EINBLICK_SECURITY_EVENT_DAYS", "FLASK_DEBUG"):
        assert [row for row in rows if row.startswith(f"| `{variable}` |")], variable
    secure_cookies = next(row for row in rows if row.startswith("| `EINBLICK_SECURE_COOKIES`"))
    assert "FLASK_DEBUG" not in secure_cookies
    section = text[text.index("## Security events"):text.index("## Layout")]
    assert "`flask retention purge`" in section
    assert "only time, event, outcome and account" in section
    assert "at most one `ratelimit.exceeded` row per" in section


# -- the destination ---------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "variable"), [
    ({"security_log": "/nonexistent-dir/security.jsonl"}, "EINBLICK_SECURITY_LOG"),
    ({"security_event_days": 0}, "EINBLICK_SECURITY_EVENT_DAYS"),
    ({"max_open_requests": 0}, "EINBLICK_MAX_OPEN_REQUESTS"),
])
def test_a_configuration_that_cannot_work_stops_the_start(changes, variable):
    with pytest.raises(ConfigError, match=variable):
        Config(env="test", **changes).validate()


def test_a_missing_log_folder_is_named_in_the_message():
    with pytest.raises(ConfigError, match="/nonexistent-dir does not exist"):
        Config.from_env({"EINBLICK_SECURITY_LOG": "/nonexistent-dir/security.jsonl"})


def test_a_folder_or_a_file_in_place_of_the_folder_is_refused(tmp_path):
    (tmp_path / "plain-file").write_text("")
    for destination in (tmp_path, tmp_path / "plain-file" / "security.jsonl"):
        with pytest.raises(ConfigError, match="EINBLICK_SECURITY_LOG"):
            Config(env="test", security_log=str(destination)).validate()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_this_user_may_not_write_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="may not write"):
        Config(env="test", security_log=str(locked / "security.jsonl")).validate()


def test_the_log_file_is_opened_at_start(app):
    assert Path(app.extensions["einblick"].config.security_log).exists()


def test_a_write_that_fails_later_never_fails_a_sign_in(app, client, caplog):
    folder = Path(app.extensions["einblick"].config.security_log).parent
    shutil.rmtree(folder)  # e.g. a volume unmounted while the app runs
    caplog.set_level(logging.WARNING)
    response = submit(client, "/login", {"email": "nobody@example.org",
                                         "password": "wrong-password-1"})
    assert response.status_code == 200
    assert "E-Mail-Adresse oder Passwort ist nicht richtig." in response.get_data(as_text=True)
    assert "could not write a security event" in caplog.text
    for content in ("login.password", "nobody@example.org", "127.0.0.1", "Werkzeug"):
        assert content not in caplog.text
    with app.app_context():  # the row is kept all the same
        assert db.session.scalar(select(SecurityEvent.event)) == "login.password"


# -- floods --------------------------------------------------------------------------------
def stored(app, name: str) -> list[SecurityEvent]:
    with app.app_context():
        return list(db.session.scalars(select(SecurityEvent)
                                       .where(SecurityEvent.event == name)))


def test_wrong_sign_ins_without_an_account_keep_every_line_but_one_row_a_minute(
        app, client, make_client):
    for i in range(6):
        submit(client, "/login", {"email": f"nobody-{i}@example.org",
                                  "password": "wrong-password-1"})
    submit(client, "/login", {"email": "nobody@example.org", "password": "wrong-password-1"},
           environ_base=ELSEWHERE)
    failed = [line for line in log_lines(app)
              if line["event"] == "login.password" and line["outcome"] == "failed"]
    assert len(failed) == 7
    assert len(stored(app, "login.password")) == 2  # one per client address
    # Wrong passwords for a real account keep a row each (their own limit caps them).
    person = make_client()
    for _ in range(2):
        submit(client, "/login", {"email": person.email, "password": "wrong-password-1"})
    with app.app_context():
        ref = security_log.pseudonym(person.account_id)
    assert [row.account_ref for row in stored(app, "login.password")].count(ref) == 2


def test_refused_requests_keep_every_line_but_one_row_per_address_and_endpoint_a_minute(
        app, client):
    def attempt(**kwargs) -> int:
        return submit(client, "/login", {"email": "nobody@example.org",
                                         "password": "wrong-password-1"}, **kwargs).status_code

    assert [attempt() for _ in range(10)] == [200] * 10
    assert [attempt() for _ in range(3)] == [429] * 3
    assert attempt(environ_base=ELSEWHERE) == 429
    refused = [line for line in log_lines(app) if line["event"] == "ratelimit.exceeded"]
    assert len(refused) == 4
    rows = stored(app, "ratelimit.exceeded")
    assert len(rows) == 2  # one for each client address
    assert {row.outcome for row in rows} == {"refused"}


def redis_url() -> str | None:
    import redis

    url = os.environ.get("EINBLICK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        return url if redis.Redis.from_url(url, socket_timeout=1).ping() else None
    except redis.RedisError:
        return None


@pytest.mark.skipif(redis_url() is None and not os.environ.get("CI"), reason="no Redis")
def test_workers_share_the_row_count_through_redis(app, database_url, tmp_path):
    from shared.app import create_app

    workers = [create_app(make_config(tmp_path / f"w{i}", database_url,
                                      ratelimit_storage_uri=redis_url())).test_client()
               for i in range(2)]
    address = {"REMOTE_ADDR": f"2001:db8::{uuid.uuid4().hex[:4]}"}  # fresh in Redis
    for i in range(4):
        submit(workers[i % 2], "/login", {"email": f"nobody-{i}@example.org",
                                          "password": "wrong-password-1"}, environ_base=address)
    assert len(stored(app, "login.password")) == 1


# -- the review page -----------------------------------------------------------------------
def test_sign_ins_to_unknown_addresses_read_as_such(app, auth, client, make_staff):
    submit(client, "/login", {"email": "nobody@example.org", "password": "wrong-password-1"})
    submit(client, "/staff/login", {"email": "nobody@example.org",
                                    "password": "wrong-password-1"}, environ_base=ELSEWHERE)
    admin = make_staff(role="admin")
    auth.login(admin, area="staff")
    page = client.get("/staff/security-events").get_data(as_text=True)
    assert page.count("eine Adresse ohne Konto") == 2
    assert "ein Mitarbeitendenkonto, das es nicht mehr gibt" not in page
    assert "ein Konto einer Klientin oder eines Klienten" not in page


def add_events_about(app, people, count: int = 1) -> None:
    with app.app_context():
        db.session.add_all([
            SecurityEvent(event="access.denied", outcome="refused", account_kind="staff",
                          account_ref=security_log.pseudonym(person.account_id))
            for person in people for _ in range(count)])
        db.session.commit()


def test_the_review_page_costs_the_same_queries_for_two_or_seven_staff_members(
        app, auth, client, make_staff):
    admin = make_staff(role="admin")
    auth.login(admin, area="staff")

    def statements_for_page() -> int:
        page, statements = get_counting_statements(app, client, "/staff/security-events")
        assert page.status_code == 200
        assert "das es nicht mehr gibt" not in page.get_data(as_text=True)
        return statements

    add_events_about(app, [make_staff() for _ in range(2)])
    with_two = statements_for_page()
    add_events_about(app, [make_staff() for _ in range(5)])
    assert statements_for_page() == with_two


def test_the_review_page_pages_with_buttons_and_names_its_period(
        app, auth, client, make_staff):
    admin = make_staff(role="admin")
    add_events_about(app, [admin], count=60)
    auth.login(admin, area="staff")
    page = client.get("/staff/security-events").get_data(as_text=True)
    assert "der letzten 90 Tage" in page
    assert "Zugriff verweigert · abgelehnt" in page
    assert "abgewiesen" not in page
    # One date format per language (issue 14): the moment to the minute, no seconds.
    assert re.search(r"\d{2}\.\d{2}\.\d{4}, \d{2}:\d{2}(?!:)", page)
    pager = page[page.index('class="pager"'):]
    assert re.search(r'<a class="kern-btn kern-btn--secondary" href="[^"]*page=2">'
                     r'<span class="kern-label">Ältere</span>', pager)
    older = client.get("/staff/security-events?page=2").get_data(as_text=True)
    pager = older[older.index('class="pager"'):]
    assert re.search(r'<a class="kern-btn kern-btn--secondary" href="[^"]*page=1">'
                     r'<span class="kern-label">Neuere</span>', pager)
    assert "Ältere" not in pager
