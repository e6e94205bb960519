"""Anonymous first contact with a passkey instead of a password (issue 17, item 4): the
passkey is made before anything is stored, the form and the new passkey go together, and
only then are the account (without a password), its passkey and the conversation written;
every refusal stores nothing and keeps what was typed. The person signs in again through
the ordinary passkey sign-in."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from shared.extensions import db
from tests.conftest import csrf_token, post_json
from tests.soft_authenticator import SoftAuthenticator

PSEUDONYM = "Pusteblume 12"
TOPIC = "Ärger in der Schule"
BODY = "In der Pause werde ich jeden Tag geschubst, und keiner sagt etwas."
PAGE = "/messages/anonymous"
BEGIN = "/messages/anonymous/passkey/begin"


@pytest.fixture
def team(make_bookable):
    return make_bookable("Jugendberatung")


def form_fields(browser, service_id, **overrides) -> dict:
    html = browser.get(PAGE).get_data(as_text=True)
    return {"csrf_token": csrf_token(html), "pseudonym": PSEUDONYM, "with_passkey": "y",
            "service": str(service_id), "topic": TOPIC, "body": BODY, **overrides}


def begin(browser, fields):
    return browser.post(BEGIN, data=fields)


def write_with_passkey(browser, service_id, authenticator=None, **overrides):
    """What the page's script does: ask for options with the form, make the passkey, send
    the form with it. Returns (answer, authenticator)."""
    authenticator = authenticator or SoftAuthenticator(origin="http://localhost")
    fields = form_fields(browser, service_id, **overrides)
    options = begin(browser, fields)
    assert options.status_code == 200, options.get_data(as_text=True)
    credential = authenticator.create(options.get_data(as_text=True))
    answer = browser.post(PAGE, data={**fields, "credential": json.dumps(credential)})
    return answer, authenticator


def counts(app) -> dict[str, int]:
    from shared.models import Account, Client, MessageThread, PasskeyCredential

    with app.app_context():
        return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                for model in (Account, Client, MessageThread, PasskeyCredential)}


def test_a_first_contact_with_a_passkey_has_no_password_and_signs_in_with_the_passkey(
        app, team, outbox):
    from shared.models import Account, Client, MessageThread, PasskeyCredential

    before = counts(app)
    browser = app.test_client()
    options_text = begin(browser, form_fields(browser, team.service_id)).get_data(as_text=True)
    options = json.loads(options_text)
    # The device lists its passkeys under a neutral name, never the chosen one (a parent
    # who can unlock the family tablet would read it there); a short code from the random
    # user handle tells two such passkeys apart.
    assert PSEUDONYM not in options_text
    assert options["user"]["displayName"] == "Anonymer Kontakt"
    assert re.fullmatch(r"Anonymer Kontakt [A-Z2-7]{4}", options["user"]["name"])
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert counts(app) == before  # asking for options stores nothing

    answer, authenticator = write_with_passkey(app.test_client(), team.service_id)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    path = answer.headers["Location"]
    assert path.startswith("/messages/")
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.pseudonym_bidx.is_not(None)))
        assert account.pseudonym == PSEUDONYM
        assert account.password_hash is None
        assert account.email == ""
        assert account.passkey_user_handle == authenticator.user_handle
        passkey = db.session.scalar(select(PasskeyCredential))
        assert passkey.account_id == account.id
        assert passkey.credential_id == authenticator.credential_id
        thread = db.session.scalar(select(MessageThread))
        assert db.session.get(Client, thread.client_id).account_id == account.id
        assert thread.topic == TOPIC
    # Only the team hears of the message: the person has no address.
    assert [m["To"] for m in outbox.messages()] == [team.staff.email]

    # Signed in at once: the conversation is there.
    first = app.test_client()
    answer, authenticator = write_with_passkey(first, team.service_id,
                                               pseudonym="Pusteblume 13")
    page = first.get(answer.headers["Location"], follow_redirects=True)
    assert BODY in page.get_data(as_text=True)
    assert "mit Ihrem Passkey" in page.get_data(as_text=True)

    # Another day, another browser: the ordinary passkey sign-in, then the account page.
    phone = app.test_client()
    options = post_json(phone, "/login/passkey/begin", page="/login")
    signed_in = post_json(phone, "/login/passkey/finish",
                          {"credential": authenticator.get(options.get_data(as_text=True))},
                          page="/login")
    assert signed_in.status_code == 200, signed_in.get_data(as_text=True)
    assert BODY in phone.get(answer.headers["Location"]).get_data(as_text=True)
    account_page = phone.get("/account/anonymous")
    assert account_page.status_code == 200
    html = account_page.get_data(as_text=True)
    assert "Pusteblume 13" in html
    # Not the password account's warning: the passkey is what must not be lost.
    assert "Ohne das Gerät, auf dem er liegt" in html
    assert "Wenn Sie Ihr Passwort vergessen" not in html


def test_where_the_passkey_is_offered_the_page_says_who_else_can_read(app):
    """Whoever can unlock the device (a parent who knows the family tablet's PIN), or has
    a device with the same Apple or Google account, opens the conversation with it."""
    html = app.test_client().get(PAGE).get_data(as_text=True)
    assert "Wer dieses Gerät entsperren kann" in html
    assert "demselben Apple- oder Google-Konto" in html
    assert "Auf einem Gerät, das Sie mit anderen teilen, wählen Sie ein Passwort." in html
    assert "Sie müssen sich nichts merken" not in html


@pytest.mark.parametrize(("overrides", "shown"), [
    ({"body": "   "}, "Bitte schreiben Sie Ihre Nachricht."),
    ({"topic": ""}, "Bitte schreiben Sie ein Thema in wenigen Worten."),
    ({"pseudonym": "ich@example.org"}, "nicht die E-Mail-Adresse"),
])
def test_a_form_that_would_be_refused_gets_no_passkey_and_the_page_says_why(
        app, team, overrides, shown):
    browser = app.test_client()
    before = counts(app)
    fields = form_fields(browser, team.service_id, **overrides)
    refused = begin(browser, fields)
    assert refused.status_code == 400
    assert refused.get_json()["resubmit"] is True
    # The script then sends the form as it is: the page says what to change.
    page = browser.post(PAGE, data=fields)
    assert page.status_code == 400
    assert counts(app) == before


def test_a_name_taken_meanwhile_stores_nothing_and_keeps_the_message(app, team):
    browser = app.test_client()
    fields = form_fields(browser, team.service_id)
    options = begin(browser, fields)
    credential = SoftAuthenticator(origin="http://localhost").create(options.get_data(as_text=True))
    # Someone else takes the name between the passkey and the sending.
    taken, _ = write_with_passkey(app.test_client(), team.service_id)
    assert taken.status_code == 302
    before = counts(app)
    page = browser.post(PAGE, data={**fields, "credential": json.dumps(credential)})
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "Dieser Name ist schon vergeben" in html
    for typed in (BODY, TOPIC):
        assert typed in html
    assert counts(app) == before


def test_a_passkey_that_does_not_verify_stores_nothing_and_keeps_the_message(app, team):
    browser = app.test_client()
    fields = form_fields(browser, team.service_id)
    options = begin(browser, fields)
    # Made for another site: the registration does not verify.
    credential = SoftAuthenticator(origin="https://elsewhere.example").create(
        options.get_data(as_text=True))
    before = counts(app)
    page = browser.post(PAGE, data={**fields, "credential": json.dumps(credential)})
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "Der Passkey konnte nicht geprüft werden" in html
    for typed in (BODY, TOPIC, PSEUDONYM):
        assert typed in html
    assert counts(app) == before
    # The challenge was used: the same passkey is not accepted a second time either.
    again = browser.post(PAGE, data={**fields, "credential": json.dumps(credential)})
    assert again.status_code == 400
    assert counts(app) == before


def test_an_expired_or_missing_challenge_stores_nothing(app, team):
    from shared.auth import passkeys as passkey_auth
    from shared.models import PasskeyChallenge

    browser = app.test_client()
    fields = form_fields(browser, team.service_id)
    options = begin(browser, fields)
    credential = SoftAuthenticator(origin="http://localhost").create(options.get_data(as_text=True))
    with app.app_context():
        for row in db.session.scalars(select(PasskeyChallenge)):
            row.expires_at -= passkey_auth.CHALLENGE_LIFETIME
        db.session.commit()
    before = counts(app)
    page = browser.post(PAGE, data={**fields, "credential": json.dumps(credential)})
    assert page.status_code == 400
    assert "Diese Anfrage ist abgelaufen" in page.get_data(as_text=True)
    assert counts(app) == before
    # A browser that never asked for options: its credential is refused as well.
    other = app.test_client()
    page = other.post(PAGE, data={**form_fields(other, team.service_id),
                                  "credential": json.dumps(credential)})
    assert page.status_code == 400
    assert counts(app) == before


def test_a_challenge_of_another_ceremony_is_not_accepted(app, team):
    """The options of the ordinary sign-in cannot be answered with a registration here."""
    browser = app.test_client()
    fields = form_fields(browser, team.service_id)
    sign_in = post_json(browser, "/login/passkey/begin", page="/login")
    options = json.loads(sign_in.get_data(as_text=True))
    made_up = {"rp": {"id": "localhost"}, "user": {"id": "AAAA"},
               "challenge": options["challenge"]}
    credential = SoftAuthenticator(origin="http://localhost").create(json.dumps(made_up))
    before = counts(app)
    page = browser.post(PAGE, data={**fields, "credential": json.dumps(credential)})
    assert page.status_code == 400
    assert counts(app) == before


def test_the_password_way_is_unchanged_when_no_passkey_is_chosen(app, team):
    browser = app.test_client()
    before = counts(app)
    fields = form_fields(browser, team.service_id)
    del fields["with_passkey"]
    page = browser.post(PAGE, data=fields)
    assert page.status_code == 400
    assert "Bitte wählen Sie ein Passwort." in page.get_data(as_text=True)
    assert counts(app) == before


def test_a_passkey_contact_can_add_a_way_in_that_does_not_need_the_device(app, team):
    """What the message after sending promises: under “My account” the person can add a
    password and recovery codes; with them the conversation opens without the device
    (the password, then a recovery code in place of the passkey)."""
    from tests.conftest import submit

    browser = app.test_client()
    answer, _ = write_with_passkey(browser, team.service_id)
    path = answer.headers["Location"]
    assert "mit Ihrem Passkey" in browser.get(path).get_data(as_text=True)
    assert "/account/security" in browser.get("/account/anonymous").get_data(as_text=True)
    security = browser.get("/account/security").get_data(as_text=True)
    assert "/account/password" in security
    password = "leise Wolken über dem Hafen"
    added = submit(browser, "/account/password", {"password": password},
                   form_url="/account/password")
    assert added.status_code == 302, added.get_data(as_text=True)
    codes = submit(browser, "/account/security/recovery-codes", {},
                   form_url="/account/security")
    code = re.search(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", codes.get_data(as_text=True))[1]

    lost_phone = app.test_client()
    first_step = submit(lost_phone, "/login/anonymous",
                        {"pseudonym": PSEUDONYM, "password": password})
    assert first_step.headers["Location"].endswith("/login/code")
    second_step = submit(lost_phone, "/login/code", {"recovery_code": code})
    assert second_step.status_code == 302, second_step.get_data(as_text=True)
    assert BODY in lost_phone.get(path).get_data(as_text=True)


# -- security review of the passkey way: "this name is taken" counts once, spent passkeys --
TAKEN = "Dieser Name ist schon vergeben."
TOO_MANY_NAMES = "Sie haben mehrere Namen versucht, die schon vergeben sind."
PASSWORD = "leise Wolken über dem Hafen"


def taken_on_the_page(app, service_id):
    """The password way with a name someone uses, from a browser of its own."""
    browser = app.test_client()
    fields = form_fields(browser, service_id, password=PASSWORD)
    del fields["with_passkey"]
    return browser.post(PAGE, data=fields)


def test_taken_names_are_one_count_for_the_page_and_the_begin_endpoint(app, team):
    answer, _ = write_with_passkey(app.test_client(), team.service_id)
    assert answer.status_code == 302
    for i in range(10):  # ten answers "taken", spread over both ways of asking
        if i % 2:
            page = taken_on_the_page(app, team.service_id)
            assert page.status_code == 400
            assert TAKEN in page.get_data(as_text=True)
        else:
            browser = app.test_client()
            refused = begin(browser, form_fields(browser, team.service_id))
            assert refused.status_code == 400
            assert refused.get_json()["resubmit"] is True
    # Then both refuse without looking a name up, also a name nobody uses.
    browser = app.test_client()
    refused = begin(browser, form_fields(browser, team.service_id, pseudonym="Niemand 42"))
    assert refused.status_code == 429
    assert refused.get_json()["resubmit"] is True  # the script shows the page's refusal
    page = taken_on_the_page(app, team.service_id)
    assert page.status_code == 429
    html = page.get_data(as_text=True)
    assert TOO_MANY_NAMES in html
    assert TAKEN not in html


def test_a_passkey_users_taken_name_counts_once(app, team):
    """The begin endpoint answers "taken", then the script sends the form the ordinary way
    to show why: one answer about one name, counted once."""
    answer, _ = write_with_passkey(app.test_client(), team.service_id)
    assert answer.status_code == 302
    for _i in range(5):
        browser = app.test_client()
        fields = form_fields(browser, team.service_id)
        assert begin(browser, fields).status_code == 400
        shown = browser.post(PAGE, data=fields)
        assert shown.status_code == 400
        assert TAKEN in shown.get_data(as_text=True)
    # Five names counted, not ten: five more answers, then the refusal.
    assert [taken_on_the_page(app, team.service_id).status_code
            for _i in range(6)] == [400] * 5 + [429]


def test_the_too_many_names_page_does_not_carry_the_spent_passkey(app, team):
    answer, _ = write_with_passkey(app.test_client(), team.service_id)
    assert answer.status_code == 302
    browser = app.test_client()
    fields = form_fields(browser, team.service_id, pseudonym="Löwenzahn 3")
    options = begin(browser, fields)
    assert options.status_code == 200
    credential = SoftAuthenticator(origin="http://localhost").create(
        options.get_data(as_text=True))
    for _i in range(10):  # meanwhile the network's allowance is used up
        assert taken_on_the_page(app, team.service_id).status_code == 400
    page = browser.post(PAGE, data={**fields, "credential": json.dumps(credential)})
    html = page.get_data(as_text=True)
    assert page.status_code == 429
    assert TOO_MANY_NAMES in html
    assert BODY in html  # what was typed is kept
    assert credential["id"] not in html
    assert credential["response"]["attestationObject"] not in html
    assert 'id="anonymous-credential" name="credential" type="hidden" value=""' in html


def test_a_passkey_the_device_cannot_offer_at_sign_in_is_refused(app, team):
    """The ordinary passkey sign-in finds only discoverable passkeys: one the browser
    reports as not discoverable (credProps) would lock the person out, so nothing is
    stored and the page suggests the password."""
    browser = app.test_client()
    fields = form_fields(browser, team.service_id)
    options = begin(browser, fields)
    assert json.loads(options.get_data(as_text=True))["extensions"] == {"credProps": True}
    credential = SoftAuthenticator(origin="http://localhost").create(
        options.get_data(as_text=True))
    credential["clientExtensionResults"] = {"credProps": {"rk": False}}
    before = counts(app)
    page = browser.post(PAGE, data={**fields, "credential": json.dumps(credential)})
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "den es bei der nächsten Anmeldung nicht anbieten kann" in html
    assert "Bitte wählen Sie stattdessen ein Passwort." in html
    for typed in (BODY, TOPIC, PSEUDONYM):
        assert typed in html
    assert counts(app) == before

    # A browser that says the passkey is discoverable is accepted, as one that says nothing.
    fields = form_fields(browser, team.service_id)
    options = begin(browser, fields)
    credential = SoftAuthenticator(origin="http://localhost").create(
        options.get_data(as_text=True))
    credential["clientExtensionResults"] = {"credProps": {"rk": True}}
    answer = browser.post(PAGE, data={**fields, "credential": json.dumps(credential)})
    assert answer.status_code == 302, answer.get_data(as_text=True)
