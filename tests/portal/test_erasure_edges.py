"""Erasure at its edges (found in review): restores after an admin's "delete now", old
backups and key rotation, a schema older than the journal, kept consents that must still
verify, grants from before a restriction, double taps, reports, admins and documents."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from shared import crypto
from shared.extensions import db
from shared.models import Account, Client, Consent, DataKey, Document, Note
from shared.models.base import utcnow
from shared.services import erasure
from tests.conftest import add_booking, csrf_token, submit
from tests.portal.test_consents import (  # noqa: F401  (fixture)
    parent_with_child,
    sign_with_passkey,
)
from tests.portal.test_erasure import (  # noqa: F401  (fixture)
    confirm_delete,
    own_client_id,
    restricted_case,
)
from tests.staff.test_casefile import PDF, case, upload, write_note  # noqa: F401

sqlite_only = pytest.mark.skipif(
    __import__("tests.conftest", fromlist=["x"]).postgres_requested(),
    reason="edits a SQLite backup file")


def app_of_its_own(fresh_database_url, tmp_path, **overrides):
    """An app on a database of its own (the test changes its schema or keys) with one
    confirmed client "alt@example.org"; returns the app, the account id and client id."""
    from shared.app import create_app
    from shared.auth import passwords
    from shared.cli import upgrade_database
    from tests.conftest import STRONG_PASSWORD, make_config

    app = create_app(make_config(tmp_path / "inst", fresh_database_url(), **overrides))
    with app.app_context():
        upgrade_database()
        key = DataKey.generate()
        account = Account(kind="client", data_key=key, locale="de")
        account.email = "alt@example.org"
        account.password_hash = passwords.hash_password(STRONG_PASSWORD)
        account.email_confirmed_at = utcnow()
        row = Client(data_key=key, account=account)
        row.full_name = "Kanarien Backupname"
        db.session.add_all([key, account, row])
        db.session.commit()
        return app, account.id, row.id


def past_booking(app, client_id, bookable, days=10):
    with app.app_context():
        add_booking(db.session.get(Client, client_id), bookable,
                    end=utcnow().replace(microsecond=0) - timedelta(days=days))
        db.session.commit()


def test_restore_after_an_admins_delete_now_leaves_no_account(app, client, auth, runner,
                                                              make_client, make_bookable,
                                                              tmp_path):
    bookable = make_bookable()
    person = make_client(full_name="Karla Kanarien")
    with app.app_context():
        own = own_client_id(person.account_id)
    past_booking(app, own, bookable)
    path = tmp_path / "before.db"
    assert runner.invoke(args=["backup", "create", str(path)]).exit_code == 0
    auth.login(person)
    assert confirm_delete(client).status_code == 302
    with app.app_context():
        assert db.session.get(Client, own).restricted_at is not None
        erasure.erase_now(admin=None, client_id=own)
    result = runner.invoke(args=["backup", "restore", str(path), "--yes"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.session.remove()
        assert db.session.get(Client, own) is None
        assert db.session.get(Account, person.account_id) is None
    assert auth.login(person).headers.get("Location") != "/home"


def test_a_removed_child_stays_gone_after_a_restore(app, client, auth, runner, make_client,
                                                    tmp_path):
    from shared.models import Guardianship
    from tests.portal.test_household import add_child

    auth.login(make_client())
    add_child(client, full_name="Emil Zurueck", allergies="Kanarien-Allergie")
    with app.app_context():
        child_id = db.session.scalar(select(Guardianship)).dependant_id
    path = tmp_path / "before.db"
    assert runner.invoke(args=["backup", "create", str(path)]).exit_code == 0
    assert submit(client, f"/household/{child_id}/remove", {},
                  form_url="/household").status_code == 302
    result = runner.invoke(args=["backup", "restore", str(path), "--yes"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.session.remove()
        assert db.session.get(Client, child_id) is None


def test_a_kept_consent_still_verifies_after_the_guardian_deleted_the_account(
        app, client, runner, parent_with_child, template):  # noqa: F811
    _parent, key, child = parent_with_child
    assert sign_with_passkey(client, key, template, child).status_code == 200
    with app.app_context():
        consent_id = db.session.scalar(select(Consent.id))
    assert confirm_delete(client).status_code == 302
    with app.app_context():
        assert db.session.get(Client, child).restricted_at is not None  # kept (proof duty)
        assert db.session.get(Consent, consent_id).signer_account_id is None
    result = runner.invoke(args=["consents", "verify", str(consent_id)])
    assert result.exit_code == 0, result.output


# What migration 0022 adds: an older backup has none of these.
FOREIGN_KEY_INDEXES = [
    "ix_account_recoveries_started_by_id", "ix_account_recoveries_data_key_id",
    "ix_accounts_data_key_id", "ix_bookings_data_key_id", "ix_bookings_service_id",
    "ix_bookings_end_at", "ix_break_glass_grants_staff_member_id",
    "ix_break_glass_grants_reviewed_by_id", "ix_break_glass_grants_data_key_id",
    "ix_clients_data_key_id", "ix_consent_requests_requested_by_id",
    "ix_consent_templates_required_for_service_id", "ix_consents_data_key_id",
    "ix_consents_template_id", "ix_consents_signer_account_id", "ix_consents_withdrawn_at",
    "ix_correction_requests_data_key_id", "ix_correction_requests_handled_by_id",
    "ix_documents_uploaded_by_id", "ix_documents_data_key_id",
    "ix_emergency_contacts_data_key_id", "ix_notes_corrects_id", "ix_notes_author_id",
    "ix_notes_data_key_id", "ix_passkey_credentials_data_key_id", "ix_slot_holds_service_id",
    "ix_staff_members_data_key_id", "ix_staff_services_service_id",
]


@sqlite_only
def test_restoring_a_backup_older_than_the_erasure_schema(fresh_database_url, tmp_path,
                                                         totp_clock):
    from tests.conftest import STRONG_PASSWORD, Auth, Person

    app, account, _row = app_of_its_own(fresh_database_url, tmp_path)
    person = Person("alt@example.org", STRONG_PASSWORD, None, account)
    runner = app.test_cli_runner()
    path = tmp_path / "old.db"
    assert runner.invoke(args=["backup", "create", str(path)]).exit_code == 0
    old = sqlite3.connect(path)  # what a backup from before migration 0007 looks like
    for name in FOREIGN_KEY_INDEXES:  # 0022 indexes on foreign keys
        old.execute(f"DROP INDEX IF EXISTS {name}")  # noqa: S608  (the constant names above)
    old.execute("DROP INDEX ix_clients_anonymous_at")  # 0030 messages in commit order
    old.execute("DROP INDEX ix_messages_thread_seq")
    old.execute("ALTER TABLE messages DROP COLUMN seq")
    old.execute("ALTER TABLE message_threads DROP COLUMN last_seq")
    old.execute("ALTER TABLE accounts DROP COLUMN pending_email")  # 0029 pending address
    old.execute("DROP INDEX ix_bookings_waiting")  # 0028 the booking queue's index
    old.execute("DROP INDEX ix_accounts_pseudonym_bidx")  # 0027 anonymous contacts
    old.execute("ALTER TABLE accounts DROP COLUMN pseudonym")
    old.execute("ALTER TABLE accounts DROP COLUMN pseudonym_bidx")
    old.execute("ALTER TABLE clients DROP COLUMN anonymous_at")
    for table in ("message_attachments", "messages", "thread_staff",
                  "message_threads"):  # 0026 messages
        old.execute(f"DROP TABLE {table}")  # noqa: S608  (the constant names above)
    old.execute("ALTER TABLE staff_members DROP COLUMN message_notifications")
    old.execute("ALTER TABLE staff_members DROP COLUMN message_digest_sent_at")
    old.execute("DROP INDEX ix_access_events_client_time")  # 0025 access log by time
    for trigger in ("inserted", "updated", "deleted"):  # 0024 incremental audit anchors
        old.execute(f"DROP TRIGGER access_events_{trigger}")
    old.execute("DROP TABLE access_chain_changes")
    old.execute("DROP TABLE access_chain_anchors")
    old.execute("ALTER TABLE account_recoveries DROP COLUMN handover_code_hash")  # 0019
    old.execute("ALTER TABLE account_recoveries DROP COLUMN wrong_codes")
    old.execute("ALTER TABLE services DROP COLUMN translations")  # 0021 content languages
    old.execute("ALTER TABLE bookings DROP COLUMN video_room")  # 0020 own video rooms
    old.execute("DROP INDEX uq_bookings_open_move")  # one open move per appointment
    old.execute("DROP TABLE report_counts")  # 0023 funder report counts
    old.execute("DROP TABLE form_drafts")  # 0017 form drafts (idle timeout)
    old.execute("DROP TABLE security_events")  # 0008
    old.execute("ALTER TABLE passkey_credentials DROP COLUMN flagged_at")
    old.execute("ALTER TABLE accounts DROP COLUMN invited_by")
    old.execute("ALTER TABLE accounts DROP COLUMN handover_confirmed_at")
    old.execute("DROP INDEX ix_clients_restricted_at")
    old.execute("ALTER TABLE clients DROP COLUMN restricted_at")
    old.execute("ALTER TABLE clients DROP COLUMN erasure_reviewed_at")
    old.execute("ALTER TABLE clients DROP COLUMN own_account_invited_at")  # 0010
    old.execute("DROP INDEX ix_bookings_booked_by_account_id")  # 0011
    old.execute("ALTER TABLE access_events DROP COLUMN purpose")  # 0012
    old.execute("DROP TABLE slot_holds")  # 0015 slot_holds
    old.execute("ALTER TABLE bookings DROP COLUMN replaces_booking_id")  # 0014
    old.execute("ALTER TABLE bookings DROP COLUMN expiry_notice_sent_at")
    old.execute("ALTER TABLE services DROP COLUMN video_url")
    old.execute("DROP TABLE consent_email_codes")  # 0013 consents with a password only
    old.execute("DROP INDEX ix_consent_requests_reminder_due")
    old.execute("ALTER TABLE consent_requests DROP COLUMN reminded_at")
    old.execute("DROP TABLE account_recoveries")  # account recoveries by staff
    old.execute("UPDATE alembic_version SET version_num='cff9a76e5078'")
    old.commit()
    old.close()
    web = app.test_client()
    Auth(web, totp_clock).login(person)
    assert submit(web, "/my-data/delete", {"understood": "yes"}).status_code == 302
    result = runner.invoke(args=["backup", "restore", str(path), "--yes"])
    assert result.exit_code == 0, result.output
    assert "1 clients erased again" in result.output
    with app.app_context():
        assert db.session.get(Account, person.account_id) is None
        db.session.remove()
        db.engine.dispose()


def test_key_rotation_makes_backups_from_before_an_erasure_unreadable(
        fresh_database_url, tmp_path, totp_clock):
    """Backups hold the wrapped data keys: the journal stops a restore, and retiring the
    master key that wrapped them makes a stolen old backup unreadable too."""
    from shared.app import create_app

    app, _account, client_id = app_of_its_own(  # keys in instance/keys.json
        fresh_database_url, tmp_path, master_keys=None, index_key=None, secret_key=None)
    config = app.extensions["einblick"].config
    with app.app_context():
        row = db.session.get(Client, client_id)
        kek_id, wrapped, key_id = row.data_key.kek_id, row.data_key.wrapped_key, row.data_key.id
        blob = row.full_name_ciphertext
    runner = app.test_cli_runner()
    assert runner.invoke(args=["backup", "create", str(tmp_path / "old.bak")]).exit_code == 0
    with app.app_context():
        erasure.journal_append([client_id], at=utcnow())
        erasure.erase_client(client_id, at=utcnow())
        db.session.commit()
    with app.app_context():  # the old backup still opens with today's master key ...
        dek = app.extensions["einblick"].keyring.unwrap_data_key(
            kek_id=kek_id, wrapped=wrapped, data_key_id=key_id)
        assert crypto.decrypt_field(data_key=dek, data_key_id=key_id, blob=blob,
                                    aad=crypto.field_aad("clients", "full_name",
                                                         owner_id=client_id, row_id=client_id))
    result = runner.invoke(args=["keys", "rotate", "--retire"])
    assert result.exit_code == 0, result.output
    rotated = create_app(config)
    with rotated.app_context(), pytest.raises((crypto.CryptoError, KeyError)):
        rotated.extensions["einblick"].keyring.unwrap_data_key(  # ... but not after
            kek_id=kek_id, wrapped=wrapped, data_key_id=key_id)
    for each in (app, rotated):
        with each.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_grant_from_before_the_restriction_does_not_open_the_file(
        app, client, auth, make_client, make_staff, make_bookable):
    from tests.conftest import Auth

    bookable = make_bookable()
    person = make_client(full_name="Gerda Vorher")
    with app.app_context():
        own = own_client_id(person.account_id)
    past_booking(app, own, bookable)
    Auth(client, auth.clock).login(make_staff(role="caseworker"), area="staff")
    submit(client, f"/staff/clients/{own}/break-glass", {"reason": "Vertretung Kollegin krank"})
    assert client.get(f"/staff/clients/{own}").status_code == 200
    other = app.test_client()
    Auth(other, auth.clock).login(person)
    assert submit(other, "/my-data/delete", {"understood": "yes"}).status_code == 302
    response = client.get(f"/staff/clients/{own}")
    assert response.status_code == 302
    assert "break-glass" in response.headers["Location"]


def test_a_double_tap_on_delete_deletes_once_and_sends_one_email(app, client, auth,
                                                                 make_client, outbox):
    person = make_client(full_name="Doppel Klick")
    auth.login(person)
    token = csrf_token(client.get("/my-data/delete").get_data(as_text=True))
    browsers = []
    for _ in range(2):
        other = app.test_client()
        for cookie in client._cookies.values():
            other._cookies[(cookie.domain, cookie.path, cookie.key)] = cookie
        browsers.append(other)
    barrier = threading.Barrier(2)
    statuses = []

    def tap(browser):
        barrier.wait()
        try:
            statuses.append(browser.post("/my-data/delete", data={
                "csrf_token": token, "understood": "yes"}).status_code)
        except Exception as exc:  # noqa: BLE001 - the test client re-raises a 500
            statuses.append(f"500 {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=tap, args=(b,)) for b in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status == 302 for status in statuses), statuses
    assert len(outbox.to(person.email)) == 1
    with app.app_context():
        assert db.session.get(Account, person.account_id) is None


def test_documents_and_correcting_notes_go_through_erasure_and_purge(app, client, auth,
                                                                     runner, case):  # noqa: F811
    person, worker, client_id = case
    auth.login(worker, area="staff")
    assert upload(client, client_id, PDF, "Hilfeplan.pdf").status_code == 302
    write_note(client, client_id, "Erstgespraech")
    with app.app_context():
        first = db.session.scalar(select(Note.id))
    write_note(client, client_id, "Korrektur", corrects=str(first))
    auth.logout("staff")
    auth.login(person)
    assert confirm_delete(client).status_code == 302
    with app.app_context():
        row = db.session.get(Client, client_id)
        assert db.session.scalar(select(Document)).content == PDF
        due = erasure.years_after(row.restricted_at, 5)
    with time_machine.travel(due, tick=False):
        result = runner.invoke(args=["retention", "purge"])
        assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(Client, client_id) is None


def test_restricted_clients_are_not_in_funder_reports(app, restricted_case):  # noqa: F811
    from shared.services import reports

    with app.app_context():
        rows = reports.monthly(year=restricted_case["booking_end"].year)
        assert sum(r.appointments for r in rows) == 0


def test_an_admin_opens_a_restricted_file_only_with_a_reason(app, client, auth, make_staff,
                                                             restricted_case):  # noqa: F811
    from shared.models import AccessEvent

    own = restricted_case["client_id"]
    auth.login(make_staff(role="admin"), area="staff")
    first = client.get(f"/staff/clients/{own}")
    assert first.status_code == 302
    assert client.get(first.headers["Location"]).status_code == 200
    submit(client, f"/staff/clients/{own}/break-glass",
           {"reason": "Prüfung des Löschantrags innerhalb der Monatsfrist"})
    assert client.get(f"/staff/clients/{own}").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(AccessEvent).where(AccessEvent.client_id == own)
                                 .where(AccessEvent.action == "restricted")) is not None


def test_the_journal_erases_a_listed_client_once_and_ignores_unknown_ids(app, make_client):
    person = make_client(full_name="Wieder Da")
    with app.app_context():
        own = own_client_id(person.account_id)
        # As after a restore: the client is in the journal but still in the database.
        erasure.journal_append([own, uuid.uuid4()], at=utcnow())
        assert erasure.apply_journal() == 1
        assert db.session.get(Client, own) is None
        assert db.session.get(Account, person.account_id) is None
        assert erasure.apply_journal() == 0  # nothing left to do the second time


def test_break_glass_review_does_not_decrypt_a_restricted_clients_name(
        app, client, auth, make_staff, restricted_case):  # noqa: F811
    own = restricted_case["client_id"]
    auth.login(restricted_case["worker"], area="staff")
    submit(client, f"/staff/clients/{own}/break-glass",
           {"reason": "Anfrage des Familiengerichts vom 2. Dezember"})
    auth.logout("staff")
    auth.login(make_staff(role="admin"), area="staff")
    page = client.get("/staff/break-glass").get_data(as_text=True)
    assert "Anfrage des Familiengerichts" in page
    assert "Kanarienvogel" not in page


def test_two_guardians_deleting_at_once_do_not_leave_their_child_behind(
        app, make_client, totp_clock):
    from shared.models import Guardianship
    from tests.conftest import Auth
    from tests.portal.test_household import add_child

    mother, father = make_client(), make_client()
    browsers = [app.test_client(), app.test_client()]
    Auth(browsers[0], totp_clock).login(mother)
    add_child(browsers[0], full_name="Emil Beide")
    with app.app_context():
        child_id = db.session.scalar(select(Guardianship)).dependant_id
        db.session.add(Guardianship(guardian_account_id=father.account_id,
                                    dependant_id=child_id))
        db.session.commit()
    Auth(browsers[1], totp_clock).login(father)
    tokens = [csrf_token(b.get("/my-data/delete").get_data(as_text=True)) for b in browsers]
    barrier = threading.Barrier(2)
    statuses = []

    def tap(browser, token):
        barrier.wait()
        statuses.append(browser.post("/my-data/delete", data={
            "csrf_token": token, "understood": "yes"}).status_code)

    threads = [threading.Thread(target=tap, args=pair)
               for pair in zip(browsers, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [302, 302]
    with app.app_context():
        assert db.session.get(Client, child_id) is None  # erased with the last guardian


@pytest.mark.skipif(not __import__("tests.conftest", fromlist=["x"]).postgres_requested(),
                    reason="row locks: PostgreSQL")
def test_removing_a_child_while_the_other_guardian_deletes_does_not_orphan_it(
        app, make_client, totp_clock):
    from shared.models import Guardianship
    from shared.services import household
    from tests.conftest import Auth
    from tests.portal.test_household import add_child

    mother, father = make_client(), make_client()
    browser = app.test_client()
    Auth(browser, totp_clock).login(mother)
    add_child(browser, full_name="Emil Beide")
    with app.app_context():
        child_id = db.session.scalar(select(Guardianship)).dependant_id
        db.session.add(Guardianship(guardian_account_id=father.account_id,
                                    dependant_id=child_id))
        db.session.commit()
    planned, removed = threading.Event(), threading.Event()
    original_plan = erasure.plan

    def slow_plan(*args, **kwargs):  # the mother's request is between plan and erasure
        result = original_plan(*args, **kwargs)
        planned.set()
        removed.wait(3)
        return result

    errors = []

    def mother_deletes():
        try:
            with app.app_context():
                erasure.delete_account(db.session.get(Account, mother.account_id))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def father_removes():
        planned.wait(10)
        try:
            with app.app_context():
                household.remove_dependant(guardian=db.session.get(Account, father.account_id),
                                           client_id=child_id)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            removed.set()

    erasure.plan = slow_plan
    try:
        threads = [threading.Thread(target=mother_deletes),
                   threading.Thread(target=father_removes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        erasure.plan = original_plan
    assert errors == []
    with app.app_context():
        assert db.session.get(Client, child_id) is None


def test_the_queue_marks_an_erasure_check_that_is_overdue(app, client, auth, make_staff,
                                                          restricted_case):  # noqa: F811
    auth.login(make_staff(role="admin"), area="staff")
    assert 'class="overdue"' not in client.get("/staff/erasures").get_data(as_text=True)
    with app.app_context():
        row = db.session.get(Client, restricted_case["client_id"])
        row.restricted_at = utcnow() - timedelta(days=31)
        db.session.commit()
    assert 'class="overdue"' in client.get("/staff/erasures").get_data(as_text=True)
