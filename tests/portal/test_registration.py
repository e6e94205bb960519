"""A client registers, confirms the address by the emailed link and signs in."""

from sqlalchemy import select

from shared.extensions import db
from shared.models import Account, Client
from tests.conftest import STRONG_PASSWORD, submit


def register(client, email, password=STRONG_PASSWORD):
    return submit(client, "/register", {"email": email, "password": password})


def test_register_confirm_and_sign_in(client, outbox, app):
    response = register(client, "Lena.Berg@Example.org")
    assert response.status_code == 200
    assert "Check your email" in response.get_data(as_text=True) or "E-Mail" in response.get_data(
        as_text=True
    )

    link = outbox.link("Lena.Berg@example.org", "/confirm/")
    # Not confirmed yet: the password alone does not sign in.
    page = submit(client, "/login", {"email": "lena.berg@example.org", "password": STRONG_PASSWORD},
                  follow_redirects=True)
    assert "/account" not in page.request.path

    confirmed = client.get(link, follow_redirects=True)
    assert confirmed.request.path == "/login"
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert account.email == "Lena.Berg@example.org"
        assert account.email_confirmed_at is not None
        assert db.session.scalar(select(Client)).account_id == account.id

    signed_in = submit(
        client, "/login", {"email": "LENA.BERG@example.org", "password": STRONG_PASSWORD},
        follow_redirects=True,
    )
    assert signed_in.request.path == "/account"
    assert "Lena.Berg@example.org" in signed_in.get_data(as_text=True)


def test_confirmation_link_works_once(client, outbox):
    register(client, "once@example.org")
    link = outbox.link("once@example.org", "/confirm/")
    assert client.get(link).status_code == 302
    assert client.get(link).status_code == 400


def test_registering_a_taken_address_looks_the_same_and_warns_the_owner(client, outbox,
                                                                         make_client):
    owner = make_client(email="taken@example.org")
    fresh = register(client, "new-person@example.org")
    taken = register(client, owner.email)
    assert taken.status_code == fresh.status_code == 200
    assert _main(taken) == _main(fresh)
    note = outbox.last_to(owner.email)
    assert "/confirm/" not in note.get_content()
    assert "/login" in note.get_content()


def _main(response):
    html = response.get_data(as_text=True)
    return html[html.index("<main"):html.index("</main>")]


def test_weak_and_short_passwords_are_refused_with_a_reason(client, app):
    short = register(client, "a@example.org", "kurz123")
    assert short.status_code == 200
    assert "12" in short.get_data(as_text=True)
    common = register(client, "b@example.org", "password1234")
    assert common.status_code == 200
    text = common.get_data(as_text=True)
    assert 'aria-invalid="true"' in text
    with app.app_context():
        assert db.session.scalar(select(Account)) is None


def test_long_passwords_are_not_truncated(client, outbox):
    long_password = "Ein langer Satz über den Fluss, die Brücke und das Boot im Nebel! " * 2
    assert len(long_password) > 100
    register(client, "long@example.org", long_password)
    client.get(outbox.link("long@example.org", "/confirm/"))
    truncated = submit(client, "/login", {"email": "long@example.org",
                                          "password": long_password[:72]})
    assert truncated.status_code == 200  # form shown again with an error
    full = submit(client, "/login", {"email": "long@example.org", "password": long_password})
    assert full.status_code == 302
    assert full.headers["Location"] == "/account"


def test_invalid_email_gets_a_helpful_message(client):
    response = register(client, "not-an-address")
    assert response.status_code == 200
    assert "name@example.org" in response.get_data(as_text=True)


def test_forms_without_csrf_token_are_refused(client):
    response = client.post("/register", data={"email": "x@example.org",
                                              "password": STRONG_PASSWORD})
    assert response.status_code == 400


def test_registration_is_rate_limited_per_address(client, outbox):
    statuses = [register(client, "flood@example.org").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert len(outbox.to("flood@example.org")) == 5


def test_passwords_are_stored_as_argon2id_with_at_least_owasp_cost(client, outbox, app):
    register(client, "argon@example.org")
    with app.app_context():
        stored = db.session.scalar(select(Account)).password_hash
    assert stored.startswith("$argon2id$")
    params = dict(p.split("=") for p in stored.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024
    assert int(params["t"]) >= 2
    assert STRONG_PASSWORD not in stored
