"""Exports and correction requests are limited per signed-in account, and the refusal
says in words when it works again; what was typed stays in the form."""

from sqlalchemy import func, select

from shared.extensions import db
from shared.models import Client, CorrectionRequest
from tests.conftest import security_events, submit


def test_three_exports_an_hour_then_a_clear_answer(app, client, auth, make_client):
    auth.login(make_client())
    for _ in range(3):
        response = submit(client, "/my-data/export", {})
        assert response.mimetype == "application/zip"
        assert response.data.startswith(b"PK")  # read to the end, as a browser does
    refused = submit(client, "/my-data/export", {})
    assert refused.status_code == 429
    assert refused.mimetype == "text/html"
    page = refused.get_data(as_text=True)
    assert "Sie haben Ihre Daten in kurzer Zeit mehrmals heruntergeladen" in page
    assert "Zu Ihrer Sicherheit können Sie sie ab " in page
    assert "UTC" not in page
    assert len(security_events(app, "export.downloaded")) == 3
    assert len(security_events(app, "ratelimit.exceeded")) == 1
    # The page itself still opens, and another account is not held up.
    assert client.get("/my-data/export").status_code == 200
    auth.logout()
    auth.login(make_client())
    assert submit(client, "/my-data/export", {}).mimetype == "application/zip"


def test_only_downloads_count_not_opening_the_page(client, auth, make_client):
    auth.login(make_client())
    for _ in range(5):
        assert client.get("/my-data/export").status_code == 200
    assert submit(client, "/my-data/export", {}).mimetype == "application/zip"


def test_ten_correction_requests_an_hour_and_the_text_is_kept(app, client, auth, make_client):
    person = make_client()
    auth.login(person)
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
    # Empty requests are refused by the form and do not use up the budget.
    empty = submit(client, "/my-data/corrections", {"client": str(own), "about": "other",
                                                     "message": "  "})
    assert "Bitte beschreiben Sie, was falsch ist und was richtig wäre." in empty.get_data(
        as_text=True)
    for n in range(10):
        response = submit(client, "/my-data/corrections",
                          {"client": str(own), "about": "other", "message": f"Fehler {n}"})
        assert response.status_code == 302
    refused = submit(client, "/my-data/corrections",
                     {"client": str(own), "about": "other",
                      "message": "Meine Telefonnummer ist veraltet."})
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    assert "Sie haben in kurzer Zeit viele Korrekturwünsche geschickt" in page
    assert "Meine Telefonnummer ist veraltet." in page  # still in the text box
    with app.app_context():
        assert db.session.scalar(select(func.count(CorrectionRequest.id))) == 10
