"""/healthz and /readyz as a load balancer and a monitor use them: the process answers
without touching the database; readiness names what is missing (database, migrations,
Redis) with 503 and nothing secret; neither sets a session cookie nor counts in a rate limit."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from shared.app import create_app
from shared.extensions import db
from tests.conftest import get_counting_statements, make_config


def test_healthz_answers_without_the_database_or_a_cookie(app, client, auth, make_client):
    response, statements = get_counting_statements(app, client, "/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert statements == 0
    assert response.headers["Cache-Control"] == "no-store"
    # A probe that carries a signed-in session cookie neither refreshes nor ends it.
    auth.login(make_client())
    for path in ("/healthz", "/readyz"):
        answer = client.get(path)
        assert answer.status_code == 200
        assert "Set-Cookie" not in answer.headers
    assert client.get("/bookings").status_code == 200  # still signed in


def test_readyz_reports_database_migrations_and_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "database": "ok", "migrations": "ok",
                                   "redis": "ok"}


def test_readyz_is_not_ready_when_the_database_does_not_answer(app, client):
    with app.app_context():
        engine = db.engine

    def refuse(dialect, _record, _cargs, _cparams):
        raise dialect.loaded_dbapi.OperationalError("connection refused")

    event.listen(engine, "do_connect", refuse)
    engine.dispose()  # pooled connections go: the next one must connect anew
    try:
        response = client.get("/readyz")
        alive = client.get("/healthz")
    finally:
        event.remove(engine, "do_connect", refuse)
    assert response.status_code == 503
    body = response.get_json()
    assert body == {"status": "not ready", "database": "unreachable", "redis": "ok"}
    assert "refused" not in response.get_data(as_text=True)  # no error text leaks out
    assert alive.status_code == 200  # the process itself is fine: no restart wanted
    assert client.get("/readyz").status_code == 200  # ready again once it answers


def test_readyz_is_not_ready_when_redis_does_not_answer(database_url, tmp_path):
    dead_redis = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    app = create_app(make_config(tmp_path / "instance", database_url,
                                 ratelimit_storage_uri=dead_redis))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "database": "ok",
                                   "migrations": "ok", "redis": "unreachable"}
    assert "127.0.0.1" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_are_never_rate_limited(client, path):
    assert {client.get(path).status_code for _ in range(30)} == {200}
