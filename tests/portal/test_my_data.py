"""The "my data" page is generated from the catalogue and shows the client's values."""

import pytest

from shared import catalogue
from shared.models import Base
from shared.services.my_data import OWNERS
from tests.conftest import submit


def test_every_table_with_personal_columns_has_an_owner_rule():
    tables = {entry.column.split(".")[0] for entry in catalogue.ENTRIES}
    assert tables <= set(OWNERS), f"add owner rules for: {sorted(tables - set(OWNERS))}"
    assert set(OWNERS) <= {t.name for t in Base.metadata.sorted_tables}


def test_my_data_shows_values_from_the_catalogue(client, auth, make_client):
    person = make_client(full_name="Mia Demir")
    auth.login(person)
    submit(client, "/account", {"full_name": "Mia Demir", "phone": "0170 7654321"})
    page = client.get("/my-data").get_data(as_text=True)
    assert person.email in page
    assert "+491707654321" in page
    assert 'data-column="accounts.email"' in page
    assert 'data-column="client_name_tokens.token_bidx"' in page  # shown as a search key
    assert 'data-column="accounts.password_hash"' in page
    assert "$argon2" not in page  # the hash itself is never shown


def test_export_is_a_signed_zip_with_everything_and_is_logged(app, client, auth, make_client,
                                                              make_staff, outbox):
    import hashlib
    import io
    import json
    import zipfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import AccessEvent, Client
    from tests.portal.test_household import add_child

    person = make_client(full_name="Mia Demir")
    auth.login(person)
    add_child(client, full_name="Emil Demir")
    page = client.get("/my-data/export")
    assert page.status_code == 200
    response = submit(client, "/my-data/export", {})
    assert response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = set(archive.namelist())
    assert {"data.json", "schema.json", "index.html", "manifest.json", "manifest.sig",
            "seal-certificate.pem", "me/access-log.csv"} <= names
    data = json.loads(archive.read("data.json"))
    assert data["schema_version"] == 1
    text = json.dumps(data, ensure_ascii=False)
    assert person.email in text
    assert "Emil Demir" in text
    manifest_bytes = archive.read("manifest.json")
    manifest = json.loads(manifest_bytes)["files"]
    for name, digest in manifest.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    certificate = x509.load_pem_x509_certificate(archive.read("seal-certificate.pem"))
    certificate.public_key().verify(archive.read("manifest.sig"), manifest_bytes,
                                    ec.ECDSA(hashes.SHA256()))
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
        assert db.session.scalar(select(AccessEvent).where(AccessEvent.client_id == own)
                                 .where(AccessEvent.category == "export")) is not None


def test_correction_request_is_answered_by_the_caseworker(app, client, auth, make_client,
                                                          make_staff):
    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import Assignment, Client, CorrectionRequest, StaffMember

    person = make_client(full_name="Mia Demir")
    worker = make_staff(role="caseworker")
    other = make_staff(role="caseworker")
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
        member = db.session.scalar(select(StaffMember).where(
            StaffMember.account_id == worker.account_id))
        db.session.add(Assignment(client_id=own, staff_member_id=member.id))
        db.session.commit()
    auth.login(person)
    submit(client, "/my-data/corrections?about=notes.body",
           {"client": str(own), "about": "notes.body",
            "message": "Das Gespräch war am Dienstag, nicht am Montag."})
    with app.app_context():
        request = db.session.scalar(select(CorrectionRequest))
        assert request.about == "notes.body"
        assert b"Dienstag" not in request.message_ciphertext
        request_id = request.id
    auth.logout()
    auth.login(other, area="staff")
    assert "Dienstag" not in client.get("/staff/corrections").get_data(as_text=True)
    auth.logout("staff")
    auth.login(worker, area="staff")
    assert "Dienstag" in client.get("/staff/corrections").get_data(as_text=True)
    submit(client, f"/staff/corrections/{request_id}",
           {"status": "done", "reply": "Korrigiert, danke."}, form_url="/staff/corrections")
    auth.logout("staff")
    auth.login(person)
    page = client.get("/my-data/corrections").get_data(as_text=True)
    assert "Korrigiert, danke." in page
    assert 'data-status="done"' in page


def test_my_data_sums_up_each_category_and_deletes_by_the_calendar(
        app, client, auth, runner, make_client, make_bookable):
    """An appointment ending on 11 January 2027 is kept three calendar years: "my data" says
    it goes on 11 January 2030 (3 × 365 days would be the 10th, as 2028 has 29 February),
    and the purge deletes it then, not a day earlier."""
    import re
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import time_machine
    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import Booking, Client
    from tests.conftest import add_booking

    bookable = make_bookable()
    person = make_client(full_name="Mia Demir")
    end = datetime(2027, 1, 11, 10, 45, tzinfo=ZoneInfo("Europe/Berlin"))
    with app.app_context():
        own = db.session.scalar(select(Client).where(Client.account_id == person.account_id))
        add_booking(own, bookable, end=end, minutes=45)
        db.session.commit()
    auth.login(person)
    page = client.get("/my-data").get_data(as_text=True)

    def category(key):
        return re.search(rf'data-category="{key}".*?</section>', page, re.S).group(0)

    bookings = category("bookings")
    assert "Erste Löschung: 11. Januar 2030." in bookings
    assert "Wer es sehen kann: Sie, Administrator*innen, Fachkräfte und Empfang." in bookings
    assert "Gelöscht 3 Jahre nach dem Termin" in bookings
    start = re.search(r'data-column="bookings.start_at".*?</div>', bookings, re.S).group(0)
    assert "11.01.2027, 10:00" in start  # Berlin time, without seconds
    assert "Zuletzt geändert:" in start
    assert 'data-testid="deleted-on"' not in category("contact")  # kept with the account

    # (The sign-in's session and security events, kept for days, go at the first run.)
    with time_machine.travel(datetime(2030, 1, 10, 10, 45, tzinfo=end.tzinfo), tick=False):
        assert "bookings" not in runner.invoke(args=["retention", "purge"]).output
    with time_machine.travel(datetime(2030, 1, 11, 10, 44, 59, tzinfo=end.tzinfo), tick=False):
        assert "Deleted 0 items" in runner.invoke(args=["retention", "purge"]).output
    with app.app_context():
        assert db.session.scalar(select(Booking)) is not None
    with time_machine.travel(datetime(2030, 1, 11, 10, 45, tzinfo=end.tzinfo), tick=False):
        assert "bookings: 1" in runner.invoke(args=["retention", "purge"]).output
    with app.app_context():
        assert db.session.scalar(select(Booking)) is None


def test_calendar_years_keep_the_date_29_february_becomes_28_february(app):
    """Retention in years keeps the local date and time; 29 February ends on 28 February in
    a year without it (§ 188(3) BGB); across a change of summer time the local time stays."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from shared.services.erasure import years_after

    berlin = ZoneInfo("Europe/Berlin")
    leap = datetime(2028, 2, 29, 12, 0, tzinfo=berlin)
    with app.app_context():
        assert years_after(leap, 1) == datetime(2029, 2, 28, 12, 0, tzinfo=berlin)
        assert years_after(leap, 4) == datetime(2032, 2, 29, 12, 0, tzinfo=berlin)
        assert years_after(leap, -1) == datetime(2027, 2, 28, 12, 0, tzinfo=berlin)
        # 00:30 on 31 October 2027 is summer time, in 2030 winter time: still 00:30 there.
        autumn = datetime(2027, 10, 31, 0, 30, tzinfo=berlin)
        assert years_after(autumn, 3) == datetime(2030, 10, 31, 0, 30, tzinfo=berlin)
        assert years_after(datetime(2027, 1, 11, 9, 45, tzinfo=ZoneInfo("UTC")), 3) == \
            datetime(2030, 1, 11, 10, 45, tzinfo=berlin)


def test_correction_requests_show_their_deadline_and_when_it_has_passed(
        app, client, auth, make_client, make_staff):
    from datetime import timedelta

    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import Client, CorrectionRequest
    from shared.models.base import utcnow

    person = make_client(full_name="Mia Demir")
    auth.login(person)
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
    submit(client, "/my-data/corrections", {"client": str(own), "about": "other",
                                             "message": "Mein Name ist falsch geschrieben."})
    auth.logout()
    auth.login(make_staff(role="admin"), area="staff")
    page = client.get("/staff/corrections").get_data(as_text=True)
    assert 'data-testid="deadline"' in page
    assert 'class="overdue"' not in page
    with app.app_context():
        request = db.session.scalar(select(CorrectionRequest))
        request.created_at = utcnow() - timedelta(days=31)
        db.session.commit()
    assert 'class="overdue"' in client.get("/staff/corrections").get_data(as_text=True)


def _secret_spellings(value) -> set[str]:
    """The ways a secret could appear in a page or file: as text, hex or base64."""
    import base64

    if isinstance(value, str):
        return {value}
    return {value.hex(), base64.b64encode(value).decode().rstrip("="),
            base64.urlsafe_b64encode(value).decode().rstrip("=")}


def _export_texts(client) -> dict[str, str]:
    """Every readable file of the export (data.json, the CSVs, index.html, …)."""
    import io
    import zipfile

    response = submit(client, "/my-data/export", {})
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    return {name: archive.read(name).decode() for name in archive.namelist()
            if name.endswith((".json", ".csv", ".html"))}


def _secrets_of(app, account_id) -> set[str]:
    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import Account, CalendarFeed, PasskeyCredential, RecoveryCode

    with app.app_context():
        account = db.session.get(Account, account_id)
        found = {account.password_hash, account.totp_secret}
        found |= _secret_spellings(account.totp_secret)
        if account.totp_pending_secret:
            found |= _secret_spellings(account.totp_pending_secret)
        if account.passkey_user_handle:
            found |= _secret_spellings(account.passkey_user_handle)
        for model, columns in ((PasskeyCredential, ("credential_id", "public_key")),
                               (RecoveryCode, ("code_hash",)), (CalendarFeed, ("token_hash",))):
            for row in db.session.scalars(select(model).where(model.account_id == account_id)):
                for column in columns:
                    found |= _secret_spellings(getattr(row, column))
        return {value for value in found if value}


def _long_date(app, moment) -> str:
    from flask_babel import force_locale, format_date

    with app.test_request_context(), force_locale("de"):
        return format_date(moment, "long")


def test_no_secret_is_shown_or_exported_only_that_it_exists_and_since_when(
        app, client, auth, make_client):
    import json
    import re

    import jsonschema

    from shared.extensions import db
    from shared.models import Account
    from tests.conftest import register_passkey

    person = make_client(totp=True, full_name="Mia Demir")
    auth.login(person)
    register_passkey(client, name="Mein Handy")
    submit(client, "/account/security/recovery-codes", {}, form_url="/account/security")
    submit(client, "/bookings/calendar-feed", {}, form_url="/bookings")
    with app.app_context():
        account = db.session.get(Account, person.account_id)
        # A set-up left half-way (as after a reset of the app): its secret is a secret too.
        account.totp_pending_secret = "PENDINGPENDINGPENDINGPENDING2345"
        db.session.commit()
        enabled_at = account.totp_enabled_at
    secrets = _secrets_of(app, person.account_id)
    assert person.totp_secret in secrets
    assert len(secrets) > 10  # hashes of ten recovery codes, passkey, handle, calendar

    page = client.get("/my-data").get_data(as_text=True)
    files = _export_texts(client)
    for name, text in {"/my-data": page, **files}.items():
        leaked = [secret[:12] for secret in secrets if secret in text]
        assert not leaked, f"{name} shows secrets: {leaked}"
        assert "$argon2" not in text

    since = _long_date(app, enabled_at)
    totp = re.search(r'data-column="accounts.totp_secret".*?</div>', page, re.S).group(0)
    assert f"Gespeichert seit {since}" in totp
    assert "aus Sicherheitsgründen nicht angezeigt" in totp
    assert "Zwei-Schritt-Anmeldung" in totp  # how to remove it, with the way there
    assert 'href="/account/security"' in totp
    keys = re.search(r'data-column="passkey_credentials.public_key".*?</div>', page, re.S)
    assert "Gespeichert seit" in keys.group(0)
    assert "Mein Handy" in page  # the passkey's name is the client's own data, shown

    data = json.loads(files["data.json"])
    jsonschema.validate(data, json.loads(files["schema.json"]))
    security = {item["column"]: item for item in data["subjects"][0]["categories"]["security"]}
    assert security["accounts.totp_secret"]["values"] == []
    assert security["accounts.totp_secret"]["secret"]["exists"] is True
    assert security["accounts.totp_secret"]["secret"]["since"].startswith(
        enabled_at.date().isoformat())
    assert security["recovery_codes.code_hash"]["secret"]["count"] == 10
    assert f"Gespeichert seit {since}" in files["index.html"]
    assert f"Gespeichert seit {since}" in files["me/data/security.csv"]


def test_a_parent_sees_no_security_data_of_a_child_with_an_own_account(
        app, client, auth, make_client):
    from datetime import date

    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import Client, Guardianship

    parent = make_client(full_name="Mia Demir")
    young = make_client(totp=True, full_name="Lara Demir")
    with app.app_context():
        lara = db.session.scalar(select(Client).where(Client.account_id == young.account_id))
        lara.birth_date = date(2008, 1, 10)
        db.session.add(Guardianship(guardian_account_id=parent.account_id,
                                    dependant_id=lara.id))
        db.session.commit()
    secrets = _secrets_of(app, young.account_id)
    auth.login(parent)
    page = client.get("/my-data").get_data(as_text=True)
    assert "Lara Demir" in page  # the child is shown …
    child_part = page.split("Lara Demir", 1)[1]
    assert "Geburtsdatum" in child_part
    assert "data-column=\"accounts.totp_secret\"" not in child_part  # … but no security data
    assert "data-column=\"accounts.password_hash\"" not in child_part
    assert "data-column=\"user_sessions.created_at\"" not in child_part
    files = _export_texts(client)
    for name, text in {"/my-data": page, **files}.items():
        assert not [secret for secret in secrets if secret in text], name
    assert not [name for name in files if name.startswith("child-") and "security" in name]


def test_my_data_and_the_export_say_in_words_who_invited_and_when_it_was_confirmed(
        app, client, auth, make_young_person, make_staff, outbox):
    import json
    import re

    from flask_babel import force_locale

    from shared.extensions import db
    from shared.models import Client, PasskeyCredential
    from shared.models.base import utcnow
    from shared.services.my_data import moment
    from tests.conftest import (
        assign_caseworker,
        claim_invitation,
        confirm_in_person,
        register_passkey,
    )

    young = make_young_person()
    sender = make_staff(role="caseworker")
    assign_caseworker(app, young.client_id, sender)
    auth.login(sender, area="staff")
    submit(client, f"/staff/clients/{young.client_id}/invite",
           {"invite-email": "lara@example.org",
            "invite-reason": "Lara hat im Gespräch um ein eigenes Konto gebeten"},
           form_url=f"/staff/clients/{young.client_id}")
    auth.logout("staff")
    lara = claim_invitation(app, outbox, "lara@example.org")
    confirm_in_person(app, auth, make_staff(role="caseworker"), young.client_id)
    register_passkey(lara, name="Laras Handy")
    with app.app_context():
        credential = db.session.query(PasskeyCredential).one()
        credential.flagged_at = utcnow()
        db.session.commit()
        confirmed_at = db.session.get(Client, young.client_id).account.handover_confirmed_at
        with app.test_request_context(), force_locale("de"):
            confirmed = moment(confirmed_at)  # without seconds
            flagged = moment(credential.flagged_at)

    iso = re.compile(r"\d{4}-\d{2}-\d{2}T")
    page = lara.get("/my-data").get_data(as_text=True)
    files = _export_texts(lara)

    def item(column):
        block = re.search(rf'data-column="{re.escape(column)}".*?</div>', page, re.S)
        return block.group(0).split(">", 1)[1]

    assert "unser Team" in item("accounts.invited_by")
    assert not re.search(r"\b(staff|guardian)\b", item("accounts.invited_by"))
    assert confirmed in item("accounts.handover_confirmed_at")
    assert flagged in item("passkey_credentials.flagged_at")
    assert "nein" in item("passkey_credentials.backup_eligible")
    assert not iso.search(page)
    for name in ("index.html", "me/data/account.csv", "me/data/security.csv",
                 "me/access-log.csv"):
        assert not iso.search(files[name]), name
    assert not re.search(r"\b(staff|guardian)\b", files["index.html"])
    assert ",staff," not in files["me/data/account.csv"]
    for name in ("index.html", "me/data/account.csv"):
        assert "unser Team" in files[name], name
        assert confirmed in files[name], name
    assert flagged in files["me/data/security.csv"]
    # The machine-readable file keeps the machine values.
    account = {entry["column"]: entry for entry in
               json.loads(files["data.json"])["subjects"][0]["categories"]["account"]}
    assert account["accounts.invited_by"]["values"] == ["staff"]
    assert iso.match(account["accounts.handover_confirmed_at"]["values"][0])


def test_the_export_names_documents_as_the_download_does(app, client, auth, make_client,
                                                         make_staff):
    """Each document in the ZIP ends in the extension of its detected type, also one stored
    by an older version under its uploaded name, and a long name is cut before it."""
    import io
    import zipfile

    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import Client, Document, StaffMember
    from shared.services import casefile
    from tests.conftest import assign_caseworker, staff_member_id

    pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"0" * 200
    long_name = ("Bericht über das Gespräch mit dem Jugendamt im Dezember und die "
                 "Folgetermine im neuen Jahr.pdf")
    person = make_client()
    worker = make_staff()
    with app.app_context():
        client_id = db.session.scalar(select(Client.id).where(
            Client.account_id == person.account_id))
    assign_caseworker(app, client_id, worker)
    with app.app_context():
        member = db.session.get(StaffMember, staff_member_id(app, worker))
        casefile.add_document(member=member, client_id=client_id, session_id=None,
                              filename=long_name, data=pdf, category="report",
                              visible_to_client=True, confidential=False)
        owner = db.session.get(Client, client_id)
        old = Document(client_id=client_id, data_key=owner.data_key, category="report",
                       content_type="application/pdf", size=len(pdf),
                       uploaded_by_id=member.id, visible_to_client=True,
                       confidential_from_guardians=False)
        old.filename = "Zeugnis.pdf.exe"  # as an upload was stored before names were cleaned
        old.content = pdf
        db.session.add(old)
        db.session.commit()
    auth.login(person)
    archive = zipfile.ZipFile(io.BytesIO(submit(client, "/my-data/export", {}).data))
    names = sorted(name.split("/documents/", 1)[1].split("-", 5)[-1]
                   for name in archive.namelist() if "/documents/" in name)
    assert len(names) == 2
    assert names[1] == "Zeugnis.pdf"
    assert names[0].startswith("Bericht über das Gespräch")
    assert names[0].endswith(".pdf")
    assert len(names[0]) <= 80


def test_the_last_authenticator_code_shows_as_the_time_it_was_used(app, client, auth,
                                                                   make_client):
    """The stored time step (a count of 30-second steps since 1970) means nothing to a
    reader: "my data", index.html and the CSV show the time, data.json keeps the number."""
    import json
    import re
    from datetime import UTC, datetime

    from flask_babel import force_locale

    from shared.extensions import db
    from shared.models import Account
    from shared.services.my_data import moment

    person = make_client(totp=True, full_name="Mia Demir")
    auth.login(person)
    with app.app_context():
        step = db.session.get(Account, person.account_id).totp_last_step
        with app.test_request_context(), force_locale("de"):
            used = moment(datetime.fromtimestamp(step * 30, UTC))
    assert step is not None
    page = client.get("/my-data").get_data(as_text=True)
    item = re.search(r'data-column="accounts.totp_last_step".*?</div>', page, re.S).group(0)
    assert used in item
    assert str(step) not in item
    files = _export_texts(client)
    for name in ("index.html", "me/data/security.csv"):
        assert used in files[name], name
        assert str(step) not in files[name], name
    security = {entry["column"]: entry for entry in
                json.loads(files["data.json"])["subjects"][0]["categories"]["security"]}
    assert security["accounts.totp_last_step"]["values"] == [step]
    assert security["accounts.totp_last_step"]["shown"] == [used]


# -- in words: names, local times, codes translated; the same in the export ----------------
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ISO_TIME_RE = r"\d{4}-\d{2}-\d{2}T"
CONSENT_TITLES = {"de": "Einwilligung in die Datenverarbeitung in der Beratung",
                  "en": "Consent to data processing in counselling"}


@pytest.fixture
def jonas(app, client, auth, make_client, make_bookable, totp_clock):
    """As in the demo: A. Schmidt offers Elternberatung; Jonas Weber signed the demo consent
    with a code and his typed name and has an appointment tomorrow at 16:40 Berlin time
    (15:40 UTC). He stays signed in."""
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    from shared.extensions import db
    from shared.models import Client, StaffMember
    from shared.services import consents, demo
    from tests.conftest import add_booking, sign_with_code_and_name

    bookable = make_bookable(name="Elternberatung")
    with app.app_context():
        list(demo.load_consent_template())
        template_id = consents.published_templates()[0].id
        db.session.get(StaffMember, bookable.staff_member_id).name = "A. Schmidt"
        db.session.commit()
    own, _ = sign_with_code_and_name(app, client, auth, make_client, template_id, totp_clock)
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime.combine(datetime.now(berlin).date() + timedelta(days=1), time(16, 40),
                             tzinfo=berlin)
    with app.app_context():
        add_booking(db.session.get(Client, own), bookable, end=start + timedelta(minutes=45),
                    minutes=45)
        db.session.commit()
    return own


def _appointment_time(client) -> str:
    """The hour and minute of the next appointment, as /bookings shows it."""
    import re

    page = client.get("/bookings").get_data(as_text=True)
    line = re.search(r'class="[^"]*\bbooking\b.*?kern-body--bold">([^<]+)<', page, re.S)
    return re.search(r"\d{1,2}:\d{2}(?:\u202f[AP]M)?", line.group(1)).group(0)


def _item(page: str, column: str) -> str:
    import re

    return re.search(rf'data-column="{re.escape(column)}".*?</div>', page, re.S).group(0)


@pytest.mark.parametrize("language", ["de", "en"])
def test_my_data_names_what_ids_stand_for_and_shows_local_times(client, jonas, language):
    import re

    if language == "en":
        submit(client, "/language/en", {"next": "/my-data"}, form_url="/my-data")
    local = _appointment_time(client)
    assert local.replace("\u202f", " ") == {"de": "16:40", "en": "16:40"}[language]
    page = client.get("/my-data").get_data(as_text=True)

    assert not re.search(UUID_RE, page, re.I)
    assert not re.search(ISO_TIME_RE, page)
    assert "Elternberatung" in _item(page, "bookings.service_id")
    assert "A. Schmidt" in _item(page, "bookings.staff_member_id")
    assert local in _item(page, "bookings.start_at")
    assert CONSENT_TITLES[language] in _item(page, "consents.template_id")
    assert "Jonas Weber" in _item(page, "consents.signer_account_id")
    words = {"de": ("Code und eingetippter Name (schwächer)", "gegeben", "bestätigt", "nein"),
             "en": ("code and typed name (weaker)", "given", "confirmed", "no")}[language]
    assert words[0] in _item(page, "consents.method")
    assert words[1] in _item(page, "consents.status")
    assert words[2] in _item(page, "bookings.status")
    assert f">{words[3]}<" in _item(page, "bookings.confidential_from_guardians")
    for code in ("totp-name", "True", "False"):
        assert code not in page
    # The access log is summed up here and read on its own page.
    log = re.search(r'data-category="access-log".*?</section>', page, re.S)
    if log is not None:
        assert 'href="/my-data/access"' in log.group(0)
        assert "data-column" not in log.group(0)


def test_the_exports_index_reads_like_the_page_on_a_phone(client, jonas):
    import json
    import re

    local = _appointment_time(client)
    page = client.get("/my-data").get_data(as_text=True)
    files = _export_texts(client)
    index = files["index.html"]

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in index
    assert not re.search(UUID_RE, index, re.I)
    assert not re.search(ISO_TIME_RE, index)
    for column, words in (("bookings.service_id", "Elternberatung"),
                          ("bookings.staff_member_id", "A. Schmidt"),
                          ("bookings.start_at", local),
                          ("consents.template_id", CONSENT_TITLES["de"]),
                          ("consents.signer_account_id", "Jonas Weber"),
                          ("consents.method", "Code und eingetippter Name (schwächer)")):
        assert words in _item(index, column), column
        # One labelling for both: the page shows each value in the same words.
        shown = re.findall(r'data-testid="value">([^<]+)<', _item(page, column))
        assert shown == re.findall(r'data-testid="value">([^<]+)<', _item(index, column))
    # data.json keeps the machine values beside those words.
    data = json.loads(files["data.json"])["subjects"][0]["categories"]
    bookings = {item["column"]: item for item in data["bookings"]}
    assert re.fullmatch(UUID_RE, bookings["bookings.service_id"]["values"][0])
    assert bookings["bookings.service_id"]["shown"] == ["Elternberatung"]
    assert re.match(ISO_TIME_RE, bookings["bookings.start_at"]["values"][0])
    given = {item["column"]: item for item in data["consents"]}
    assert given["consents.method"]["values"] == ["totp-name"]
    assert "Elternberatung" in files["me/data/bookings.csv"]


def test_my_data_costs_the_same_statements_for_few_and_many_rows(
        app, client, auth, make_client, make_bookable, totp_clock):
    """Names are looked up once per kind (services, staff, consents, people) and the access
    log is counted, so more appointments, consents and staff visits add no statement."""
    from datetime import timedelta

    from sqlalchemy import select

    from shared.extensions import db
    from shared.models import Client, StaffMember
    from shared.models.base import utcnow
    from shared.services import consents
    from tests.conftest import Auth, add_booking, assign_caseworker, get_counting_statements

    offers = [make_bookable(name=f"Angebot {n}") for n in range(3)]
    person = make_client(totp=True, full_name="Mia Demir")
    with app.app_context():
        own = db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))
        for n, offer in enumerate(offers):
            db.session.get(StaffMember, offer.staff_member_id).name = f"Fachkraft {n}"
        templates = []
        for n in range(5):
            template = consents.save_template(
                key=f"einwilligung-{n}", texts={"de": {"title": f"Einwilligung {n}",
                                                      "text": "Ich willige ein."}},
                purpose="Beratung", legal_basis="Art. 6 Abs. 1 lit. a DSGVO", audience="Team",
                guardian_signs=True)
            consents.publish(template.id)
            templates.append(template.id)
        db.session.commit()
    auth.login(person)

    def book(offer, days_ago: int) -> None:
        with app.app_context():
            add_booking(db.session.get(Client, own), offer,
                        end=utcnow().replace(microsecond=0) - timedelta(days=days_ago))
            db.session.commit()

    def sign(template_id) -> None:
        totp_clock.advance()
        response = submit(client, f"/consents/{template_id}/{own}",
                          {"code": totp_clock.code(person.totp_secret),
                           "typed_name": "Mia Demir"})
        assert response.status_code == 302

    book(offers[0], 1)
    sign(templates[0])
    client.get("/my-data")  # anything done once per process is done
    _, few = get_counting_statements(app, client, "/my-data")

    for n in range(11):
        book(offers[n % 3], n + 2)
    for template_id in templates[1:]:
        sign(template_id)
    for offer in offers:  # three staff members open the file
        assign_caseworker(app, own, offer.staff)
        staff = Auth(app.test_client(), totp_clock)
        staff.login(offer.staff, area="staff")
        assert staff.client.get(f"/staff/clients/{own}").status_code == 200
    response, many = get_counting_statements(app, client, "/my-data")

    page = response.get_data(as_text=True)
    for n in range(3):
        assert f"Angebot {n}" in page
        assert f"Fachkraft {n}" in page
    for n in range(5):
        assert f"Einwilligung {n}" in page
    assert many == few, (few, many)


def test_times_are_shown_in_the_organisations_configured_time_zone(tmp_path, database_url):
    """Babel formats in the time zone the configuration names (Berlin by default), the
    same one retention and appointments count in."""
    from datetime import UTC, datetime

    from flask_babel import force_locale

    from shared.app import create_app
    from shared.extensions import db
    from shared.services.my_data import moment
    from tests.conftest import make_config

    at = datetime(2027, 1, 11, 9, 45, tzinfo=UTC)
    for zone, shown in (("Europe/Berlin", "11.01.2027, 10:45"),
                        ("Europe/Lisbon", "11.01.2027, 09:45")):
        app = create_app(make_config(tmp_path / zone, database_url, timezone=zone))
        with app.test_request_context(), force_locale("de"):
            assert moment(at) == shown
        with app.app_context():
            db.engine.dispose()
