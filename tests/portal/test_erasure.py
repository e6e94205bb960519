"""Erasure: a client deletes their account; what no duty keeps is gone at once and cannot be
decrypted anywhere; what a duty keeps is restricted and purged when due; a restored
backup does not bring anyone back."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from shared import catalogue, crypto, security_log
from shared.extensions import db
from shared.models import (
    AccessEvent,
    Account,
    Assignment,
    Booking,
    Client,
    ClientNameToken,
    DataKey,
    Document,
    Note,
    StaffMember,
)
from shared.models.base import utcnow
from shared.services import erasure
from shared.services.my_data import OWNERS, _rows
from tests.conftest import (
    add_booking,
    search_clients,
    security_events,
    submit,
    tomorrow_slot_token,
)
from tests.portal.test_bookings import book
from tests.portal.test_household import add_child
from tests.staff.test_casefile import PDF, upload


# -- helpers ------------------------------------------------------------------------------
def ciphertexts_of(client_ids) -> list[tuple[bytes, bytes]]:
    """(blob, aad) of every encrypted value the catalogue declares for these clients."""
    found = []
    for client_id in client_ids:
        client = db.session.get(Client, client_id)
        for entry in catalogue.ENTRIES:
            table, column = entry.column.split(".")
            if entry.storage != catalogue.ENCRYPTED or OWNERS.get(table) is None:
                continue
            for row in _rows(table, client):
                blob = getattr(row, f"{column}_ciphertext", None)
                if blob:
                    found.append((blob, getattr(type(row), column).aad(row)))
    return found


def opened_by_any_key(blobs) -> list[bytes]:
    """The blobs some data key still in the database decrypts (whatever key id they name)."""
    keys = [key.plaintext() for key in db.session.scalars(select(DataKey))]
    opened = []
    for blob, aad in blobs:
        nonce, body = blob[17:17 + crypto.NONCE_BYTES], blob[17 + crypto.NONCE_BYTES:]
        for key in keys:
            try:
                AESGCM(key).decrypt(nonce, body, aad)
            except InvalidTag:
                continue
            opened.append(blob)
    return opened


def raw_database_bytes(app) -> bytes:
    """Everything the database has on disk: the SQLite file and its WAL, or a pg_dump."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        data = b""
        for suffix in ("", "-wal"):
            path = url.database + suffix
            if os.path.exists(path):
                with open(path, "rb") as handle:
                    data += handle.read()
        return data
    dump = subprocess.run(
        ["pg_dump", "--host", url.host, "--port", str(url.port or 5432), "--username",
         url.username, "--dbname", url.database, "--data-only", "--inserts"],
        capture_output=True, check=True)
    # bytea values appear as hex in a dump: make the blobs comparable.
    return dump.stdout + dump.stdout.lower()


def as_stored(blob: bytes, app) -> bytes:
    return blob if db.engine.url.get_backend_name() == "sqlite" else blob.hex().encode()


def own_client_id(account_id) -> uuid.UUID:
    return db.session.scalar(select(Client.id).where(Client.account_id == account_id))


def member_of(person) -> StaffMember:
    return db.session.scalar(select(StaffMember).where(StaffMember.account_id ==
                                                       person.account_id))


def confirm_delete(client):
    return submit(client, "/my-data/delete", {"understood": "yes"})


# -- erasure without a duty to keep -------------------------------------------------------
def test_deleting_an_account_with_nothing_to_keep_leaves_nothing_that_opens(
        app, client, auth, make_client, make_bookable, outbox):
    canaries = ["Kanarien-Name-7f3a", "Kanarien-Allergie-19bd", "Kanarien-Gruppe-5521",
                "Kanarien-Notiz-8c0e", "Kanarien-Kontakt-2d4f", "Kanarien-Medizin-b7a1",
                "Kanarien-Korrektur-0e99"]
    bookable = make_bookable()
    person = make_client(full_name=canaries[0])
    auth.login(person)
    submit(client, "/account", {"full_name": canaries[0], "phone": "0170 5550123"})
    add_child(client, full_name="Emil Kanarienkind", allergies=canaries[1],
              group_name=canaries[2], contact_name=canaries[4], medical_notes=canaries[5])
    assert book(client, bookable, tomorrow_slot_token(app, bookable),
                note=canaries[3]).status_code == 302
    with app.app_context():
        own = own_client_id(person.account_id)
        child = db.session.scalar(select(Client.id).where(Client.account_id.is_(None)))
    submit(client, "/my-data/corrections", {"client": str(own), "about": "other",
                                             "message": canaries[6]})
    with app.app_context():
        blobs = ciphertexts_of([own, child])
        key_ids = {db.session.get(Client, own).data_key_id,
                   db.session.get(Client, child).data_key_id}
        assert len(blobs) >= 10
        assert len(opened_by_any_key(blobs)) == len(blobs)  # the check can see them
        raw = raw_database_bytes(app)
        assert any(as_stored(blob, app) in raw for blob, _ in blobs)

    page = client.get("/my-data/delete").get_data(as_text=True)
    assert "Emil Kanarienkind" in page
    assert "Es muss nichts aufbewahrt werden" in page  # the account's language is German
    refused = submit(client, "/my-data/delete", {})
    assert refused.status_code == 200  # the box was not ticked: nothing happened
    with app.app_context():
        assert db.session.get(Client, own) is not None

    response = confirm_delete(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    farewell = outbox.last_to(person.email)
    assert farewell["Subject"] == "Ihr Einblick-Konto wurde gelöscht"
    assert "Alles andere wurde jetzt gelöscht" in farewell.get_content()
    assert "Kanarien" not in farewell.get_content()  # no names in the last email
    assert auth.login(person).headers.get("Location") != "/home"
    assert client.get("/my-data").status_code == 302  # signed out

    with app.app_context():
        assert db.session.get(Client, own) is None
        assert db.session.get(Client, child) is None
        assert db.session.scalar(select(Account).where(Account.id == person.account_id)) is None
        assert not db.session.scalars(select(DataKey).where(DataKey.id.in_(key_ids))).all()
        assert db.session.scalar(select(ClientNameToken)) is None
        assert not db.session.scalars(select(AccessEvent).where(
            AccessEvent.client_id.in_([own, child]))).all()
        assert opened_by_any_key(blobs) == []
        raw = raw_database_bytes(app)
        for canary in canaries:
            assert canary.encode() not in raw
        assert [blob for blob, _ in blobs if as_stored(blob, app) in raw] == []
        journal = app.extensions["einblick"].config.erasure_journal_path.read_text()
        assert str(own) in journal
        assert str(child) in journal
        assert person.email not in journal
        assert "Kanarien" not in journal


def test_delete_needs_a_fresh_confirmation(app, client, auth, make_client):
    person = make_client()
    auth.login(person)
    minutes = app.extensions["einblick"].config.step_up_minutes + 1
    with time_machine.travel(utcnow() + timedelta(minutes=minutes)):
        response = client.get("/my-data/delete")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/account/confirm")


# -- erasure with a duty to keep: restriction, then purge ---------------------------------
@pytest.fixture
def restricted_case(app, client, auth, make_client, make_staff, make_bookable):
    """A client with an appointment that took place and a case note, who deletes the
    account; returns the people and the old ciphertexts."""
    bookable = make_bookable()
    worker = bookable.staff
    person = make_client(full_name="Lena Kanarienvogel")
    auth.login(person)
    submit(client, "/account", {"full_name": "Lena Kanarienvogel", "phone": "0170 5550199"})
    with app.app_context():
        own = own_client_id(person.account_id)
        client_row = db.session.get(Client, own)
        db.session.add(Assignment(client_id=own, staff_member_id=bookable.staff_member_id))
        end = utcnow().replace(microsecond=0) - timedelta(days=10)
        past = add_booking(client_row, bookable, end=end, minutes=45)
        past.booked_by_account_id = person.account_id
        past.note = "Kanarien-Termin-44aa"
        db.session.commit()
    auth.logout()
    auth.login(worker, area="staff")
    submit(client, f"/staff/clients/{own}/notes", {"body": "Kanarien-Akte-31c7"},
           form_url=f"/staff/clients/{own}")
    assert upload(client, own, PDF, "Hilfeplan.pdf").status_code == 302
    day = (end - timedelta(minutes=45)).astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
    before = client.get(f"/staff/bookings/day?day={day}&staff={bookable.staff_member_id}")
    assert "Kanarienvogel" in before.get_data(as_text=True)  # the checks below can fail
    assert f"/staff/clients/{own}" in search_clients(client, "Kanarienvogel")
    auth.logout("staff")
    with app.app_context():
        assert db.session.scalar(select(Note)) is not None
        old_blobs = ciphertexts_of([own])
        old_key = db.session.get(Client, own).data_key_id
    auth.login(person)
    page = client.get("/my-data/delete").get_data(as_text=True)
    assert "Aktennotizen" in page  # kept for the documentation duty
    assert confirm_delete(client).status_code == 302
    return {"person": person, "worker": worker, "client_id": own, "old_blobs": old_blobs,
            "old_key": old_key, "booking_end": end,
            "staff_member_id": bookable.staff_member_id}


def test_kept_data_is_restricted_re_encrypted_and_hidden(app, client, auth, make_staff,
                                                        restricted_case):
    own = restricted_case["client_id"]
    with app.app_context():
        row = db.session.get(Client, own)
        assert row.restricted_at is not None
        assert row.account_id is None
        assert row.phone is None
        assert row.phone_bidx is None
        assert db.session.scalar(select(ClientNameToken)) is None
        assert db.session.get(DataKey, restricted_case["old_key"]) is None
        assert row.data_key_id != restricted_case["old_key"]
        assert db.session.scalar(select(Note)).body == "Kanarien-Akte-31c7"  # kept, new key
        assert db.session.scalar(select(Document)).content == PDF
        assert opened_by_any_key(restricted_case["old_blobs"]) == []
        assert db.session.scalar(select(Assignment)) is None
    assert auth.login(restricted_case["person"]).headers.get("Location") != "/home"

    # Everyday staff views no longer show the client.
    auth.login(restricted_case["worker"], area="staff")
    found = search_clients(client, "Kanarienvogel")
    assert f"/staff/clients/{own}" not in found
    day = (restricted_case["booking_end"] - timedelta(minutes=45)).astimezone(
        ZoneInfo("Europe/Berlin")).date().isoformat()
    assert "Kanarienvogel" not in client.get(
        f"/staff/bookings/day?day={day}&staff={restricted_case['staff_member_id']}"
    ).get_data(as_text=True)
    # Opening the file needs a reason, which is logged.
    response = client.get(f"/staff/clients/{own}")
    assert response.status_code == 302
    assert "break-glass" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "§ 84 SGB X" in page
    submit(client, f"/staff/clients/{own}/break-glass",
           {"reason": "Anfrage des Familiengerichts vom 2. Dezember"})
    assert "Kanarien-Akte-31c7" in client.get(f"/staff/clients/{own}").get_data(as_text=True)
    with app.app_context():
        logged = db.session.scalar(select(AccessEvent).where(AccessEvent.client_id == own)
                                   .where(AccessEvent.action == "restricted"))
        assert logged is not None
        assert logged.grant_id is not None
    auth.logout("staff")
    reception = make_staff(role="reception")
    auth.login(reception, area="staff")
    assert client.get(f"/staff/clients/{own}").status_code == 404
    assert client.get(f"/staff/clients/{own}/break-glass").status_code == 403


def test_admin_checks_erasures_within_a_month(app, client, auth, make_staff, restricted_case):
    own = restricted_case["client_id"]
    admin = make_staff(role="admin")
    auth.login(admin, area="staff")
    page = client.get("/staff/erasures").get_data(as_text=True)
    assert f'data-client="{own}"' in page
    assert "Kanarienvogel" not in page  # the queue reads no personal data
    with app.app_context():
        restricted_at = db.session.get(Client, own).restricted_at
    # the date as the organisation reads it: 30 days after 23:17 UTC on 1 December is
    # already 1 January in Berlin
    berlin = ZoneInfo(app.config["BABEL_DEFAULT_TIMEZONE"])
    local = (restricted_at + timedelta(days=30)).astimezone(berlin)
    shown = re.search(r'data-testid="deadline">([^<]+)<', page).group(1)
    assert local.strftime("%d.%m.%Y") in shown
    submit(client, f"/staff/erasures/{own}", {"decision": "keep"}, form_url="/staff/erasures")
    with app.app_context():
        assert db.session.get(Client, own).erasure_reviewed_at is not None
    submit(client, f"/staff/erasures/{own}", {"decision": "erase"}, form_url="/staff/erasures")
    with app.app_context():
        assert db.session.get(Client, own) is not None  # not without the tick
    submit(client, f"/staff/erasures/{own}", {"decision": "erase", "confirm": "yes"},
           form_url="/staff/erasures")
    with app.app_context():
        assert db.session.get(Client, own) is None
        assert opened_by_any_key(restricted_case["old_blobs"]) == []
        by_admin = security_log.pseudonym(admin.account_id)
    # The client's own deletion, then the admin's decision.
    assert [ref for _, ref in security_events(app, "erasure.done")][-1] == by_admin
    assert len(security_events(app, "erasure.done")) == 2


def test_retention_purge_deletes_each_item_exactly_when_due(app, runner, restricted_case):
    own = restricted_case["client_id"]
    with app.app_context():
        restricted_at = db.session.get(Client, own).restricted_at
        kept_blobs = ciphertexts_of([own])  # the kept items, re-encrypted under the new key
        assert len(opened_by_any_key(kept_blobs)) == len(kept_blobs)
        assert any(as_stored(blob, app) in raw_database_bytes(app) for blob, _ in kept_blobs)
    # Whole calendar years, on the organisation's calendar.
    berlin = ZoneInfo("Europe/Berlin")
    booking_due = erasure.years_after(restricted_case["booking_end"], 3, zone=berlin)
    notes_due = erasure.years_after(restricted_at, 5, zone=berlin)

    with time_machine.travel(booking_due - timedelta(days=1), tick=False):
        # The set-up's sign-ins left security events, kept only 90 days: gone first.
        assert "security_events:" in runner.invoke(args=["retention", "purge"]).output
    with time_machine.travel(booking_due - timedelta(seconds=1), tick=False):
        assert "Deleted 0 items" in runner.invoke(args=["retention", "purge"]).output
    with time_machine.travel(booking_due, tick=False):
        output = runner.invoke(args=["retention", "purge"]).output
        assert "bookings: 1" in output
    with app.app_context():
        assert db.session.scalar(select(Booking)) is None
        assert db.session.scalar(select(Note)) is not None
        assert db.session.scalar(select(AccessEvent).where(AccessEvent.client_id == own)
                                 .where(AccessEvent.action == "purge")) is not None
    with time_machine.travel(notes_due - timedelta(seconds=1), tick=False):
        assert "Deleted 0 items" in runner.invoke(args=["retention", "purge"]).output
    with time_machine.travel(notes_due, tick=False):
        output = runner.invoke(args=["retention", "purge"]).output
        assert "documents: 1" in output
        assert "notes: 1" in output
        assert "clients: 1" in output
        assert "Deleted 0 items" in runner.invoke(args=["retention", "purge"]).output
    with app.app_context():
        assert db.session.get(Client, own) is None
        assert db.session.scalar(select(DataKey).join(
            Client, Client.data_key_id == DataKey.id)) is None
        assert opened_by_any_key(restricted_case["old_blobs"]) == []
        # When the last duty ends nothing of the client is left, readable or not.
        assert opened_by_any_key(kept_blobs) == []
        raw = raw_database_bytes(app)
        every_blob = restricted_case["old_blobs"] + kept_blobs
        assert [blob for blob, _ in every_blob if as_stored(blob, app) in raw] == []
        for canary in ("Kanarien-Akte-31c7", "Kanarien-Termin-44aa", "Kanarienvogel"):
            assert canary.encode() not in raw


def test_retention_purge_of_an_active_clients_old_appointments(app, runner, make_client,
                                                               make_bookable):
    bookable = make_bookable()
    person = make_client(full_name="Aktive Klientin")
    with app.app_context():
        own = db.session.get(Client, own_client_id(person.account_id))
        end = utcnow().replace(microsecond=0)
        add_booking(own, bookable, end=end)
        db.session.commit()
        own_id = own.id
    due = erasure.years_after(end, 3, zone=ZoneInfo("Europe/Berlin"))
    with time_machine.travel(due - timedelta(seconds=1), tick=False):
        assert "Deleted 0 items" in runner.invoke(args=["retention", "purge"]).output
    with time_machine.travel(due, tick=False):
        assert "bookings: 1" in runner.invoke(args=["retention", "purge"]).output
        assert "Deleted 0 items" in runner.invoke(args=["retention", "purge"]).output
    with app.app_context():
        assert db.session.scalar(select(Booking)) is None
        assert db.session.get(Client, own_id) is not None  # the client stays
        assert db.session.scalar(select(AccessEvent).where(AccessEvent.client_id == own_id)
                                 .where(AccessEvent.action == "purge")) is not None


# -- backups -----------------------------------------------------------------------------
def test_a_restored_backup_does_not_bring_an_erased_client_back(app, client, auth, runner,
                                                                make_client, tmp_path):
    from shared.app import create_app
    from shared.services import backup

    leaving = make_client(full_name="Geht Weg")
    staying = make_client(full_name="Bleibt Hier")
    path = tmp_path / "backup.dump"
    result = runner.invoke(args=["backup", "create", str(path)])
    assert result.exit_code == 0, result.output
    auth.login(leaving)
    assert confirm_delete(client).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Account).where(Account.id == leaving.account_id)) is None

    result = runner.invoke(args=["backup", "restore", str(path), "--yes"])
    assert result.exit_code == 0, result.output
    assert "1 clients erased again" in result.output
    with app.app_context():
        db.session.remove()
        assert db.session.scalar(select(Account).where(Account.id == leaving.account_id)) is None
        assert db.session.scalar(select(Account).where(Account.id == staying.account_id))
    assert auth.login(leaving).headers.get("Location") != "/home"

    # A restore made by other means (no journal step) is corrected at the next start.
    with app.app_context():
        backup.restore_database(path)
        assert db.session.scalar(select(Account).where(Account.id == leaving.account_id))
        db.session.remove()
        db.engine.dispose()
    restarted = create_app(app.extensions["einblick"].config)
    with restarted.app_context():
        assert db.session.scalar(select(Account).where(Account.id == leaving.account_id)) is None
        assert db.session.scalar(select(Account).where(Account.id == staying.account_id))
        db.session.remove()
        db.engine.dispose()


def test_retention_purge_drops_dead_sessions_and_spent_links(app, client, auth, runner,
                                                             make_client, outbox):
    from shared.models import AccountToken, UserSession

    person = make_client()
    auth.login(person)  # a session whose cookie never comes back
    submit(app.test_client(), "/reset", {"email": person.email})  # a link never used
    with app.app_context():
        assert db.session.scalar(select(UserSession)) is not None
        assert db.session.scalar(select(AccountToken)) is not None
    assert "Deleted 0 items" in runner.invoke(args=["retention", "purge"]).output
    with time_machine.travel(utcnow() + timedelta(hours=13)):
        output = runner.invoke(args=["retention", "purge"]).output
    assert "user_sessions: 1" in output
    assert "account_tokens: 1" in output
    with app.app_context():
        assert db.session.scalar(select(UserSession)) is None
        assert db.session.scalar(select(AccountToken)) is None


def test_deleting_an_account_is_a_security_event(app, client, auth, make_client):
    person = make_client()
    auth.login(person)
    with app.app_context():
        pseudonym = security_log.pseudonym(person.account_id)
    assert confirm_delete(client).status_code == 302
    assert security_events(app, "erasure.done") == [("ok", pseudonym)]
