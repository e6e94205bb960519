"""Consent for people with only a password: a code sent by email plus the typed name (the
weakest method, recorded as such), a passkey made on the consent's page, "I do not agree",
the name of whoever asked, one reminder after a few days and an email with a link to the
receipt."""

import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from shared import seal
from shared.consent_verify import check_receipt
from shared.extensions import db
from shared.models import Account, Client, Consent, ConsentRequest, Guardianship, UserSession
from shared.models.base import utcnow
from shared.models.consents import ConsentEmailCode
from shared.services import consents
from tests.conftest import (
    age_sign_ins,
    assign_caseworker,
    consent_begin_url,
    post_json,
    submit,
)
from tests.portal.conftest import TEXTS
from tests.soft_authenticator import SoftAuthenticator


def own_client_id(app, person) -> uuid.UUID:
    with app.app_context():
        return db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))


@pytest.fixture
def mia(app, client, auth, make_client, make_staff, template):
    """Mia (password only), asked by her caseworker T. Tester for the photo consent;
    signed in. Returns (person, own client id, caseworker)."""
    person = make_client(full_name="Mia Demir")
    own = own_client_id(app, person)
    worker = make_staff(role="caseworker")
    assign_caseworker(app, own, worker)
    auth.login(worker, area="staff")
    asked = submit(client, f"/staff/clients/{own}/consents/request", {"key": "fotos"},
                   form_url=f"/staff/clients/{own}")
    assert asked.status_code == 302
    auth.logout("staff")
    auth.login(person)
    return person, own, worker


def emailed_code(outbox, address: str) -> str:
    body = outbox.last_to(address).get_content()
    match = re.search(r"^\s*(\d{6})\s*$", body, re.MULTILINE)
    assert match, body
    return match.group(1)


def send_code(client, template, own):
    page = f"/consents/{template}/{own}"
    return submit(client, f"{page}/email-code/send", {"send-submit": "1"}, form_url=page)


def sign_by_email(client, template, own, code, name="Mia Demir"):
    page = f"/consents/{template}/{own}"
    return submit(client, f"{page}/email-code",
                  {"email-code": code, "email-typed_name": name}, form_url=page)


def test_a_password_only_client_signs_with_an_emailed_code_and_her_typed_name(
        app, client, outbox, runner, mia, template, tmp_path):
    person, own, _worker = mia
    page_url = f"/consents/{template}/{own}"
    page = client.get(page_url).get_data(as_text=True)
    # Who asked, and when; no dead end to the security settings.
    assert "<bdi>T. Tester</bdi> hat Sie am" in page  # the name isolated (bidi)
    assert "um diese Einwilligung gebeten." in page
    assert "<bdi>T. Tester</bdi> hat Sie am" in client.get("/consents").get_data(as_text=True)
    assert "Code per E-Mail schicken" in page
    assert "Mit einem Code per E-Mail und Ihrem Namen (schwächer)" in page
    assert 'name="email-code"' not in page  # the field comes with the code
    assert "/account/security" not in page.split("<main")[-1]

    sent = send_code(client, template, own)
    assert sent.status_code == 302
    code = emailed_code(outbox, person.email)
    mail = outbox.last_to(person.email).get_content()
    assert "Fotos" not in mail  # the code, never the consent's content
    with app.app_context():
        row = db.session.scalar(select(ConsentEmailCode))
        assert len(row.code_hash) == 32
        assert code.encode() not in row.code_hash
        assert row.expires_at - row.created_at == timedelta(minutes=15)
    page = client.get(page_url).get_data(as_text=True)
    assert "Gültig" not in page
    assert 'name="email-code"' in page
    assert 'inputmode="numeric"' in page

    # A wrong name costs nothing; a wrong code counts.
    wrong_name = sign_by_email(client, template, own, code, name="Jemand Anderes")
    assert "so ein, wie er in Ihrem Konto steht" in wrong_name.get_data(as_text=True)
    wrong = "000000" if code != "000000" else "111111"
    wrong_code = sign_by_email(client, template, own, wrong)
    assert "Der Code stimmt nicht." in wrong_code.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(ConsentEmailCode.attempts)) == 1
        assert db.session.scalar(select(Consent)) is None

    signed = sign_by_email(client, template, own, code)
    assert signed.status_code == 302
    page = client.get(page_url).get_data(as_text=True)
    assert "per E-Mail gesendeter Code und eingetippter Name (am schwächsten)" in page
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.method == "email-code-name"
        assert consent.status == "given"
        assert consent.evidence["method"] == "email-code-name"
        assert consent.evidence["typed_name"] == "Mia Demir"
        assert consent.evidence["code_sent_to"] == person.email
        assert db.session.scalar(select(ConsentEmailCode.used_at)) is not None
        assert db.session.scalar(select(ConsentRequest.fulfilled_at)) is not None
        consent_id, receipt = consent.id, consent.receipt
        cert = seal.load(app.extensions["einblick"].config).certificate_pem
    assert f"/consents/receipt/{consent_id}/consent.pdf" in page
    assert "T. Tester hat Sie" not in page  # answered

    # The email after signing: a link to the consent's page, no content, no attachment.
    message = outbox.last_to(person.email)
    assert message["Subject"] == "Ihre Einwilligung ist gespeichert"
    assert not list(message.iter_attachments())
    assert page_url in message.get_content()
    assert "Fotos" not in message.get_content()

    # The receipt names the method, and every check knows it.
    evidence = json.loads(seal.attachment(receipt, "evidence.json"))
    assert evidence["method"] == "email-code-name"
    assert all(ok for _label, ok in check_receipt(receipt, cert))
    verified = runner.invoke(args=["consents", "verify", str(consent_id)])
    assert verified.exit_code == 0, verified.output
    assert "code sent by email" in verified.output
    checked = client.post("/verify", data={
        "receipt": (__import__("io").BytesIO(receipt), "r.pdf"),
        "csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                                client.get("/verify").get_data(as_text=True)).group(1)},
        content_type="multipart/form-data").get_data(as_text=True)
    assert "per E-Mail gesendeter Code und eingetippter Name (schwächste Methode)" in checked

    # Used once.
    assert sign_by_email(client, template, own, code).status_code == 409


def test_an_emailed_code_is_short_lived_bound_to_its_consent_and_ends_after_five_guesses(
        app, client, outbox, mia, template):
    person, own, _worker = mia
    with app.app_context():
        other = consents.save_template(key="ausflug", texts={"de": {"title": "Ausflug",
                                                                    "text": "Ich willige ein."}},
                                       purpose="Ausflug", legal_basis="Art. 6",
                                       audience="", guardian_signs=True)
        consents.publish(other.id)
        other_id = other.id
    send_code(client, template, own)
    code = emailed_code(outbox, person.email)
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        # Sent for the photos, it signs no other consent (and that was a guess).
        with pytest.raises(consents.WrongCode):
            consents.sign_with_email_code(account=account, template_id=other_id,
                                          subject_id=own, locale="de", code=code,
                                          typed_name="Mia Demir")
        for _ in range(4):
            with pytest.raises(consents.WrongCode):
                consents.sign_with_email_code(account=account, template_id=template,
                                              subject_id=own, locale="de",
                                              code="12345" + str((int(code[-1]) + 1) % 10),
                                              typed_name="Mia Demir")
        # Five wrong guesses: even the right code is refused now.
        with pytest.raises(consents.CodeExpired):
            consents.sign_with_email_code(account=account, template_id=template,
                                          subject_id=own, locale="de", code=code,
                                          typed_name="Mia Demir")
    send_code(client, template, own)
    fresh = emailed_code(outbox, person.email)
    with app.app_context():
        assert db.session.scalar(select(ConsentEmailCode.attempts)) == 0  # replaced
        db.session.execute(update(ConsentEmailCode).values(
            expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    expired = sign_by_email(client, template, own, fresh)
    assert expired.status_code == 302
    assert "gilt nicht mehr" in client.get(expired.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Consent)) is None


def test_wrong_codes_are_rate_limited_right_ones_are_not(app, client, outbox, mia, template):
    person, own, _worker = mia
    send_code(client, template, own)
    code = emailed_code(outbox, person.email)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        assert sign_by_email(client, template, own, wrong).status_code == 200
    # Wrong names do not count against the limit.
    for _ in range(3):
        assert sign_by_email(client, template, own, code, name="Nicht Mia").status_code == 200
    assert sign_by_email(client, template, own, code).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Consent.method)) == "email-code-name"


def test_accounts_with_a_passkey_or_an_app_are_not_offered_the_weaker_emailed_code(
        app, client, auth, make_client, template, outbox):
    person = make_client(totp=True, full_name="Jonas Weber")
    auth.login(person)
    own = own_client_id(app, person)
    page = client.get(f"/consents/{template}/{own}").get_data(as_text=True)
    assert "Code per E-Mail schicken" not in page
    assert "Code aus Ihrer Authenticator-App" in page or 'name="code"' in page
    response = client.post(f"/consents/{template}/{own}/email-code/send",
                           data={"csrf_token": re.search(
                               r'name="csrf_token" type="hidden" value="([^"]+)"',
                               page).group(1), "send-submit": "1"})
    assert response.status_code == 409
    with app.app_context():
        assert db.session.scalar(select(ConsentEmailCode)) is None
        assert not outbox.to(person.email)


def test_a_passkey_made_on_the_consent_page_brings_her_back_to_sign(app, client, mia,
                                                                    template):
    _person, own, _worker = mia
    page_url = f"/consents/{template}/{own}"
    age_sign_ins(app)
    page = client.get(page_url).get_data(as_text=True)
    # Only where the device can make one (passkeys.js un-hides data-passkey-offer).
    assert 'data-passkey-offer hidden' in page
    assert f'href="/account/confirm?next={page_url}"' in page
    with app.app_context():
        db.session.execute(update(UserSession).values(authenticated_at=utcnow()))
        db.session.commit()
    page = client.get(page_url).get_data(as_text=True)
    assert 'data-passkey="create"' in page
    finish = f"/account/passkeys/finish?next={page_url}"
    assert f'data-finish="{finish}"' in page
    key = SoftAuthenticator(origin="http://localhost")
    begin = post_json(client, "/account/passkeys/begin", page=page_url)
    assert begin.status_code == 200, begin.get_data(as_text=True)
    made = post_json(client, finish, {"credential": key.create(begin.get_data(as_text=True)),
                                      "name": "Handy"}, page=page_url)
    assert made.status_code == 200, made.get_data(as_text=True)
    assert made.get_json()["redirect"] == page_url
    back = client.get(page_url).get_data(as_text=True)
    assert "Mit Passkey unterschreiben" in back
    assert "Code per E-Mail schicken" not in back
    signing = post_json(client, consent_begin_url(client, page_url), page=page_url)
    done = post_json(client, "/consents/passkey/finish",
                     {"credential": key.get(signing.get_data(as_text=True))}, page=page_url)
    assert done.status_code == 200, done.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Consent.method)) == "passkey"


def test_i_do_not_agree_is_recorded_shown_to_staff_and_can_be_changed(
        app, client, auth, outbox, runner, mia, template):
    person, own, worker = mia
    page_url = f"/consents/{template}/{own}"
    assert "Ich willige nicht ein" in client.get(page_url).get_data(as_text=True)
    asked_once = client.get(f"{page_url}/decline").get_data(as_text=True)
    assert "Es wird nichts unterschrieben." in asked_once
    declined = submit(client, f"{page_url}/decline", {})
    assert declined.status_code == 302
    with app.app_context():
        record = db.session.scalar(select(Consent))
        assert record.status == "declined"
        assert record.method == "confirmation"
        assert record.signer_account_id == person.account_id
        assert record.receipt is None
        assert json.loads(record.document)["decision"] == "declined"
        assert db.session.scalar(select(ConsentRequest.fulfilled_at)) is not None
        declined_id = record.id
    page = client.get(page_url).get_data(as_text=True)
    assert "dass Sie nicht einwilligen." in page
    assert "Anders entschieden?" in page
    assert "Code per E-Mail schicken" in page  # the way to change one's mind
    assert 'data-status="declined"' in client.get("/consents").get_data(as_text=True)
    assert runner.invoke(args=["consents", "verify", str(declined_id)]).exit_code == 0
    # Declining twice records nothing new; a refusal is not withdrawn.
    submit(client, f"{page_url}/decline", {})
    withdrawn = submit(client, f"/consents/{declined_id}/withdraw", {})
    assert withdrawn.headers["Location"] == page_url
    with app.app_context():
        assert len(db.session.scalars(select(Consent)).all()) == 1
        assert db.session.get(Consent, declined_id).status == "declined"
        assert db.session.get(Consent, declined_id).withdrawal_receipt is None

    auth.logout()
    auth.login(worker, area="staff")
    file = client.get(f"/staff/clients/{own}").get_data(as_text=True)
    assert re.search(r'data-consent="fotos".*?data-status="declined">nicht eingewilligt<', file,
                     re.DOTALL)
    assert f"/staff/consents/receipt/{declined_id}" not in file
    auth.logout("staff")

    auth.login(person)
    send_code(client, template, own)
    assert sign_by_email(client, template, own,
                         emailed_code(outbox, person.email)).status_code == 302
    with app.app_context():
        assert consents.current_consent(own, "fotos").status == "given"


def test_one_reminder_per_request_after_the_configured_days(app, client, auth, outbox, runner,
                                                             make_client, make_staff,
                                                             template):
    worker = make_staff(role="caseworker")
    people = [make_client(full_name=f"Person {n}") for n in range(6)]
    with app.app_context():
        for n, person in enumerate(people):
            db.session.add(ConsentRequest(
                template_key="fotos", subject_id=own_client_id(app, person),
                created_at=utcnow() - timedelta(days=4 if n < 5 else 1)))
        db.session.commit()
        db.session.execute(update(ConsentRequest)
                           .where(ConsentRequest.subject_id == own_client_id(app, people[4]))
                           .values(fulfilled_at=utcnow()))
        db.session.commit()
    result = runner.invoke(args=["consents", "remind"])
    assert result.exit_code == 0, result.output
    assert "Sent 4 consent reminders." in result.output
    for person in people[:4]:
        [reminder] = outbox.to(person.email)
        assert reminder["Subject"] == "Erinnerung: Bitte sehen Sie sich eine Einwilligung an"
        assert "/consents" in reminder.get_content()
        assert "Fotos" not in reminder.get_content()
    assert not outbox.to(people[4].email)  # answered
    assert not outbox.to(people[5].email)  # asked only yesterday
    assert "Sent 0 consent reminders." in runner.invoke(args=["consents", "remind"]).output
    assert worker is not None


def test_reminders_cost_the_same_statements_however_many_are_due(app, make_client, template):
    from tests.portal.test_household import add_child  # noqa: F401  (a guardian below)

    def add_due(count: int) -> None:
        with app.app_context():
            for n in range(count):
                person = make_client(full_name=f"P {n}")
                db.session.add(ConsentRequest(template_key="fotos",
                                              subject_id=own_client_id(app, person),
                                              created_at=utcnow() - timedelta(days=5)))
            db.session.commit()

    def statements_of_a_run() -> tuple[int, int]:
        seen: list[str] = []
        with app.app_context():
            engine = db.engine

            def count(_conn, _cursor, statement, *_args) -> None:
                seen.append(statement)

            event.listen(engine, "before_cursor_execute", count)
            try:
                sent = consents.send_reminders()
            finally:
                event.remove(engine, "before_cursor_execute", count)
        return sent, len(seen)

    add_due(2)
    small = statements_of_a_run()
    add_due(8)
    large = statements_of_a_run()
    assert small[0] == 2
    assert large[0] == 8
    assert large[1] == small[1]


def test_a_guardian_is_reminded_of_a_consent_asked_for_her_child(app, client, auth, outbox,
                                                                  make_client, template):
    from tests.portal.test_household import add_child

    parent = make_client(full_name="Ayse Demir")
    auth.login(parent)
    add_child(client, full_name="Emil Demir")
    with app.app_context():
        child = db.session.scalar(select(Guardianship)).dependant_id
        db.session.add(ConsentRequest(template_key="fotos", subject_id=child,
                                      created_at=utcnow() - timedelta(days=3, minutes=1)))
        db.session.commit()
        assert consents.send_reminders() == 1
    assert outbox.last_to(parent.email)["Subject"].startswith("Erinnerung")


def test_five_wrong_codes_then_the_limit_answers(app, client, outbox, mia, template):
    person, own, _worker = mia
    send_code(client, template, own)
    code = emailed_code(outbox, person.email)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert sign_by_email(client, template, own, wrong).status_code == 200
    assert sign_by_email(client, template, own, code).status_code == 429
    with app.app_context():
        assert db.session.scalar(select(Consent)) is None


def test_the_reminder_delay_is_configured_and_checked():
    from shared.config import Config, ConfigError

    assert Config.from_env({}).consent_reminder_days == 3
    assert Config.from_env({"EINBLICK_CONSENT_REMINDER_DAYS": "5"}).consent_reminder_days == 5
    with pytest.raises(ConfigError, match="EINBLICK_CONSENT_REMINDER_DAYS must be 1"):
        Config.from_env({"EINBLICK_CONSENT_REMINDER_DAYS": "0"})


def test_a_refusal_has_a_document_of_its_own_and_consents_keep_theirs(app, template):
    from datetime import UTC, datetime

    from shared.consent_verify import verify_evidence_document
    from shared.models import ConsentTemplate

    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    subject, signer = uuid.uuid4(), uuid.uuid4()
    with app.app_context():
        row = db.session.get(ConsentTemplate, template)
        given = consents.canonical_document(template=row, locale="de", subject_id=subject,
                                            signer_id=signer, at=at)
        refused = consents.canonical_document(template=row, locale="de", subject_id=subject,
                                              signer_id=signer, at=at, decision="declined")
    # Documents signed before refusals existed are byte for byte what they were.
    assert "decision" not in json.loads(given)
    assert json.loads(refused)["decision"] == "declined"
    assert given != refused
    # The weakest method needs the typed name in its evidence, like the TOTP one.
    evidence = {"method": "email-code-name", "document": consents.b64(given),
                "text": TEXTS["de"]}
    assert not verify_evidence_document(evidence).ok
    assert verify_evidence_document({**evidence, "typed_name": "Mia Demir"}).ok


def test_a_guess_read_before_the_last_attempt_was_spent_is_not_compared(
        app, mia, template, outbox, monkeypatch):
    """Workers racing: each read the code while attempts were left; the ones whose turn
    comes after the fifth wrong guess may not compare theirs (not even the right code)."""
    person, own, _worker = mia
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        consents.send_email_code(account=account, template_id=template, subject_id=own)
    code = emailed_code(outbox, person.email)
    with app.app_context():
        stale = db.session.scalar(select(ConsentEmailCode))  # read with attempts == 0
        db.session.expunge(stale)
        db.session.execute(update(ConsentEmailCode).values(
            attempts=consents.EMAIL_CODE_ATTEMPTS))  # meanwhile the others guessed wrong
        db.session.commit()
    monkeypatch.setattr(consents, "_waiting_email_code", lambda account, now: stale)
    compared = []
    real = consents.hmac.compare_digest
    monkeypatch.setattr(consents.hmac, "compare_digest",
                        lambda a, b: compared.append(1) or real(a, b))
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        with pytest.raises(consents.CodeExpired):
            consents.sign_with_email_code(account=account, template_id=template,
                                          subject_id=own, locale="de", code=code,
                                          typed_name="Mia Demir")
        assert compared == []
        assert db.session.scalar(select(Consent)) is None
        assert db.session.scalar(select(ConsentEmailCode.attempts)) == \
            consents.EMAIL_CODE_ATTEMPTS
