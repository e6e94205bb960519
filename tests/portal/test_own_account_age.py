"""The own-account invitation is offered only for children old enough for one (16 by
default): not to their parents, not on the staff case file."""

from datetime import date

from sqlalchemy import select

from shared.extensions import db
from shared.models import Client
from tests.conftest import Auth, assign_caseworker, csrf_token, submit


def _birthday(years_ago: int) -> str:
    """A birth date that makes the child this many years old today (born on 1 January)."""
    return date(date.today().year - years_ago, 1, 1).isoformat()


def test_the_invitation_is_offered_for_a_child_of_16_and_not_for_one_of_10(
    app, client, auth, make_client, make_staff
):
    parent = make_client(full_name="Mia Demir")
    auth.login(parent)
    for name, years in (("Emil Demir", 10), ("Lara Demir", 17)):
        assert submit(client, "/household/new", {
            "full_name": name, "birth_date": _birthday(years), "contact_name": "Oma Ayse",
            "contact_phone": "0170 1234567"}).headers["Location"] == "/household"
    with app.app_context():
        children = {c.full_name: c.id for c in db.session.scalars(
            select(Client).where(Client.account_id.is_(None)))}
    emil, lara = children["Emil Demir"], children["Lara Demir"]

    page = client.get("/household").get_data(as_text=True)
    assert f'action="/household/{lara}/invite"' in page
    assert f'action="/household/{emil}/invite"' not in page
    assert "Eigenes Konto für <bdi>Lara Demir</bdi>" in page  # the name isolated (bidi)
    assert "Emil Demir</bdi>" in page
    assert "Eigenes Konto für <bdi>Emil Demir</bdi>" not in page
    assert "Ein eigenes Konto ist ab 16 Jahren möglich." in page
    # Posting the form anyway is refused, and no invitation is recorded.
    refused = client.post(f"/household/{emil}/invite", data={
        "csrf_token": csrf_token(page),
        "email": "emil@example.org"}, follow_redirects=True)
    assert "Ein eigenes Konto ist ab 16 Jahren möglich." in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Client, emil).own_account_invited_at is None

    # The caseworker's case file offers it for Lara only.
    caseworker = make_staff(role="caseworker")
    for child in (emil, lara):
        assign_caseworker(app, child, caseworker)
    staff_browser = app.test_client()
    Auth(staff_browser, auth.clock).login(caseworker, area="staff")
    emil_file = staff_browser.get(f"/staff/clients/{emil}").get_data(as_text=True)
    lara_file = staff_browser.get(f"/staff/clients/{lara}").get_data(as_text=True)
    assert f'action="/staff/clients/{lara}/invite"' in lara_file
    assert "/invite" not in emil_file
    assert 'id="own-account"' not in emil_file
