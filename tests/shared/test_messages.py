"""Secure messages (shared/services/messages.py): a client writes to a service's team, staff
of the service see it, one takes it, another joins, both sides read and answer; every staff
read is a visit in the client's access log; what is kept from guardians stays so; files are
checked as documents are; erasure and the retention purge leave nothing behind."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from shared.extensions import db
from shared.models import (
    AccessEvent,
    Account,
    Client,
    DataKey,
    Guardianship,
    Message,
    MessageAttachment,
    MessageThread,
    Service,
    StaffMember,
    ThreadStaff,
)
from shared.models.base import utcnow
from shared.models.staff import NOTIFY_DIGEST
from shared.services import erasure, export, messages, my_data
from shared.services.accounts import set_client_name
from tests.conftest import counting_statements, staff_member_id
from tests.portal.test_erasure import as_stored, raw_database_bytes

PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b"0" * 200
MESSAGE_TABLES = (MessageThread, ThreadStaff, Message, MessageAttachment)


@pytest.fixture
def team(app, make_bookable, make_staff):
    """A service with two caseworkers (the second joins its staff), a caseworker of another
    service, and a reception member."""
    bookable = make_bookable(name="Erziehungsberatung")
    second = make_staff()
    other = make_bookable(name="Schuldnerberatung")
    reception = make_staff(role="reception")
    with app.app_context():
        service = db.session.get(Service, bookable.service_id)
        service.staff.append(db.session.get(StaffMember, staff_member_id(app, second)))
        db.session.commit()
    return {"service": bookable.service_id, "first": bookable.staff_member_id,
            "second": staff_member_id(app, second), "stranger": other.staff_member_id,
            "reception": staff_member_id(app, reception)}


def member(member_id) -> StaffMember:
    return db.session.get(StaffMember, member_id)


def account_of(person) -> Account:
    return db.session.get(Account, person.account_id)


def own_client_id(person) -> uuid.UUID:
    return db.session.scalar(select(Client.id).where(Client.account_id == person.account_id))


def start(person, service_id, *, body="Wir brauchen Hilfe beim Antrag.", topic="Antrag",
          client_id=None, **more) -> MessageThread:
    account = account_of(person)
    return messages.start_thread(account=account, client_id=client_id or own_client_id(person),
                                 service_id=service_id, topic=topic, body=body, **more)


def visits(client_id) -> list[AccessEvent]:
    return list(db.session.scalars(select(AccessEvent).where(AccessEvent.client_id == client_id)
                                   .order_by(AccessEvent.seq)))


def add_child(app, parent, *, name="Emil Beispiel") -> uuid.UUID:
    with app.app_context():
        key = DataKey.generate()
        child = Client(data_key=key)
        db.session.add_all([key, child])
        set_client_name(client=child, full_name=name)
        db.session.add(Guardianship(guardian_account_id=parent.account_id,
                                    dependant_id=child.id, access="full"))
        db.session.commit()
        return child.id


# -- the conversation ----------------------------------------------------------------------
def test_a_client_writes_the_team_takes_joins_answers_and_both_sides_read(app, team,
                                                                          make_client):
    person = make_client(full_name="Aylin Kaya")
    with app.app_context():
        thread = start(person, team["service"], attachments=[("Antrag.pdf", PDF)])
        thread_id, client_id = thread.id, thread.client_id
        first, second = member(team["first"]), member(team["second"])
        # Both caseworkers of the service see it, nobody holds it, one unread message.
        for who in (first, second):
            page = messages.inbox(member=who)
            assert [row.thread.id for row in page.rows] == [thread_id]
            assert page.rows[0].unread == 1
            assert page.rows[0].assigned_staff is None
            assert page.rows[0].thread.topic == "Antrag"
            assert page.clients[client_id].full_name == "Aylin Kaya"
        # Staff of another service and reception do not.
        assert messages.inbox(member=member(team["stranger"])).rows == []
        with pytest.raises(messages.NotAllowed):
            messages.inbox(member=member(team["reception"]))
        with pytest.raises(messages.ThreadNotFound):
            messages.thread_for_staff(member=member(team["stranger"]), thread_id=thread_id)

        messages.take(member=first, thread_id=thread_id)
        with pytest.raises(messages.AlreadyTaken) as taken:
            messages.take(member=second, thread_id=thread_id)
        assert taken.value.holder.id == team["first"]
        messages.join(member=second, thread_id=thread_id)
        row = messages.inbox(member=second, mine=True).rows[0]
        assert row.assigned_staff.id == team["first"]
        assert [m.id for m in row.joined] == [team["second"]]

        # The second reads it: the client's message is read by staff, and the read is a visit
        # in the client's access log.
        view = messages.thread_for_staff(member=second, thread_id=thread_id)
        assert [m.body for m in view.messages] == ["Wir brauchen Hilfe beim Antrag."]
        assert view.messages[0].read_by_staff_at is not None
        assert [f.filename for f in view.files_of(view.messages[0])] == ["Antrag.pdf"]
        seen = [e for e in visits(client_id) if e.staff_member_id == team["second"]
                and "messages" in e.category.split(",") and e.action == "view"]
        assert seen
        assert seen[-1].purpose == "message-work"
        assert messages.inbox(member=first).rows[0].unread == 0

        messages.reply_as_staff(member=first, thread_id=thread_id,
                                body="Kommen Sie gern am Dienstag vorbei.")
        account = account_of(person)
        assert messages.unread_count(account=account) == 1
        listed = messages.threads_for(account=account)
        assert [(r.thread.id, r.unread) for r in listed.rows] == [(thread_id, 1)]
        view = messages.thread_for_client(account=account, thread_id=thread_id)
        assert [m.from_staff for m in view.messages] == [False, True]
        assert view.messages[1].read_by_client_at is not None
        assert messages.unread_count(account=account) == 0

        messages.reply(account=account, thread_id=thread_id, body="Danke, bis Dienstag.")
        assert messages.inbox(member=first).rows[0].unread == 1
        assert messages.unread_for_staff(member=first) == 1


def test_nobody_else_reads_or_answers_a_conversation(app, team, make_client):
    person, stranger = make_client(), make_client()
    with app.app_context():
        thread = start(person, team["service"])
        intruder = account_of(stranger)
        with pytest.raises(messages.ThreadNotFound):
            messages.thread_for_client(account=intruder, thread_id=thread.id)
        with pytest.raises(messages.ThreadNotFound):
            messages.reply(account=intruder, thread_id=thread.id, body="Hallo")
        assert messages.threads_for(account=intruder).rows == []
        with pytest.raises(messages.NotAllowed):  # about someone else
            start(stranger, team["service"], client_id=thread.client_id)
        attachment_thread = start(person, team["service"], attachments=[("a.pdf", PDF)])
        attachment = db.session.scalar(select(MessageAttachment).where(
            MessageAttachment.client_id == attachment_thread.client_id))
        with pytest.raises(messages.ThreadNotFound):
            messages.attachment_for_client(account=intruder, attachment_id=attachment.id)
        with pytest.raises(messages.ThreadNotFound):
            messages.attachment_for_staff(member=member(team["stranger"]),
                                          attachment_id=attachment.id)
        assert messages.attachment_for_client(account=account_of(person),
                                              attachment_id=attachment.id).content == PDF


def test_staff_downloading_a_file_is_a_visit_too(app, team, make_client):
    person = make_client()
    with app.app_context():
        thread = start(person, team["service"], attachments=[("Bescheid.pdf", PDF)])
        attachment = db.session.scalar(select(MessageAttachment))
        got = messages.attachment_for_staff(member=member(team["first"]),
                                            attachment_id=attachment.id)
        assert got.content == PDF
        assert messages.download_name(got) == "Bescheid.pdf"
        assert [e.action for e in visits(thread.client_id)
                if e.staff_member_id == team["first"]] == ["download"]


def test_empty_messages_and_unknown_services_are_refused(app, team, make_client):
    person = make_client()
    with app.app_context():
        with pytest.raises(messages.EmptyMessage):
            start(person, team["service"], body="   ")
        with pytest.raises(messages.EmptyMessage):
            start(person, team["service"], topic="")
        with pytest.raises(messages.ServiceUnavailable):
            start(person, uuid.uuid4())
        assert db.session.scalar(select(func.count()).select_from(MessageThread)) == 0


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("programm.pdf", b"MZ\x90\x00" + b"\x00" * 300, "type"),  # a Windows program named .pdf
    ("notiz.txt", b"nur Text", "type"),
    ("leer.pdf", b"", "empty"),
    ("gross.pdf", PDF + b"0" * (20 * 1024 * 1024), "too-large"),
])
def test_attachments_are_checked_as_documents_are(app, team, make_client, name, data, reason):
    person = make_client()
    with app.app_context():
        with pytest.raises(messages.AttachmentRejected) as refused:
            start(person, team["service"], attachments=[(name, data)])
        assert refused.value.reason == reason
        for model in MESSAGE_TABLES:  # nothing was stored
            assert db.session.scalar(select(func.count()).select_from(model)) == 0


def test_a_file_named_for_another_type_gets_the_name_of_its_content(app, team, make_client):
    person = make_client()
    with app.app_context():
        thread = start(person, team["service"], attachments=[("Zeugnis.pdf.exe", PDF)])
        view = messages.thread_for_client(account=account_of(person), thread_id=thread.id)
        attachment = view.files_of(view.messages[0])[0]
        assert (attachment.filename, attachment.content_type) == ("Zeugnis.pdf",
                                                                  "application/pdf")


# -- guardians -----------------------------------------------------------------------------
def test_a_message_kept_from_guardians_is_hidden_from_the_guardian(app, team, make_client):
    parent = make_client(full_name="Mia Beispiel")
    child_id = add_child(app, parent)
    with app.app_context():
        guardian = account_of(parent)
        thread = start(parent, team["service"], client_id=child_id, topic="Schule")
        assert thread.started_by_account_id == parent.account_id
        first = member(team["first"])
        open_answer = messages.reply_as_staff(member=first, thread_id=thread.id,
                                              body="Gern, rufen Sie an.")
        hidden = messages.reply_as_staff(member=first, thread_id=thread.id,
                                         body="Nur für Emil gedacht.",
                                         confidential_from_guardians=True,
                                         attachments=[("Plan.pdf", PDF)])
        assert messages.unread_count(account=guardian) == 1
        assert [r.unread for r in messages.threads_for(account=guardian).rows] == [1]
        view = messages.thread_for_client(account=guardian, thread_id=thread.id)
        assert view.as_guardian
        assert [m.body for m in view.messages] == ["Wir brauchen Hilfe beim Antrag.",
                                                   "Gern, rufen Sie an."]
        attachment = db.session.scalar(select(MessageAttachment))
        with pytest.raises(messages.ThreadNotFound):
            messages.attachment_for_client(account=guardian, attachment_id=attachment.id)
        # Told of the open answer, not of the hidden one.
        assert [a.id for a in messages.recipients_for_new_message(open_answer)] == [
            parent.account_id]
        assert messages.recipients_for_new_message(hidden) == []
        # "My data" and the export leave it out for the guardian too.
        child = db.session.get(Client, child_id)
        shown = my_data.items_for(child, as_guardian=True)["messages"]
        bodies = next(item.values for item in shown if item.entry.column == "messages.body")
        assert "Nur für Emil gedacht." not in bodies
        assert "Gern, rufen Sie an." in bodies
        files = next((item for item in shown
                      if item.entry.column == "message_attachments.filename"), None)
        assert files is None
        everything = my_data.items_for(child, as_guardian=False)["messages"]
        assert "Nur für Emil gedacht." in next(
            item.values for item in everything if item.entry.column == "messages.body")
        assert messages.attachments_for_export(child_id, as_guardian=True) == []
        assert len(messages.attachments_for_export(child_id, as_guardian=False)) == 1


def test_a_guardian_who_sees_only_appointments_sees_no_conversation(app, team, make_client):
    parent = make_client()
    child_id = add_child(app, parent)
    with app.app_context():
        thread = start(parent, team["service"], client_id=child_id)
        link = db.session.scalar(select(Guardianship))
        link.access = "bookings"
        db.session.commit()
        guardian = account_of(parent)
        messages.reply_as_staff(member=member(team["first"]), thread_id=thread.id, body="Ja.")
        assert messages.threads_for(account=guardian).rows == []
        assert messages.unread_count(account=guardian) == 0
        with pytest.raises(messages.ThreadNotFound):
            messages.thread_for_client(account=guardian, thread_id=thread.id)


# -- notifications -------------------------------------------------------------------------
def test_whom_to_tell_of_a_new_message(app, team, make_client):
    person = make_client()
    with app.app_context():
        thread = start(person, team["service"])
        first_message = db.session.scalar(select(Message))
        first, second = member(team["first"]), member(team["second"])
        second.message_notifications = NOTIFY_DIGEST
        db.session.commit()
        # Nobody took it: every caseworker of the service, as each chose.
        assert [a.id for a in messages.recipients_for_new_message(first_message)] == [
            first.account_id]
        assert [a.id for a in messages.recipients_for_new_message(
            first_message, digest=True)] == [second.account_id]
        answer = messages.reply_as_staff(member=first, thread_id=thread.id, body="Hallo")
        assert [a.id for a in messages.recipients_for_new_message(answer)] == [
            person.account_id]
        # Taken: the holder (and who joined) only; the author never hears of their own.
        later = messages.reply(account=account_of(person), thread_id=thread.id, body="Gut")
        assert [a.id for a in messages.recipients_for_new_message(later)] == [
            first.account_id]
        # The digest: once a day, for the unread messages of conversations one answers.
        messages.join(member=second, thread_id=thread.id)
        now = utcnow()
        assert [(m.id, n) for m, n in messages.digest_due(now=now)] == [(second.id, 2)]
        messages.mark_digest_sent(second, at=now)
        assert messages.digest_due(now=now + timedelta(hours=1)) == []
        assert [m.id for m, _n in messages.digest_due(now=now + timedelta(days=1))] == [
            second.id]


def test_the_digest_command_sends_a_count_only(app, team, make_client, runner, outbox):
    person = make_client()
    with app.app_context():
        start(person, team["service"], body="Geheimer Inhalt 4711")
        member(team["second"]).message_notifications = NOTIFY_DIGEST
        db.session.commit()
    result = runner.invoke(args=["messages", "digest"])
    assert result.exit_code == 0, result.output
    assert "Sent 1 digests." in result.output
    assert runner.invoke(args=["messages", "digest"]).output.startswith("Sent 0")
    sent = outbox.messages()
    assert len(sent) == 1
    assert "4711" not in sent[0].as_string()


# -- pages cost the same however many conversations -----------------------------------------
def test_the_inbox_and_the_clients_list_cost_the_same_for_3_and_30_threads(app, team,
                                                                          make_client):
    people = [make_client() for _ in range(3)]
    parent = people[0]
    children = [add_child(app, parent, name=f"Kind {n}") for n in range(2)]

    def seed(count: int) -> None:
        with app.app_context():
            for n in range(count):
                person = people[n % 3]
                about = children[n % 2] if person is parent and n % 2 else None
                thread = start(person, team["service"], client_id=about, topic=f"Thema {n}")
                messages.reply_as_staff(member=member(team["first"]), thread_id=thread.id,
                                        body="Antwort")
            db.session.remove()

    def costs() -> tuple[int, int, int]:
        counted = []
        with app.app_context():
            for measure in (lambda staff, _guardian: messages.inbox(member=staff).rows,
                            lambda _staff, guardian: messages.threads_for(
                                account=guardian).rows,
                            lambda _staff, guardian: messages.unread_count(account=guardian)):
                db.session.remove()  # nothing cached from the seeding
                # As a request has them: the signed-in person loaded, then the page counted.
                staff, guardian = member(team["first"]), account_of(parent)
                with counting_statements(app) as statements:
                    assert measure(staff, guardian)
                counted.append(len(statements))
            db.session.remove()
        return tuple(counted)

    seed(3)
    few = costs()
    seed(27)
    many = costs()
    assert few == many
    assert few[2] == 1  # the badge: one statement


# -- transparency, erasure, retention --------------------------------------------------------
def test_messages_are_in_my_data_and_the_export(app, team, make_client):
    person = make_client()
    with app.test_request_context("/"):
        thread = start(person, team["service"], attachments=[("Antrag.pdf", PDF)])
        messages.reply_as_staff(member=member(team["first"]), thread_id=thread.id,
                                body="Antwort des Teams")
        data = export.build_data(account_of(person))
        items = {item["column"]: item for item in data["subjects"][0]["categories"]["messages"]}
        assert set(items["messages.body"]["values"]) == {"Wir brauchen Hilfe beim Antrag.",
                                                         "Antwort des Teams"}
        assert items["message_threads.topic"]["values"] == ["Antrag"]
        assert items["message_attachments.content"]["stored_as"] == "file"
        # When the purge deletes it: the retention after the last message.
        last = db.session.get(MessageThread, thread.id).last_message_at
        assert items["message_threads.topic"]["deleted_on"] == erasure.years_after(
            last, 2).isoformat()
        assert "2" in items["messages.body"]["retention"]


def test_deleting_the_account_leaves_no_message_and_no_ciphertext(app, team, make_client):
    person = make_client()
    with app.app_context():
        thread = start(person, team["service"], body="Kanarien-Nachricht-3c1f",
                       attachments=[("Antrag.pdf", PDF)])
        messages.reply_as_staff(member=member(team["first"]), thread_id=thread.id,
                                body="Kanarien-Antwort-9e2d")
        messages.join(member=member(team["second"]), thread_id=thread.id)
        blobs = [row.body_ciphertext for row in db.session.scalars(select(Message))]
        blobs += [row.topic_ciphertext for row in db.session.scalars(select(MessageThread))]
        blobs += [row.content_ciphertext for row in db.session.scalars(select(MessageAttachment))]
        raw = raw_database_bytes(app)
        assert all(as_stored(blob, app) in raw for blob in blobs)  # control: the scan sees them
        erasure.delete_account(account_of(person))
        for model in MESSAGE_TABLES:
            assert db.session.scalar(select(func.count()).select_from(model)) == 0
        raw = raw_database_bytes(app)
        assert [blob for blob in blobs if as_stored(blob, app) in raw] == []
        assert b"Kanarien" not in raw


def test_the_purge_deletes_conversations_two_years_after_their_last_message(app, team,
                                                                           make_client):
    person = make_client()
    with app.app_context():
        old = start(person, team["service"], topic="Alt", attachments=[("a.pdf", PDF)])
        messages.join(member=member(team["second"]), thread_id=old.id)
        recent = start(person, team["service"], topic="Neu")
        old_id, recent_id, client_id = old.id, recent.id, old.client_id
        now = utcnow()
        old.last_message_at = now - timedelta(days=2 * 366)
        recent.last_message_at = now - timedelta(days=365)
        db.session.commit()
        result = erasure.purge(now=now)
        assert result.counts.get("message_threads") == 1
        assert db.session.get(MessageThread, old_id) is None
        assert db.session.get(MessageThread, recent_id) is not None
        assert db.session.scalar(select(func.count()).select_from(MessageAttachment)) == 0
        assert db.session.scalar(select(func.count()).select_from(ThreadStaff)) == 0
        assert db.session.scalar(select(func.count()).select_from(Message)
                                 .where(Message.thread_id == old_id)) == 0
        purged = [e for e in visits(client_id) if e.action == "purge"]
        assert [e.category for e in purged] == ["messages"]
        # Run again: nothing more to do.
        assert "message_threads" not in erasure.purge(now=now).counts


@pytest.mark.parametrize("config_overrides", [{"message_retention_years": 1}])
def test_the_retention_is_configurable(app, team, make_client, config_overrides):
    person = make_client()
    with app.app_context():
        thread = start(person, team["service"])
        thread.last_message_at = utcnow() - timedelta(days=370)
        db.session.commit()
        assert messages.retention_years() == 1
        assert erasure.purge().counts.get("message_threads") == 1


def test_the_client_reads_in_their_access_log_that_staff_read_and_answered(app, team,
                                                                          make_client):
    from flask_babel import force_locale

    from shared.services import transparency

    person = make_client()
    with app.test_request_context("/"), force_locale("en"):
        thread = start(person, team["service"], attachments=[("Antrag.pdf", PDF)])
        second = member(team["second"])
        messages.thread_for_staff(member=second, thread_id=thread.id)
        messages.reply_as_staff(member=member(team["first"]), thread_id=thread.id, body="Ja")
        attachment = db.session.scalar(select(MessageAttachment))
        messages.attachment_for_staff(member=second, attachment_id=attachment.id)
        page = transparency.visits_page(account_of(person), category="messages")
        assert [str(visit.summary) for visit in page.visits] == [
            "downloaded a file sent with a message", "answered a message", "read messages"]
        assert ("messages", "messages") in [(code, str(label))
                                            for code, label in page.categories]


def test_the_export_zip_holds_the_files_of_the_conversations(app, team, make_client):
    import io
    import zipfile

    person = make_client()
    with app.test_request_context("/"):
        start(person, team["service"], attachments=[("Antrag.pdf", PDF)])
        data = b"".join(export.stream(person.account_id))
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    files = [name for name in names if name.startswith("me/messages/")]
    assert len(files) == 1
    assert files[0].endswith("-Antrag.pdf")
    assert zipfile.ZipFile(io.BytesIO(data)).read(files[0]) == PDF
    assert "me/data/messages.csv" in names


# -- young people, guardians and erasure ---------------------------------------------------
def link_guardian(app, parent, child) -> uuid.UUID:
    """``child`` (a client with an account of their own) gets ``parent`` as a guardian who
    sees everything."""
    with app.app_context():
        child_id = own_client_id(child)
        db.session.add(Guardianship(guardian_account_id=parent.account_id,
                                    dependant_id=child_id, access="full"))
        db.session.commit()
        return child_id


def test_a_young_person_keeps_a_conversation_from_their_guardians(app, team, make_client):
    parent, young = make_client(), make_client(full_name="Lara Demir")
    child_id = link_guardian(app, parent, young)
    with app.app_context():
        hidden = start(young, team["service"], topic="Ärger zu Hause",
                       confidential_from_guardians=True)
        shared_thread = start(parent, team["service"], client_id=child_id, topic="Schule")
        assert hidden.confidential_from_guardians
        # A guardian cannot keep a conversation from the guardians: it is not theirs.
        assert not shared_thread.confidential_from_guardians
        answer = messages.reply_as_staff(member=member(team["first"]), thread_id=hidden.id,
                                         body="Wir sind für dich da.")
        assert answer.confidential_from_guardians
        guardian = account_of(parent)
        assert [r.thread.id for r in messages.threads_for(account=guardian).rows] == [
            shared_thread.id]
        with pytest.raises(messages.ThreadNotFound):
            messages.thread_for_client(account=guardian, thread_id=hidden.id)
        with pytest.raises(messages.ThreadNotFound):
            messages.reply(account=guardian, thread_id=hidden.id, body="Was ist los?")
        assert messages.unread_count(account=guardian) == 0
        assert [a.id for a in messages.recipients_for_new_message(answer)] == [
            young.account_id]
        # The young person sees both, with the answer unread.
        mine = messages.threads_for(account=account_of(young)).rows
        assert {(r.thread.id, r.unread, r.as_guardian) for r in mine} == {
            (hidden.id, 1, False), (shared_thread.id, 0, False)}
        assert messages.unread_count(account=account_of(young)) == 1
        # "My data" shows the guardian nothing of it: no topic, no message, not who joined.
        messages.join(member=member(team["second"]), thread_id=hidden.id)
        child = db.session.get(Client, child_id)
        seen = {item.entry.column: item.values
                for item in my_data.items_for(child, as_guardian=True)["messages"]}
        assert seen["message_threads.topic"] == ["Schule"]
        assert "Wir sind für dich da." not in seen["messages.body"]
        assert "thread_staff.staff_member_id" not in seen
        everything = {item.entry.column: item.values
                      for item in my_data.items_for(child, as_guardian=False)["messages"]}
        assert everything["thread_staff.staff_member_id"] == [team["second"]]


def test_a_guardian_deleting_their_account_leaves_the_young_persons_conversation(
        app, team, make_client):
    parent, young = make_client(), make_client()
    child_id = link_guardian(app, parent, young)
    with app.app_context():
        thread = start(parent, team["service"], client_id=child_id, body="Von der Mutter")
        erasure.delete_account(account_of(parent))
        db.session.expire_all()
        kept = db.session.get(MessageThread, thread.id)
        assert kept.started_by_account_id is None
        message = db.session.scalar(select(Message))
        assert message.author_account_id is None
        assert message.from_staff is False
        assert message.body == "Von der Mutter"
        assert [r.thread.id for r in messages.threads_for(account=account_of(young)).rows] == [
            thread.id]


def test_a_restricted_file_keeps_no_message(app, team, make_client):
    from shared.models import Note

    person = make_client()
    with app.app_context():
        thread = start(person, team["service"], body="Kanarien-Beschränkt-51aa")
        client = db.session.get(Client, thread.client_id)
        note = Note(client_id=client.id, data_key=client.data_key, author_id=team["first"])
        note.body = "Aktennotiz"
        db.session.add(note)
        db.session.commit()
        blobs = [row.body_ciphertext for row in db.session.scalars(select(Message))]
        client_id = client.id
        erasure.delete_account(account_of(person))
        db.session.expire_all()
        assert db.session.get(Client, client_id).restricted_at is not None
        for model in MESSAGE_TABLES:
            assert db.session.scalar(select(func.count()).select_from(model)) == 0
        raw = raw_database_bytes(app)
        assert [blob for blob in blobs if as_stored(blob, app) in raw] == []


def test_a_conversation_held_by_someone_who_left_can_be_taken(app, team, make_client):
    person = make_client()
    with app.app_context():
        thread = start(person, team["service"])
        first, second = member(team["first"]), member(team["second"])
        messages.take(member=first, thread_id=thread.id)
        later = messages.reply(account=account_of(person), thread_id=thread.id, body="Hallo?")
        assert [a.id for a in messages.recipients_for_new_message(later)] == [
            first.account_id]
        first.active = False
        db.session.commit()
        # Nobody still here holds it: the team hears of new messages again ...
        assert [a.id for a in messages.recipients_for_new_message(later)] == [
            second.account_id]
        # ... and someone takes it over.
        assert messages.take(member=second, thread_id=thread.id).assigned_staff_id == second.id
        with pytest.raises(messages.NotAllowed):
            messages.inbox(member=first)


def test_who_leaves_the_service_no_longer_reads_answers_or_hears(app, team, make_client):
    # Security review: having taken or joined a conversation gave access after leaving.
    person = make_client()
    with app.app_context():
        thread = start(person, team["service"])
        first, second = member(team["first"]), member(team["second"])
        messages.take(member=first, thread_id=thread.id)
        messages.join(member=second, thread_id=thread.id)
        service = db.session.get(Service, team["service"])
        service.staff.remove(first)
        db.session.commit()
        with pytest.raises(messages.ThreadNotFound):
            messages.thread_for_staff(member=first, thread_id=thread.id)
        with pytest.raises(messages.ThreadNotFound):
            messages.reply_as_staff(member=first, thread_id=thread.id, body="Noch da?")
        assert messages.inbox(member=first).total == 0
        later = messages.reply(account=account_of(person), thread_id=thread.id, body="Hallo?")
        assert [a.id for a in messages.recipients_for_new_message(later)] == [
            second.account_id]
        # The holder left: the team may take it over.
        assert messages.take(member=second, thread_id=thread.id).assigned_staff_id == second.id


def test_the_inbox_lists_newest_activity_first_and_filters_what_nobody_took(app, team,
                                                                           make_client):
    person = make_client()
    with app.app_context():
        older = start(person, team["service"], topic="Älter")
        newer = start(person, team["service"], topic="Neuer")
        first = member(team["first"])
        older.last_message_at = newer.last_message_at - timedelta(hours=1)
        db.session.commit()
        assert [r.thread.id for r in messages.inbox(member=first).rows] == [newer.id, older.id]
        messages.reply(account=account_of(person), thread_id=older.id, body="Noch etwas")
        assert [r.thread.id for r in messages.inbox(member=first).rows] == [older.id, newer.id]
        messages.take(member=first, thread_id=older.id)
        assert [r.thread.id for r in messages.inbox(member=first, unassigned=True).rows] == [
            newer.id]
        assert [r.thread.id for r in messages.inbox(member=first, mine=True).rows] == [
            older.id]
        with pytest.raises(messages.NotAllowed):  # only the holder gives it back
            messages.release(member=member(team["second"]), thread_id=older.id)
        messages.release(member=first, thread_id=older.id)
        assert messages.inbox(member=first, mine=True).rows == []


def test_a_conversation_costs_the_same_statements_with_2_and_20_messages(app, team,
                                                                         make_client):
    person = make_client()
    with app.app_context():
        thread_id = start(person, team["service"], attachments=[("a.pdf", PDF)]).id

    def add(count: int) -> None:
        with app.app_context():
            for n in range(count):
                if n % 2:
                    messages.reply(account=account_of(person), thread_id=thread_id,
                                   body=f"Frage {n}", attachments=[(f"{n}.pdf", PDF)])
                else:
                    messages.reply_as_staff(member=member(team["second" if n % 4 else "first"]),
                                            thread_id=thread_id, body=f"Antwort {n}")
            db.session.remove()

    def costs() -> tuple[int, int]:
        counted = []
        with app.app_context():
            for read in (lambda staff, _client: messages.thread_for_staff(
                             member=staff, thread_id=thread_id),
                         lambda _staff, client: messages.thread_for_client(
                             account=client, thread_id=thread_id)):
                db.session.remove()
                staff, client = member(team["first"]), account_of(person)
                with counting_statements(app) as statements:
                    view = read(staff, client)
                    assert [m.body for m in view.messages]  # every body decrypted
                    assert all(f.filename for m in view.messages for f in view.files_of(m))
                counted.append(len(statements))
            db.session.remove()
        return tuple(counted)

    add(1)
    few = costs()
    add(18)
    assert costs() == few


def test_an_open_page_asks_for_what_is_new(app, team, make_client):
    """new_for_client / new_for_staff (the open page's polling): the messages after the last
    one shown, marked read as opening the page marks them; for staff a visit in the access
    log only when something new is shown; never what is kept from the reader."""
    parent = make_client()
    child_id = add_child(app, parent)
    with app.app_context():
        thread = start(parent, team["service"], client_id=child_id)
        first = db.session.scalar(select(Message))
        staff, guardian = member(team["first"]), account_of(parent)
        before = len(visits(child_id))
        assert messages.new_for_staff(member=staff, thread_id=thread.id,
                                      after_id=first.id) is None
        assert len(visits(child_id)) == before  # nothing new, nothing read, no visit
        hidden = messages.reply_as_staff(member=staff, thread_id=thread.id, body="Nur Emil",
                                         confidential_from_guardians=True)
        shown = messages.reply_as_staff(member=staff, thread_id=thread.id, body="Für alle")
        new = messages.new_for_client(account=guardian, thread_id=thread.id,
                                      after_id=first.id)
        assert [m.body for m in new.messages] == ["Für alle"]
        assert db.session.get(Message, shown.id).read_by_client_at is not None
        assert db.session.get(Message, hidden.id).read_by_client_at is None
        with pytest.raises(messages.ThreadNotFound):  # a message the guardian never saw
            messages.new_for_client(account=guardian, thread_id=thread.id, after_id=hidden.id)
        later = messages.reply(account=guardian, thread_id=thread.id, body="Danke")
        new = messages.new_for_staff(member=staff, thread_id=thread.id, after_id=shown.id)
        assert [m.body for m in new.messages] == ["Danke"]
        assert db.session.get(Message, later.id).read_by_staff_at is not None
        assert (visits(child_id)[-1].action, visits(child_id)[-1].category) == ("view",
                                                                               "messages")


# -- security review of issue 17: two staff answering or taking at the same moment ----------
def colleague_takes_after_our_read(monkeypatch, colleague_id):
    """Between reading the conversation (nobody holds it) and writing, a colleague takes it,
    in a transaction of their own (another worker) that commits first."""
    read = messages._staff_thread

    def read_then_colleague_takes(member, thread_id):
        thread = read(member, thread_id)
        assert thread.assigned_staff_id is None  # what we saw
        with db.engine.begin() as other_worker:
            other_worker.execute(
                MessageThread.__table__.update().where(MessageThread.id == thread_id)
                .values(assigned_staff_id=colleague_id, assigned_at=utcnow()))
        return thread

    monkeypatch.setattr(messages, "_staff_thread", read_then_colleague_takes)


def test_answering_at_the_same_moment_as_a_colleague_takes_it_joins_instead(
        app, team, make_client, monkeypatch):
    person = make_client()
    with app.app_context():
        thread_id = start(person, team["service"]).id
        colleague_takes_after_our_read(monkeypatch, team["second"])
        messages.reply_as_staff(member=member(team["first"]), thread_id=thread_id,
                                body="Ich schaue es mir an.")
        monkeypatch.undo()
        db.session.expire_all()
        thread = db.session.get(MessageThread, thread_id)
        assert thread.assigned_staff_id == team["second"]  # the first take stays
        assert [row.staff_member_id for row in db.session.scalars(
            select(ThreadStaff).where(ThreadStaff.thread_id == thread_id))] == [team["first"]]
        assert [m.body for m in messages._view(thread_id).messages][-1] == (
            "Ich schaue es mir an.")


def test_answering_a_conversation_nobody_took_still_takes_it(app, team, make_client):
    person = make_client()
    with app.app_context():
        thread_id = start(person, team["service"]).id
        messages.reply_as_staff(member=member(team["first"]), thread_id=thread_id,
                                body="Gern.")
        db.session.expire_all()
        thread = db.session.get(MessageThread, thread_id)
        assert thread.assigned_staff_id == team["first"]
        assert thread.assigned_at is not None
        assert db.session.scalar(select(func.count()).select_from(ThreadStaff)) == 0


def test_taking_at_the_same_moment_as_a_colleague_is_refused(app, team, make_client,
                                                              monkeypatch):
    person = make_client()
    with app.app_context():
        thread_id = start(person, team["service"]).id
        colleague_takes_after_our_read(monkeypatch, team["second"])
        with pytest.raises(messages.AlreadyTaken) as taken:
            messages.take(member=member(team["first"]), thread_id=thread_id)
        monkeypatch.undo()
        assert taken.value.holder.id == team["second"]
        db.session.expire_all()
        assert db.session.get(MessageThread, thread_id).assigned_staff_id == team["second"]


# -- an open page's polling and messages committed late ---------------------------------------
class Poller:
    """An open conversation page of a caseworker: asks for what came after the last
    message it shows, as shared/static/js/messages.js does."""

    def __init__(self, app, member_id, thread_id, last_shown) -> None:
        self.app, self.member_id, self.thread_id = app, member_id, thread_id
        self.last_shown, self.shown = last_shown, []

    def poll(self) -> None:
        with self.app.app_context():
            new = messages.new_for_staff(member=member(self.member_id),
                                         thread_id=self.thread_id, after_id=self.last_shown)
            if new is not None:
                self.shown += [message.body for message in new.messages]
                self.last_shown = new.messages[-1].id


def writing_in_the_background(app, name: str, write, errors: list) -> threading.Thread:
    def run():
        try:
            with app.app_context():
                write()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    worker = threading.Thread(target=run, name=name)
    worker.start()
    return worker


def wait_until_waiting_for_a_lock(app, worker: threading.Thread) -> None:
    """On PostgreSQL: until the other transaction waits for a lock (or has finished).
    SQLite: its writer waits in the busy handler, which nothing shows; it has one writer
    at a time anyway."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return
        deadline = time.monotonic() + 30
        while worker.is_alive() and time.monotonic() < deadline:
            with db.engine.connect() as conn:
                if conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                                    " current_database() AND wait_event_type = 'Lock'")):
                    return


@pytest.fixture
def conversation(app, team, make_client):
    """A client's conversation with the team, its first message shown on a caseworker's
    open page."""
    person = make_client()
    with app.app_context():
        thread = start(person, team["service"])
        first = db.session.scalar(select(Message.id).where(Message.thread_id == thread.id))
        return person, thread.id, Poller(app, team["second"], thread.id, first)


def test_a_message_begun_first_and_committed_last_still_reaches_the_open_page(
        app, team, conversation, monkeypatch):
    """The client's message is begun first (its time is taken; a 20 MB file is being
    checked) but committed after the caseworker's, which the open page already showed: the
    next poll brings it. By time it came before the one shown and was never fetched."""
    person, thread_id, page = conversation
    begun, go_on, errors = threading.Event(), threading.Event(), []
    next_seq = messages._next_seq

    def numbered_late(thread, now):
        if threading.current_thread().name == "client":
            begun.set()
            assert go_on.wait(30)
        return next_seq(thread, now)

    monkeypatch.setattr(messages, "_next_seq", numbered_late)
    client = writing_in_the_background(app, "client", lambda: messages.reply(
        account=account_of(person), thread_id=thread_id, body="Hier ist der Bescheid.",
        attachments=[("bescheid.pdf", PDF)]), errors)
    assert begun.wait(30)
    with app.app_context():
        messages.reply_as_staff(member=member(team["first"]), thread_id=thread_id,
                                body="Ich kümmere mich darum.")
    page.poll()
    assert page.shown == ["Ich kümmere mich darum."]
    go_on.set()
    client.join(60)
    assert errors == []
    page.poll()
    assert page.shown == ["Ich kümmere mich darum.", "Hier ist der Bescheid."]
    with app.app_context():
        stored = db.session.execute(select(Message.body_ciphertext, Message.created_at,
                                           Message.seq).where(Message.thread_id == thread_id)
                                    .order_by(Message.seq)).all()
        assert [seq for _body, _at, seq in stored] == [1, 2, 3]
        assert stored[2].created_at < stored[1].created_at  # begun first, committed last
        view = messages.thread_for_staff(member=member(team["first"]), thread_id=thread_id)
        assert [m.body for m in view.messages][1:] == page.shown  # a reload: the same order
        assert db.session.get(MessageThread, thread_id).last_seq == 3


def test_two_people_writing_at_once_are_numbered_in_the_order_they_commit(
        app, team, conversation, monkeypatch):
    """The client's message has its number but is not committed yet (its file is still
    being written) when a caseworker answers: the answer waits for the client's commit and
    takes the number after it, so a page that asked in between and asks again misses
    neither."""
    person, thread_id, page = conversation
    numbered, go_on, errors = threading.Event(), threading.Event(), []
    attach = messages._attach

    def attach_slowly(message, files, client):
        attach(message, files, client)
        if threading.current_thread().name == "client":
            numbered.set()
            assert go_on.wait(30)

    monkeypatch.setattr(messages, "_attach", attach_slowly)
    client = writing_in_the_background(app, "client", lambda: messages.reply(
        account=account_of(person), thread_id=thread_id, body="Hier ist der Bescheid.",
        attachments=[("bescheid.pdf", PDF)]), errors)
    assert numbered.wait(30)
    caseworker = writing_in_the_background(app, "caseworker", lambda: messages.reply_as_staff(
        member=member(team["first"]), thread_id=thread_id, body="Ich kümmere mich darum."),
        errors)
    wait_until_waiting_for_a_lock(app, caseworker)
    page.poll()
    assert page.shown == []  # nothing committed yet
    assert caseworker.is_alive()  # the answer waits for the client's commit
    go_on.set()
    client.join(60)
    caseworker.join(60)
    assert errors == []
    page.poll()
    assert page.shown == ["Hier ist der Bescheid.", "Ich kümmere mich darum."]
    page.poll()
    assert page.shown == ["Hier ist der Bescheid.", "Ich kümmere mich darum."]
