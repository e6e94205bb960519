"""Digital consent: canonical documents, passkey signatures bound to one document, the
weaker code-and-name method, sealed receipts, verification online and offline, and
withdrawal that is as easy as giving."""

import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from shared import seal
from shared.extensions import db
from shared.models import Client, Consent, ConsentTemplate, Guardianship, PasskeyCredential
from shared.services import consents
from tests.conftest import consent_begin_url, sign_with_code_and_name, submit
from tests.shared.test_passkeys import add_passkey, post_json
from tests.soft_authenticator import SoftAuthenticator


def test_canonical_json_is_stable_across_languages_and_key_order(app, template):
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    subject, signer = uuid.uuid4(), uuid.uuid4()
    with app.app_context():
        row = db.session.get(ConsentTemplate, template)
        first = consents.canonical_document(template=row, locale="de", subject_id=subject,
                                            signer_id=signer, at=at)
        row.texts = dict(reversed(list(row.texts.items())))  # other key order
        again = consents.canonical_document(template=row, locale="de", subject_id=subject,
                                            signer_id=signer, at=at)
        english = consents.canonical_document(template=row, locale="en", subject_id=subject,
                                              signer_id=signer, at=at)
        unknown = consents.canonical_document(template=row, locale="tr", subject_id=subject,
                                              signer_id=signer, at=at)
    assert first == again
    assert first != english
    assert json.loads(english)["language"] == "en"
    assert json.loads(unknown)["language"] == "de"  # falls back to the binding German
    assert list(json.loads(first)) == sorted(json.loads(first))
    assert b" " not in first.split(b'"text_sha256"')[0]


def sign_with_passkey(client, authenticator, template_id, subject_id):
    """As the page's script does: ask the address the page names for a challenge, sign
    it, send it back."""
    page = f"/consents/{template_id}/{subject_id}"
    begin = post_json(client, consent_begin_url(client, page), page=page)
    assert begin.status_code == 200, begin.get_data(as_text=True)
    assertion = authenticator.get(begin.get_data(as_text=True))
    return post_json(client, "/consents/passkey/finish", {"credential": assertion}, page=page)


@pytest.fixture
def parent_with_child(app, client, auth, make_client):
    from tests.portal.test_household import add_child

    parent = make_client(full_name="Ayse Demir")
    auth.login(parent)
    key = SoftAuthenticator(origin="http://localhost")
    assert add_passkey(client, key).status_code == 200
    add_child(client, full_name="Emil Demir")
    with app.app_context():
        child = db.session.scalar(select(Guardianship)).dependant_id
    return parent, key, child


def test_guardian_signs_for_a_child_with_a_passkey(app, client, parent_with_child, template,
                                                   runner, tmp_path):
    parent, key, child = parent_with_child
    response = sign_with_passkey(client, key, template, child)
    assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.subject_id == child
        assert consent.signer_account_id == parent.account_id
        assert consent.method == "passkey"
        assert consent.status == "given"
        assert b"Fotos" not in consent.document_ciphertext
        consent_id = consent.id
        receipt = consent.receipt
        cert = seal.load(app.extensions["einblick"].config).certificate_pem
    page = client.get(f"/consents/{template}/{child}").get_data(as_text=True)
    assert f"/consents/receipt/{consent_id}/consent.pdf" in page

    # The receipt: sealed (PAdES), evidence embedded, checks pass online, offline, by CLI.
    check = seal.check_seal(receipt, cert)
    assert check.intact
    assert check.trusted
    evidence = json.loads(seal.attachment(receipt, "evidence.json"))
    assert consents.verify_evidence(evidence)
    assert runner.invoke(args=["consents", "verify", str(consent_id)]).exit_code == 0
    (tmp_path / "r.pdf").write_bytes(receipt)
    (tmp_path / "org.pem").write_bytes(cert)
    offline = subprocess.run([sys.executable, "-m", "shared.consent_verify",
                              str(tmp_path / "r.pdf"), "--cert", str(tmp_path / "org.pem")],
                             capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    assert offline.returncode == 0, offline.stdout + offline.stderr
    verified = client.post("/verify", data={"receipt": (__import__("io").BytesIO(receipt),
                                                        "r.pdf"),
                                            "csrf_token": _token(client)},
                           content_type="multipart/form-data")
    text = verified.get_data(as_text=True)
    assert 'data-check="seal">gültig</dd>' in text
    assert "Emil" not in text
    assert "Ayse" not in text


def _token(client):
    import re

    html = client.get("/verify").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_changing_one_byte_of_text_evidence_or_receipt_fails(app, client, parent_with_child,
                                                             template, runner):
    _parent, key, child = parent_with_child
    sign_with_passkey(client, key, template, child)
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        consent_id, receipt = consent.id, consent.receipt
        cert = seal.load(app.extensions["einblick"].config).certificate_pem
        original_document, original_evidence = consent.document, consent.evidence
        # the stored text (document)
        consent.document = original_document.replace(b'"version":1', b'"version":2')
        db.session.commit()
    assert runner.invoke(args=["consents", "verify", str(consent_id)]).exit_code != 0
    with app.app_context():
        consent = db.session.get(Consent, consent_id)
        consent.document = original_document
        evidence = dict(original_evidence)
        signature = bytearray(consents.unb64(evidence["signature"]))
        signature[-1] ^= 1
        evidence["signature"] = consents.b64(bytes(signature))
        consent.evidence = evidence
        db.session.commit()
    assert runner.invoke(args=["consents", "verify", str(consent_id)]).exit_code != 0
    tampered = bytearray(receipt)
    position = receipt.find(b"Receipt") if b"Receipt" in receipt else len(receipt) // 3
    tampered[position] ^= 1
    assert not seal.check_seal(bytes(tampered), cert).intact


def test_an_assertion_for_one_document_is_refused_for_another(app, client, parent_with_child,
                                                              template):
    _parent, key, child = parent_with_child
    with app.app_context():
        other = consents.save_template(key="ausflug", texts={"de": {"title": "Ausflug",
                                                                   "text": "Ja."}},
                                       purpose="Ausflug", legal_basis="Art. 6",
                                       audience="", guardian_signs=True)
        consents.publish(other.id)
        other_id = other.id
    page = f"/consents/{template}/{child}"
    begin_a = post_json(client, consent_begin_url(client, page), page=page)
    assertion_a = key.get(begin_a.get_data(as_text=True))
    other_page = f"/consents/{other_id}/{child}"
    post_json(client, consent_begin_url(client, other_page), page=other_page)
    response = post_json(client, "/consents/passkey/finish", {"credential": assertion_a},
                         page=other_page)
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(Consent)) is None


def test_code_and_typed_name_is_recorded_as_the_weaker_method(app, client, auth, make_client,
                                                              template, totp_clock):
    person = make_client(totp=True, full_name="Jonas Weber")
    auth.login(person)
    with app.app_context():
        own = db.session.scalar(select(Client).where(Client.account_id == person.account_id))
    totp_clock.advance()
    response = submit(client, f"/consents/{template}/{own.id}",
                      {"code": totp_clock.code(person.totp_secret), "typed_name": "Jonas Weber"})
    assert response.status_code == 302
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert consent.method == "totp-name"
        assert consent.evidence["typed_name"] == "Jonas Weber"
    page = client.get(f"/consents/{template}/{own.id}").get_data(as_text=True)
    assert "Code und eingetippter Name (schwächer)" in page


def test_withdrawal_is_one_button_sealed_and_never_shown_as_valid(app, client, auth,
                                                                  parent_with_child, template,
                                                                  make_staff, outbox):
    _parent, key, child = parent_with_child
    sign_with_passkey(client, key, template, child)
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        consent_id, receipt = consent.id, consent.receipt
        from shared.models import Assignment, StaffMember

        worker = make_staff(role="caseworker")
        member = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == worker.account_id))
        db.session.add(Assignment(client_id=child, staff_member_id=member.id))
        db.session.commit()
    response = submit(client, f"/consents/{consent_id}/withdraw", {})
    assert response.status_code == 302
    with app.app_context():
        consent = db.session.get(Consent, consent_id)
        assert consent.status == "withdrawn"
        cert = seal.load(app.extensions["einblick"].config).certificate_pem
        assert seal.check_seal(consent.withdrawal_receipt, cert).intact
    assert outbox.to(worker.email)
    result = client.post("/verify", data={"receipt": (__import__("io").BytesIO(receipt),
                                                      "r.pdf"), "csrf_token": _token(client)},
                         content_type="multipart/form-data").get_data(as_text=True)
    # The seal and the signature still check out, but the consent is never shown as still
    # given. (The page's introduction always says "widerrufen"; only the value counts.)
    assert re.search(r'data-check="status">([^<]*)<', result).group(1) == "widerrufen"
    assert "weiterhin gegeben" not in result


def test_a_withdrawal_for_a_client_without_caseworker_is_told_to_the_admins(
        app, client, auth, parent_with_child, template, make_staff, outbox):
    """Nobody is assigned yet: the active admins (who assign caseworkers) get the email;
    caseworkers, reception and a deactivated admin do not."""
    from shared.models import StaffMember
    from shared.services import staff

    _parent, key, child = parent_with_child
    admin, gone = make_staff(role="admin"), make_staff(role="admin")
    others = [make_staff(role="caseworker"), make_staff(role="reception")]
    with app.app_context():
        acting, leaving = (db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == person.account_id)) for person in (admin, gone))
        staff.set_active(admin=acting, member_id=leaving.id, active=False)
    sign_with_passkey(client, key, template, child)
    with app.app_context():
        consent_id = db.session.scalar(select(Consent.id))
    assert submit(client, f"/consents/{consent_id}/withdraw", {}).status_code == 302
    assert outbox.last_to(admin.email)["Subject"] == "Eine Einwilligung wurde widerrufen"
    for person in (gone, *others):
        assert outbox.to(person.email) == []


def test_staff_write_and_publish_templates_and_versions_are_immutable(app, client, auth,
                                                                      make_staff):
    auth.login(make_staff(role="admin"), area="staff")
    response = submit(client, "/staff/consents/new", {
        "key": "newsletter", "title_de": "Newsletter", "text_de": "Ich möchte …",
        "title_en": "", "text_en": "", "purpose": "Information", "legal_basis": "Art. 6",
        "audience": "", "guardian_signs": "y"})
    assert response.status_code == 302
    with app.app_context():
        draft = db.session.scalar(select(ConsentTemplate))
        draft_id = draft.id
    submit(client, f"/staff/consents/{draft_id}/publish", {}, form_url="/staff/consents")
    submit(client, f"/staff/consents/{draft_id}", {
        "key": "newsletter", "title_de": "Newsletter", "text_de": "Geänderter Text",
        "title_en": "", "text_en": "", "purpose": "Information", "legal_basis": "Art. 6",
        "audience": ""})
    with app.app_context():
        rows = db.session.scalars(select(ConsentTemplate).order_by(
            ConsentTemplate.version)).all()
        assert [r.version for r in rows] == [1, 2]
        assert rows[0].texts["de"]["text"] == "Ich möchte …"  # published stays as it was
        assert rows[0].status == "published"
        assert rows[1].status == "draft"


def test_staff_ask_a_client_to_sign_and_see_the_status(app, client, auth, make_client,
                                                       make_staff, template, outbox):
    from shared.models import Assignment, StaffMember

    person = make_client(full_name="Mia Demir")
    worker = make_staff(role="caseworker")
    with app.app_context():
        own_id = db.session.scalar(select(Client.id).where(
            Client.account_id == person.account_id))
        member = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == worker.account_id))
        db.session.add(Assignment(client_id=own_id, staff_member_id=member.id))
        db.session.commit()
    auth.login(worker, area="staff")
    page = client.get(f"/staff/clients/{own_id}").get_data(as_text=True)
    assert 'data-consent="fotos"' in page
    assert 'data-status="missing"' in page
    submit(client, f"/staff/clients/{own_id}/consents/request", {"key": "fotos"},
           form_url=f"/staff/clients/{own_id}")
    assert "/consents" in outbox.last_to(person.email).get_content()
    auth.logout("staff")
    auth.login(person)
    overview = client.get("/consents").get_data(as_text=True)
    assert 'data-status="open"' in overview


def test_a_consent_required_for_a_service_is_pointed_out_when_booking(app, client, auth,
                                                                     make_client,
                                                                     make_bookable, make_staff):
    from tests.conftest import tomorrow_slot_token

    bookable = make_bookable()
    auth.login(make_staff(role="admin"), area="staff")
    submit(client, "/staff/consents/new", {
        "key": "beratung", "title_de": "Beratung dokumentieren", "text_de": "Ich willige ein.",
        "title_en": "", "text_en": "", "purpose": "Beratung", "legal_basis": "Art. 6",
        "audience": "", "guardian_signs": "y", "required_for": str(bookable.service_id)})
    with app.app_context():
        draft_id = db.session.scalar(select(ConsentTemplate)).id
    submit(client, f"/staff/consents/{draft_id}/publish", {}, form_url="/staff/consents")
    auth.logout("staff")
    auth.login(make_client())
    page = client.get(f"/bookings/new/{bookable.service_id}/"
                      f"{tomorrow_slot_token(app, bookable)}").get_data(as_text=True)
    assert "Beratung dokumentieren" in page


def test_review_rules_who_signs_what(app, client, parent_with_child, template):
    """A guardian signs only templates meant for guardians, only the newest version."""
    _parent, key, child = parent_with_child
    with app.app_context():
        own_only = consents.save_template(key="selbst", texts={"de": {"title": "Selbst",
                                                                     "text": "Nur selbst."}},
                                          purpose="x", legal_basis="y", audience="",
                                          guardian_signs=False)
        consents.publish(own_only.id)
        newer = consents.save_template(key="fotos", texts={"de": {"title": "Fotos v2",
                                                                 "text": "Neu."}},
                                       purpose="x", legal_basis="y", audience="",
                                       guardian_signs=True, template_id=template)
        consents.publish(newer.id)
        own_only_id = own_only.id
    for template_id in (own_only_id, template):  # not for guardians / outdated version
        page = f"/consents/{template_id}/{child}"
        response = post_json(client, f"{page}/passkey/begin", page="/consents")
        assert response.status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Consent)) is None


def test_a_receipt_sealed_by_someone_else_is_not_confirmed(app, client, parent_with_child,
                                                           template, tmp_path):
    import io

    from shared.config import Config

    _parent, key, child = parent_with_child
    sign_with_passkey(client, key, template, child)
    with app.app_context():
        receipt = db.session.scalar(select(Consent)).receipt
    # An attacker copies the real evidence into a PDF sealed with a certificate of their
    # own that carries the organisation's name.
    from fpdf import FPDF

    other = Config(instance_path=str(tmp_path / "attacker"), organisation_name="Einblick")
    seal.ensure(other)
    pdf = FPDF()
    pdf.add_page()
    pdf.embed_file(bytes=seal.attachment(receipt, "evidence.json"), basename="evidence.json")
    forged = seal.seal_pdf(bytes(pdf.output()), seal.load(other))
    result = client.post("/verify", data={"receipt": (io.BytesIO(forged), "r.pdf"),
                                          "csrf_token": _token(client)},
                         content_type="multipart/form-data").get_data(as_text=True)
    assert 'data-check="seal">ungültig</dd>' in result
    assert "Fotos in der Kita" not in result  # nothing is looked up for a foreign seal
    (tmp_path / "f.pdf").write_bytes(forged)
    offline = subprocess.run([sys.executable, "-m", "shared.consent_verify",
                              str(tmp_path / "f.pdf")], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    assert offline.returncode == 1
    assert "NOT CHECKED" in offline.stdout


def test_swapping_the_template_of_a_stored_consent_is_found(app, client, parent_with_child,
                                                            template, runner):
    _parent, key, child = parent_with_child
    sign_with_passkey(client, key, template, child)
    with app.app_context():
        other = consents.save_template(key="anderes", texts={"de": {"title": "Anderes",
                                                                   "text": "Anders."}},
                                       purpose="x", legal_basis="y", audience="",
                                       guardian_signs=True)
        consent = db.session.scalar(select(Consent))
        consent.template_id = other.id
        db.session.commit()
        consent_id = consent.id
    result = runner.invoke(args=["consents", "verify", str(consent_id)])
    assert result.exit_code != 0
    assert "another template" in result.output


def tamper_evidence(app, change) -> uuid.UUID:
    """Edit the stored evidence of the one consent through the model (as someone with the
    database and the keys could); returns the consent's id."""
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        evidence = dict(consent.evidence)
        change(evidence)
        consent.evidence = evidence
        db.session.commit()
        return consent.id


def test_a_changed_text_in_the_stored_evidence_is_found(app, client, parent_with_child,
                                                        template, runner):
    _parent, key, child = parent_with_child
    sign_with_passkey(client, key, template, child)
    with app.app_context():
        consent_id = db.session.scalar(select(Consent.id))
    assert runner.invoke(args=["consents", "verify", str(consent_id)]).exit_code == 0  # control

    def other_text(evidence):
        evidence["text"] = {**evidence["text"], "text": "Ich willige in alles ein."}

    tamper_evidence(app, other_text)
    result = runner.invoke(args=["consents", "verify", str(consent_id)])
    assert result.exit_code != 0
    assert "the embedded text is not the text that was signed" in result.output


@pytest.mark.parametrize(("named", "reason"), [
    ("another-passkey", "the evidence names another passkey than the one that signed"),
    ("unknown-passkey", "the evidence names another passkey than the one that signed"),
    # The signing passkey was removed since: the evidence sealed into the receipt tells.
    ("after-removal", "the stored evidence differs from the evidence sealed into the receipt"),
])
def test_a_changed_credential_id_in_the_stored_evidence_is_found(app, client, parent_with_child,
                                                                 template, runner, named,
                                                                 reason):
    _parent, key, child = parent_with_child
    sign_with_passkey(client, key, template, child)
    if named == "after-removal":
        with app.app_context():
            db.session.execute(delete(PasskeyCredential))
            db.session.commit()
    with app.app_context():
        consent_id = db.session.scalar(select(Consent.id))
    assert runner.invoke(args=["consents", "verify", str(consent_id)]).exit_code == 0  # control
    if named == "another-passkey":  # the signer's second passkey, which did not sign
        assert add_passkey(client, SoftAuthenticator(origin="http://localhost"),
                           name="Zweitschluessel").status_code == 200
        with app.app_context():
            other_id = db.session.scalar(select(PasskeyCredential.credential_id)
                                         .order_by(PasskeyCredential.created_at.desc()))
    else:
        other_id = b"not-a-registered-passkey-0123456"

    def other_credential(evidence):
        assert consents.unb64(evidence["credential_id"]) != other_id
        evidence["credential_id"] = consents.b64(other_id)

    tamper_evidence(app, other_credential)
    result = runner.invoke(args=["consents", "verify", str(consent_id)])
    assert result.exit_code != 0
    assert reason in result.output


def test_a_changed_typed_name_in_the_stored_evidence_is_found(app, client, auth, make_client,
                                                              template, totp_clock, runner):
    """The weaker method has no signature: the evidence sealed into the receipt tells."""
    _own, consent_id = sign_with_code_and_name(app, client, auth, make_client, template,
                                               totp_clock)
    assert runner.invoke(args=["consents", "verify", str(consent_id)]).exit_code == 0  # control

    def other_name(evidence):
        evidence["typed_name"] = "Jana Weber"

    tamper_evidence(app, other_name)
    result = runner.invoke(args=["consents", "verify", str(consent_id)])
    assert result.exit_code != 0
    assert "the stored evidence differs from the evidence sealed into the receipt" in result.output


def test_the_typed_name_must_be_the_account_holders(app, client, auth, make_client, template,
                                                    totp_clock):
    person = make_client(totp=True, full_name="Jonas Weber")
    auth.login(person)
    with app.app_context():
        own_id = db.session.scalar(select(Client.id).where(
            Client.account_id == person.account_id))
    totp_clock.advance()
    response = submit(client, f"/consents/{template}/{own_id}",
                      {"code": totp_clock.code(person.totp_secret), "typed_name": "abc"})
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(Consent)) is None


def test_signing_and_withdrawing_are_security_events(app, client, auth, make_client,
                                                     template, totp_clock):
    from shared import security_log
    from tests.conftest import security_events

    person = make_client(totp=True, full_name="Jonas Weber")
    auth.login(person)
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
        pseudonym = security_log.pseudonym(person.account_id)
    totp_clock.advance()
    submit(client, f"/consents/{template}/{own}",
           {"code": totp_clock.code(person.totp_secret), "typed_name": "Jonas Weber"})
    assert security_events(app, "consent.given") == [("ok", pseudonym)]
    with app.app_context():
        consent_id = db.session.scalar(select(Consent.id))
    submit(client, f"/consents/{consent_id}/withdraw", {})
    assert security_events(app, "consent.withdrawn") == [("ok", pseudonym)]


def test_a_receipt_resealed_with_another_certificate_does_not_vouch_for_changed_evidence(
        app, client, auth, make_client, template, totp_clock, runner, tmp_path):
    """Someone with the database changes the typed name and puts in a receipt with the same
    change, sealed with a certificate of their own: the organisation's seal does not match."""
    from fpdf import FPDF

    from shared.config import Config

    _own, consent_id = sign_with_code_and_name(app, client, auth, make_client, template,
                                               totp_clock)
    assert runner.invoke(args=["consents", "verify", str(consent_id)]).exit_code == 0  # control

    def other_name(evidence):
        evidence["typed_name"] = "Jana Weber"

    tamper_evidence(app, other_name)
    other = Config(instance_path=str(tmp_path / "attacker"), organisation_name="Einblick")
    seal.ensure(other)
    with app.app_context():
        consent = db.session.get(Consent, consent_id)
        pdf = FPDF()
        pdf.add_page()
        pdf.embed_file(bytes=json.dumps(consent.evidence).encode(), basename="evidence.json")
        consent.receipt = seal.seal_pdf(bytes(pdf.output()), seal.load(other))
        db.session.commit()
        assert seal.check_seal(consent.receipt, None).intact  # a valid seal, just not ours
    result = runner.invoke(args=["consents", "verify", str(consent_id)])
    assert result.exit_code != 0
    assert "the receipt is not sealed with the organisation's certificate" in result.output
