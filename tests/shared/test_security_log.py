"""The security event log: JSON lines without personal data, rows admins can review."""

import json

import pytest
from sqlalchemy import select

from shared import security_log
from shared.extensions import db
from shared.models import SecurityEvent


@pytest.fixture
def config_overrides(tmp_path):
    return {"security_log": str(tmp_path / "security.jsonl")}


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
    assert "Seite verweigert" in page
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


def test_the_readme_documents_every_event():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for event in security_log.EVENT_TYPES:
        assert f"`{event.name}`" in readme, event.name
