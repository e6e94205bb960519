"""Secure messages: conversations between a client (or a guardian for a child) and the team
of a service.

Client side: the signed-in account writes for its own client or for a dependant it may
fully see (``household.client_for(need=ACCESS_FULL)``); a guardian never sees a
conversation or a message kept confidential from guardians, as with notes. Staff side:
caseworkers (``policy.ANSWER_MESSAGES``) of the thread's service see it in their inbox, one
takes it, others may join; everyone who took, joined or works for the service may read and
answer. Every staff read of a conversation is a visit in the client's access log
(category "messages"), as every read of the case file is.

Bodies, topics, file names and files are encrypted under the client's data key. Nothing of
a message goes into an email: ``recipients_for_new_message`` names whom to tell that there
is one (the pages send it), ``digest_due`` whom to send the daily digest.

Messages are no documentation duty: they go when the client deletes the account (the
catalogue declares them ERASE), and ``purge_expired`` (run by ``flask retention purge``)
deletes a conversation ``message_retention_years`` after its last message.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import filetype
from sqlalchemy import and_, delete, exists, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from shared import audit, catalogue, paging, policy
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.base import utcnow
from shared.models.bookings import Service, StaffService
from shared.models.clients import Client
from shared.models.household import ACCESS_FULL, Guardianship
from shared.models.messages import Message, MessageAttachment, MessageThread, ThreadStaff
from shared.models.staff import NOTIFY_DIGEST, NOTIFY_INSTANT, StaffMember
from shared.services import household
from shared.services.casefile import ALLOWED_TYPES, MAX_DOCUMENT_BYTES, document_name

MAX_TOPIC_CHARS = 200
MAX_BODY_CHARS = 20_000
MAX_ATTACHMENTS = 5  # files per message
PER_PAGE = paging.PER_PAGE
# The staff inbox counts conversations up to this many, as the booking queue counts its
# requests (``bookings.QUEUE_COUNTED``), past the page's start: a count reads every one of
# them; beyond it the page says "more than" and still leads on.
INBOX_COUNTED = 1000
DIGEST_EVERY = timedelta(hours=23)  # a daily digest, whenever in the day the job runs


# -- errors ----------------------------------------------------------------------------------
class MessagesError(Exception):
    pass


class NotAllowed(MessagesError):
    """Not this person's conversation, or not this staff member's (404 to the outside)."""


class ThreadNotFound(NotAllowed):
    """No such conversation (or attachment) that this person may see."""


class EmptyMessage(MessagesError):
    """A message (or a new conversation's topic) without text."""

    def __init__(self, what: str = "body") -> None:
        super().__init__(what)
        self.what = what  # "body" | "topic"


class AttachmentRejected(MessagesError):
    """A file the document checks refuse."""

    def __init__(self, reason: str, filename: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # "empty" | "too-large" | "type" | "too-many"
        self.filename = filename


class AlreadyTaken(MessagesError):
    """Someone else took the conversation first."""

    def __init__(self, holder: StaffMember | None = None) -> None:
        super().__init__("taken")
        self.holder = holder


class ServiceUnavailable(MessagesError):
    """No such service, or one no longer offered."""


# -- configuration ---------------------------------------------------------------------------
def retention_years() -> int:
    """Whole calendar years a conversation is kept after its last message (default 2)."""
    return catalogue.message_retention_years()


# -- attachments -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    """A file as a form sent it."""

    filename: str | None
    data: bytes


def _checked(attachments: Iterable) -> list[tuple[str, str, bytes]]:
    """(name, type, content) of each file, checked as documents are: by content, never by
    the name; 20 MB at most; only the document types. Raises before anything is stored."""
    files = [item if isinstance(item, Upload) else Upload(*item) for item in attachments]
    files = [f for f in files if f.filename or f.data]  # an empty file field sends nothing
    if len(files) > MAX_ATTACHMENTS:
        raise AttachmentRejected("too-many")
    checked = []
    for upload in files:
        data = upload.data or b""
        if not data:
            raise AttachmentRejected("empty", upload.filename)
        if len(data) > MAX_DOCUMENT_BYTES:
            raise AttachmentRejected("too-large", upload.filename)
        kind = filetype.guess(data)
        if kind is None or kind.mime not in ALLOWED_TYPES:
            raise AttachmentRejected("type", upload.filename)
        checked.append((document_name(upload.filename, kind.mime), kind.mime, data))
    return checked


def _attach(message: Message, files: list[tuple[str, str, bytes]], client: Client) -> None:
    for name, mime, data in files:
        attachment = MessageAttachment(message_id=message.id, client_id=client.id,
                                       data_key=client.data_key, content_type=mime,
                                       size=len(data),
                                       confidential_from_guardians=(
                                           message.confidential_from_guardians))
        attachment.filename = name
        attachment.content = data
        db.session.add(attachment)


def _text(value: str | None, limit: int) -> str:
    return (value or "").strip()[:limit]


def _next_seq(thread: MessageThread, now: datetime) -> int:
    """The next number of the conversation (and its last message's time), in one UPDATE
    of its row. The row stays locked until this transaction ends: another writer of the
    conversation waits at the same UPDATE and takes the number after ours only once ours
    is committed (PostgreSQL; SQLite lets one writer in at a time anyway). So the numbers
    follow the commits, and a page that asks for the messages after the last number it
    shows misses none that committed late."""
    seq = db.session.execute(
        update(MessageThread).where(MessageThread.id == thread.id)
        .values(last_seq=MessageThread.last_seq + 1, last_message_at=now)
        .returning(MessageThread.last_seq)
        .execution_options(synchronize_session=False)).scalar_one()
    set_committed_value(thread, "last_seq", seq)
    set_committed_value(thread, "last_message_at", now)
    return seq


def _new_message(thread: MessageThread, client: Client, *, body: str,
                 account: Account | None = None, member: StaffMember | None = None,
                 confidential: bool = False) -> Message:
    now = utcnow()
    message = Message(thread_id=thread.id, client_id=client.id, data_key=client.data_key,
                      author_account_id=account.id if account else None,
                      author_staff_id=member.id if member else None,
                      from_staff=member is not None, created_at=now,
                      seq=_next_seq(thread, now),
                      confidential_from_guardians=confidential
                      or thread.confidential_from_guardians)
    message.body = body
    db.session.add(message)
    return message


# -- what a client (or guardian) sees ------------------------------------------------------
@dataclass(frozen=True)
class _Scope:
    """The clients an account reads conversations of: its own (everything) and the
    dependants it fully sees (without what is kept from guardians)."""

    own: uuid.UUID | None
    dependants: tuple[uuid.UUID, ...]

    @property
    def empty(self) -> bool:
        return self.own is None and not self.dependants

    def as_guardian(self, client_id: uuid.UUID) -> bool:
        return client_id != self.own

    def threads(self):
        """The condition for the threads the account may see."""
        parts = []
        if self.own is not None:
            parts.append(MessageThread.client_id == self.own)
        if self.dependants:
            parts.append(and_(MessageThread.client_id.in_(self.dependants),
                              MessageThread.confidential_from_guardians.is_(False)))
        return or_(*parts) if parts else false()

    def messages(self):
        """The condition for the messages (of visible threads) the account may see."""
        if self.own is None:
            return Message.confidential_from_guardians.is_(False)
        return or_(Message.client_id == self.own,
                   Message.confidential_from_guardians.is_(False))


def _scope(account: Account) -> _Scope:
    own = household.own_client(account)
    dependants = tuple(client.id for client in
                       household.visible_dependants(account, need=ACCESS_FULL))
    own_id = own.id if own is not None else None
    return _Scope(own_id, tuple(d for d in dependants if d != own_id))


def writable_clients(account: Account) -> list[Client]:
    """Whom the account may write about: itself (unless its hand-over is pending) and the
    dependants it fully sees."""
    own = household.own_client(account)
    found = [own] if own is not None else []
    return found + [client for client in household.visible_dependants(account, need=ACCESS_FULL)
                    if own is None or client.id != own.id]


def services_to_write_to() -> list[Service]:
    """The services a conversation can be started with: those offered, with at least one
    staff member who answers messages."""
    answering = (select(StaffService.service_id)
                 .join(StaffMember, StaffMember.id == StaffService.staff_member_id)
                 .where(StaffMember.active.is_(True))
                 .where(StaffMember.role.in_(policy.roles_with(policy.ANSWER_MESSAGES))))
    return list(db.session.scalars(select(Service).where(Service.active.is_(True))
                                   .where(Service.id.in_(answering))
                                   .order_by(Service.name, Service.id)))


def _client_for(account: Account, client_id: uuid.UUID) -> Client:
    try:
        return household.client_for(account, client_id, need=ACCESS_FULL)
    except household.NotAllowed as error:  # HandoverPending too
        raise NotAllowed from error


def _service(service_id: uuid.UUID) -> Service:
    service = db.session.get(Service, service_id)
    if service is None or not service.active:
        raise ServiceUnavailable
    return service


def start_thread(*, account: Account, client_id: uuid.UUID, service_id: uuid.UUID,
                 topic: str, body: str, attachments: Sequence = (),
                 confidential_from_guardians: bool = False) -> MessageThread:
    """A new conversation with the team of ``service_id`` about ``client_id`` (the account's
    own client, or a dependant it fully sees). Only a person writing about themselves can
    keep the conversation from their guardians. Raises NotAllowed, ServiceUnavailable,
    EmptyMessage, AttachmentRejected."""
    client = _client_for(account, client_id)
    service = _service(service_id)
    topic, body = _text(topic, MAX_TOPIC_CHARS), _text(body, MAX_BODY_CHARS)
    if not topic:
        raise EmptyMessage("topic")
    if not body:
        raise EmptyMessage("body")
    files = _checked(attachments)
    own = household.own_client(account)
    confidential = bool(confidential_from_guardians) and own is not None and own.id == client.id
    now = utcnow()
    thread = MessageThread(client_id=client.id, data_key=client.data_key, service=service,
                           started_by_account_id=account.id,
                           confidential_from_guardians=confidential, created_at=now,
                           last_message_at=now)
    thread.topic = topic
    db.session.add(thread)
    db.session.flush()
    message = _new_message(thread, client, body=body, account=account)
    db.session.flush()
    _attach(message, files, client)
    db.session.commit()
    return thread


def _client_thread(account: Account, thread_id: uuid.UUID) -> tuple[MessageThread, _Scope]:
    scope = _scope(account)
    thread = db.session.scalar(select(MessageThread).where(MessageThread.id == thread_id)
                               .where(scope.threads()))
    if thread is None:
        raise ThreadNotFound
    return thread, scope


def reply(*, account: Account, thread_id: uuid.UUID, body: str,
          attachments: Sequence = ()) -> Message:
    """The client's (or guardian's) answer in a conversation they may see."""
    thread, _scope_ = _client_thread(account, thread_id)
    body = _text(body, MAX_BODY_CHARS)
    if not body:
        raise EmptyMessage("body")
    files = _checked(attachments)
    client = db.session.get(Client, thread.client_id)
    message = _new_message(thread, client, body=body, account=account)
    db.session.flush()
    _attach(message, files, client)
    db.session.commit()
    return message


@dataclass
class ThreadSummary:
    """A line of a list of conversations."""

    thread: MessageThread
    unread: int  # messages from the other side not yet read
    client: Client | None = None
    as_guardian: bool = False  # the client's guardian reads (client side only)
    joined: list[StaffMember] = field(default_factory=list)  # staff side only

    @property
    def assigned_staff(self) -> StaffMember | None:
        return self.thread.assigned_staff


def _page(stmt, page: int, *, beyond: int | None = None) -> tuple[list[uuid.UUID],
                                                                  paging.Page]:
    """The ids on ``page`` and the page's numbers (no rows yet); ``beyond``: see
    paging.locate."""
    numbers, offset = paging.locate(stmt, page, per_page=PER_PAGE, beyond=beyond)
    ids = list(db.session.scalars(stmt.with_only_columns(MessageThread.id)
                                  .offset(offset).limit(PER_PAGE))) if numbers.total else []
    return ids, numbers


def _newest_first(stmt):
    return stmt.order_by(MessageThread.last_message_at.desc(), MessageThread.id.desc())


def _threads(ids: list[uuid.UUID]) -> dict[uuid.UUID, MessageThread]:
    return {thread.id: thread for thread in db.session.scalars(
        select(MessageThread).where(MessageThread.id.in_(ids)))} if ids else {}


def _clients(client_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Client]:
    client_ids = sorted(set(client_ids), key=str)
    return {client.id: client for client in db.session.scalars(
        select(Client).where(Client.id.in_(client_ids)))} if client_ids else {}


def _with_pseudonyms(clients: Iterable[Client]) -> None:
    """Load the accounts of the anonymous contacts among ``clients`` (staff know them by
    their account's pseudonym) in one statement, and set each as its client's ``account``:
    a list shows them without a statement per row."""
    anonymous = [client for client in clients
                 if client.anonymous and client.account_id is not None]
    if not anonymous:
        return
    accounts = {account.id: account for account in db.session.scalars(
        select(Account).where(Account.id.in_(sorted({client.account_id for client in anonymous},
                                                     key=str))))}
    for client in anonymous:
        set_committed_value(client, "account", accounts.get(client.account_id))


def threads_for(*, account: Account, page: int = 1) -> paging.Page:
    """The conversations the account may see (its own, its fully seen dependants' without
    what is kept from guardians), newest activity first, each with how many of the team's
    messages are unread: the same statements for every page."""
    scope = _scope(account)
    if scope.empty:
        return paging.Page([], 1, 1, 0)
    stmt = _newest_first(select(MessageThread).where(scope.threads()))
    ids, numbers = _page(stmt, page)
    threads = _threads(ids)
    unread = dict(db.session.execute(
        select(Message.thread_id, func.count()).where(Message.thread_id.in_(ids))
        .where(Message.from_staff.is_(True)).where(Message.read_by_client_at.is_(None))
        .where(scope.messages()).group_by(Message.thread_id)).all()) if ids else {}
    clients = _clients(thread.client_id for thread in threads.values())
    rows = [ThreadSummary(threads[i], unread.get(i, 0), clients.get(threads[i].client_id),
                          scope.as_guardian(threads[i].client_id))
            for i in ids if i in threads]
    return replace(numbers, rows=rows, clients=clients)


def unread_count(*, account: Account) -> int:
    """How many of the team's messages the account has not read yet (its home page's
    badge): one statement."""
    if account.handover_pending:
        return 0
    own = select(Client.id).where(Client.account_id == account.id)
    dependants = (select(Guardianship.dependant_id)
                  .where(Guardianship.guardian_account_id == account.id)
                  .where(Guardianship.access == ACCESS_FULL))
    return db.session.scalar(
        select(func.count()).select_from(Message)
        .join(MessageThread, MessageThread.id == Message.thread_id)
        .where(Message.from_staff.is_(True)).where(Message.read_by_client_at.is_(None))
        .where(or_(Message.client_id.in_(own),
                   and_(Message.client_id.in_(dependants), ~Message.client_id.in_(own),
                        MessageThread.confidential_from_guardians.is_(False),
                        Message.confidential_from_guardians.is_(False))))) or 0


@dataclass
class ThreadView:
    """A conversation as one reads it: its messages oldest first, each with its files."""

    thread: MessageThread
    client: Client
    messages: list[Message]
    attachments: dict[uuid.UUID, list[MessageAttachment]]  # by message id
    as_guardian: bool = False
    joined: list[StaffMember] = field(default_factory=list)

    @property
    def assigned_staff(self) -> StaffMember | None:
        return self.thread.assigned_staff

    def files_of(self, message: Message) -> list[MessageAttachment]:
        return self.attachments.get(message.id, [])


def _messages(thread: MessageThread, condition=None) -> tuple[list[Message], dict]:
    stmt = select(Message).where(Message.thread_id == thread.id)
    if condition is not None:
        stmt = stmt.where(condition)
    messages = list(db.session.scalars(stmt.order_by(Message.seq)))
    files: dict[uuid.UUID, list[MessageAttachment]] = {}
    ids = [message.id for message in messages]
    if ids:
        for attachment in db.session.scalars(
                select(MessageAttachment).where(MessageAttachment.message_id.in_(ids))
                .order_by(MessageAttachment.created_at, MessageAttachment.id)):
            files.setdefault(attachment.message_id, []).append(attachment)
    return messages, files


def _joined(thread_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[StaffMember]]:
    joined: dict[uuid.UUID, list[StaffMember]] = {}
    if thread_ids:
        for row in db.session.scalars(select(ThreadStaff)
                                      .where(ThreadStaff.thread_id.in_(thread_ids))
                                      .order_by(ThreadStaff.joined_at)):
            joined.setdefault(row.thread_id, []).append(row.staff_member)
    return joined


def thread_for_client(*, account: Account, thread_id: uuid.UUID) -> ThreadView:
    """The conversation for the client (or guardian); the team's messages shown are marked
    read by the client."""
    thread, scope = _client_thread(account, thread_id)
    db.session.execute(update(Message).where(Message.thread_id == thread.id)
                       .where(Message.from_staff.is_(True))
                       .where(Message.read_by_client_at.is_(None)).where(scope.messages())
                       .values(read_by_client_at=utcnow())
                       .execution_options(synchronize_session=False))
    db.session.commit()  # first: what is read below is not expired by it
    return _view(thread_id, scope.messages(), as_guardian=scope.as_guardian(thread.client_id))


def _later_than(thread: MessageThread, after_id: uuid.UUID, condition=None):
    """The condition for the messages of ``thread`` after the message ``after_id`` in the
    order the page shows them, which is the order they were committed (``Message.seq``):
    one begun before the last shown but committed after it is still new. Raises
    ThreadNotFound when ``after_id`` is no message of the thread that this reader sees."""
    stmt = select(Message.seq).where(Message.id == after_id) \
        .where(Message.thread_id == thread.id)
    if condition is not None:
        stmt = stmt.where(condition)
    seq = db.session.scalar(stmt)
    if seq is None:
        raise ThreadNotFound
    return Message.seq > seq


def _new_ids(thread: MessageThread, later, condition=None) -> list[uuid.UUID]:
    stmt = select(Message.id).where(Message.thread_id == thread.id).where(later)
    if condition is not None:
        stmt = stmt.where(condition)
    return list(db.session.scalars(stmt))


def new_for_client(*, account: Account, thread_id: uuid.UUID,
                   after_id: uuid.UUID) -> ThreadView | None:
    """The messages of a conversation after ``after_id`` that the client (or guardian) may
    see, for the open page to show without a reload (shared/static/js/messages.js); the
    team's are marked read as opening the page marks them. None when there is none."""
    thread, scope = _client_thread(account, thread_id)
    later = _later_than(thread, after_id, scope.messages())
    ids = _new_ids(thread, later, scope.messages())
    if not ids:
        return None
    db.session.execute(update(Message).where(Message.id.in_(ids))
                       .where(Message.from_staff.is_(True))
                       .where(Message.read_by_client_at.is_(None))
                       .values(read_by_client_at=utcnow())
                       .execution_options(synchronize_session=False))
    db.session.commit()
    return _view(thread_id, Message.id.in_(ids), as_guardian=scope.as_guardian(thread.client_id))


def _view(thread_id: uuid.UUID, condition=None, *, as_guardian: bool = False) -> ThreadView:
    """The conversation read after the transaction that logged and marked it: the same
    statements however many messages and files it has."""
    thread = db.session.get(MessageThread, thread_id)
    messages, files = _messages(thread, condition)
    client = db.session.get(Client, thread.client_id)
    return ThreadView(thread, client, messages, files, as_guardian,
                      _joined([thread.id]).get(thread.id, []))


def attachment_for_client(*, account: Account, attachment_id: uuid.UUID) -> MessageAttachment:
    """A file of a message the account may see (its content is read when used)."""
    scope = _scope(account)
    attachment = db.session.scalar(
        select(MessageAttachment)
        .join(Message, Message.id == MessageAttachment.message_id)
        .join(MessageThread, MessageThread.id == Message.thread_id)
        .where(MessageAttachment.id == attachment_id)
        .where(scope.threads()).where(scope.messages()))
    if attachment is None:
        raise ThreadNotFound
    return attachment


# -- the staff side ------------------------------------------------------------------------
def may_answer(member: StaffMember | None) -> bool:
    """Whether this staff member reads and answers clients' messages at all."""
    return (member is not None and member.active
            and policy.may(member.role, policy.ANSWER_MESSAGES))


def _visible_to(member: StaffMember):
    """The condition for the threads a staff member may read: those of the services they
    work for now. Having taken or joined a conversation gives nothing once they no longer
    work for its service (security review: they kept reading, answering and hearing)."""
    return MessageThread.service_id.in_(select(StaffService.service_id)
                                        .where(StaffService.staff_member_id == member.id))


def _mine(member: StaffMember):
    return or_(MessageThread.assigned_staff_id == member.id,
               exists().where(ThreadStaff.thread_id == MessageThread.id)
               .where(ThreadStaff.staff_member_id == member.id))


def _staff_thread(member: StaffMember, thread_id: uuid.UUID) -> MessageThread:
    if not may_answer(member):
        raise NotAllowed
    thread = db.session.scalar(select(MessageThread).where(MessageThread.id == thread_id)
                               .where(_visible_to(member)))
    if thread is None:
        raise ThreadNotFound
    return thread


def inbox(*, member: StaffMember, page: int = 1, mine: bool = False,
          unassigned: bool = False) -> paging.Page:
    """The conversations this staff member may read, newest activity first, each with its
    client, who took it, who joined and how many of the client's messages no one on staff
    has read yet. ``mine``: only those taken or joined; ``unassigned``: only those nobody
    took. The clients shown (their names and topics) are visits in their access logs. The
    same statements for every page, anonymous contacts or not; counted no further than
    ``INBOX_COUNTED`` past the page (``more``: "more than")."""
    if not may_answer(member):
        raise NotAllowed
    stmt = select(MessageThread).where(_mine(member) if mine else _visible_to(member))
    if unassigned:
        stmt = stmt.where(MessageThread.assigned_staff_id.is_(None))
    ids, numbers = _page(_newest_first(stmt), page, beyond=INBOX_COUNTED)
    if not ids:
        return numbers
    shown = db.session.execute(select(MessageThread.id, MessageThread.client_id)
                               .where(MessageThread.id.in_(ids))).all()
    audit.set_purpose(audit.MESSAGE_WORK)
    for client_id in sorted({client_id for _id, client_id in shown}, key=str):
        audit.record_access(client_id=client_id, staff_member=member,
                            category=audit.CONTACT)
        audit.record_access(client_id=client_id, staff_member=member,
                            category=audit.MESSAGES)
    db.session.commit()  # the visits; everything below is read after it
    threads = _threads(ids)
    unread = dict(db.session.execute(
        select(Message.thread_id, func.count()).where(Message.thread_id.in_(ids))
        .where(Message.from_staff.is_(False)).where(Message.read_by_staff_at.is_(None))
        .group_by(Message.thread_id)).all())
    joined = _joined(ids)
    clients = _clients(thread.client_id for thread in threads.values())
    _with_pseudonyms(clients.values())
    rows = [ThreadSummary(threads[i], unread.get(i, 0), clients.get(threads[i].client_id),
                          joined=joined.get(i, []))
            for i in ids if i in threads]
    return replace(numbers, rows=rows, clients=clients)


def unread_for_staff(*, member: StaffMember) -> int:
    """Clients' messages no one on staff has read yet in the conversations this member took
    or joined, or that nobody took in their services (the staff home page's badge)."""
    if not may_answer(member):
        return 0
    return db.session.scalar(
        select(func.count()).select_from(Message)
        .join(MessageThread, MessageThread.id == Message.thread_id)
        .where(Message.from_staff.is_(False)).where(Message.read_by_staff_at.is_(None))
        .where(or_(_mine(member), and_(MessageThread.assigned_staff_id.is_(None),
                                       _visible_to(member))))) or 0


def take(*, member: StaffMember, thread_id: uuid.UUID) -> MessageThread:
    """The member takes the conversation; refused (AlreadyTaken) when someone else holds
    it (a holder whose staff account was deactivated holds nothing). Taking one's own again
    changes nothing."""
    thread = _staff_thread(member, thread_id)
    # A holder whose account was deactivated, or who no longer works for the service.
    gone = select(StaffMember.id).where(or_(
        StaffMember.active.is_(False),
        StaffMember.id.not_in(select(StaffService.staff_member_id)
                              .where(StaffService.service_id == thread.service_id))))
    taken = db.session.execute(
        update(MessageThread).where(MessageThread.id == thread.id)
        .where(or_(MessageThread.assigned_staff_id.is_(None),
                   MessageThread.assigned_staff_id == member.id,
                   MessageThread.assigned_staff_id.in_(gone)))
        .values(assigned_staff_id=member.id,
                assigned_at=func.coalesce(MessageThread.assigned_at, utcnow()))
        .execution_options(synchronize_session=False)).rowcount
    if not taken:
        db.session.rollback()
        thread = db.session.get(MessageThread, thread_id)
        raise AlreadyTaken(thread.assigned_staff if thread is not None else None)
    db.session.execute(delete(ThreadStaff).where(ThreadStaff.thread_id == thread.id)
                       .where(ThreadStaff.staff_member_id == member.id))
    db.session.commit()
    db.session.refresh(thread)
    return thread


def release(*, member: StaffMember, thread_id: uuid.UUID) -> MessageThread:
    """The holder gives the conversation back to the team (nobody holds it then)."""
    thread = _staff_thread(member, thread_id)
    if thread.assigned_staff_id != member.id:
        raise NotAllowed
    thread.assigned_staff_id = None
    thread.assigned_at = None
    db.session.commit()
    return thread


def join(*, member: StaffMember, thread_id: uuid.UUID) -> MessageThread:
    """The member joins a conversation (of their service) that someone else took, or nobody:
    they read and answer it beside the holder. Joining again changes nothing."""
    thread = _staff_thread(member, thread_id)
    if thread.assigned_staff_id == member.id:
        return thread
    _join(thread, member)
    db.session.commit()
    return thread


def _join(thread: MessageThread, member: StaffMember) -> None:
    already = db.session.scalar(select(ThreadStaff.thread_id)
                                .where(ThreadStaff.thread_id == thread.id)
                                .where(ThreadStaff.staff_member_id == member.id))
    if already is not None:
        return
    try:
        with db.session.begin_nested():
            db.session.add(ThreadStaff(thread_id=thread.id, staff_member_id=member.id,
                                       client_id=thread.client_id))
    except IntegrityError:  # joined in another tab at the same moment
        pass


def thread_for_staff(*, member: StaffMember, thread_id: uuid.UUID) -> ThreadView:
    """The conversation for staff: a visit in the client's access log; the client's messages
    are marked read by staff."""
    thread = _staff_thread(member, thread_id)
    audit.set_purpose(audit.MESSAGE_WORK)
    audit.record_access(client_id=thread.client_id, staff_member=member,
                        category=audit.MESSAGES)
    db.session.execute(update(Message).where(Message.thread_id == thread.id)
                       .where(Message.from_staff.is_(False))
                       .where(Message.read_by_staff_at.is_(None))
                       .values(read_by_staff_at=utcnow())
                       .execution_options(synchronize_session=False))
    db.session.commit()  # the visit and the marks; what is read below is not expired by it
    return _view(thread_id)


def new_for_staff(*, member: StaffMember, thread_id: uuid.UUID,
                  after_id: uuid.UUID) -> ThreadView | None:
    """The messages of a conversation after ``after_id``, for the open page to show without
    a reload (shared/static/js/messages.js). Showing any is a read of the client's
    conversation, so it is a visit in the client's access log as opening the page is, and
    the client's messages are marked read by staff; asking when there is nothing new reads
    nothing of the client's and logs nothing. None when there is none."""
    thread = _staff_thread(member, thread_id)
    later = _later_than(thread, after_id)
    ids = _new_ids(thread, later)
    if not ids:
        return None
    audit.set_purpose(audit.MESSAGE_WORK)
    audit.record_access(client_id=thread.client_id, staff_member=member,
                        category=audit.MESSAGES)
    db.session.execute(update(Message).where(Message.id.in_(ids))
                       .where(Message.from_staff.is_(False))
                       .where(Message.read_by_staff_at.is_(None))
                       .values(read_by_staff_at=utcnow())
                       .execution_options(synchronize_session=False))
    db.session.commit()
    return _view(thread_id, Message.id.in_(ids))


def _take_if_nobody_holds(thread: MessageThread, member: StaffMember) -> None:
    """Take the conversation only if nobody holds it still: one conditional UPDATE, then
    the holder read again. Of two staff answering at once (or a colleague taking it
    between our read and this write) the first one holds it, on SQLite and PostgreSQL,
    and the other joins instead of overwriting the colleague's take."""
    db.session.execute(
        update(MessageThread).where(MessageThread.id == thread.id)
        .where(MessageThread.assigned_staff_id.is_(None))
        .values(assigned_staff_id=member.id, assigned_at=utcnow())
        .execution_options(synchronize_session=False))
    db.session.refresh(thread, ["assigned_staff_id", "assigned_at", "assigned_staff"])


def reply_as_staff(*, member: StaffMember, thread_id: uuid.UUID, body: str,
                   confidential_from_guardians: bool = False,
                   attachments: Sequence = ()) -> Message:
    """Staff answer. Answering a conversation nobody took takes it; answering one someone
    else took joins it. A message kept confidential from guardians is shown to the young
    person's own account only."""
    thread = _staff_thread(member, thread_id)
    body = _text(body, MAX_BODY_CHARS)
    if not body:
        raise EmptyMessage("body")
    files = _checked(attachments)
    if thread.assigned_staff_id is None:
        _take_if_nobody_holds(thread, member)
    if thread.assigned_staff_id != member.id:
        _join(thread, member)
    client = db.session.get(Client, thread.client_id)
    message = _new_message(thread, client, body=body, member=member,
                           confidential=confidential_from_guardians)
    db.session.flush()
    _attach(message, files, client)
    audit.set_purpose(audit.MESSAGE_WORK)
    audit.record_access(client_id=client.id, staff_member=member, category=audit.MESSAGES,
                        action=audit.CHANGE)
    db.session.commit()
    return message


def attachment_for_staff(*, member: StaffMember, attachment_id: uuid.UUID) -> MessageAttachment:
    """A file of a conversation the member may read: a download in the client's access
    log."""
    attachment = db.session.get(MessageAttachment, attachment_id)
    if attachment is None:
        raise ThreadNotFound
    message = db.session.get(Message, attachment.message_id)
    _staff_thread(member, message.thread_id)
    audit.set_purpose(audit.MESSAGE_WORK)
    audit.record_access(client_id=attachment.client_id, staff_member=member,
                        category=audit.MESSAGES, action=audit.DOWNLOAD)
    db.session.commit()
    return attachment


def download_name(attachment: MessageAttachment) -> str:
    """The name to offer an attachment under (cleaned as a document's)."""
    return document_name(attachment.filename, attachment.content_type)


def set_notifications(*, member: StaffMember, choice: str) -> None:
    """Instant emails or a daily digest for new messages."""
    if choice not in (NOTIFY_INSTANT, NOTIFY_DIGEST):
        raise ValueError(choice)
    member.message_notifications = choice
    db.session.commit()


# -- whom to tell ----------------------------------------------------------------------------
def _answering_staff(thread: MessageThread) -> list[StaffMember]:
    """Who on staff hears of a client's message: the holder and who joined; while nobody
    (still working here) took the conversation, every caseworker of its service."""
    team = list(db.session.scalars(
        select(StaffMember).join(StaffService, StaffService.staff_member_id == StaffMember.id)
        .where(StaffService.service_id == thread.service_id)
        .order_by(StaffMember.created_at, StaffMember.id)))
    here = {person.id for person in team}  # who left the service hears nothing more
    joined = [row.staff_member for row in db.session.scalars(
        select(ThreadStaff).where(ThreadStaff.thread_id == thread.id))]
    found = _answering(person for person in [thread.assigned_staff, *joined]
                       if person is not None and person.id in here)
    holder = thread.assigned_staff
    if holder is None or holder.id not in here or not may_answer(holder):
        found = _answering([*team, *found])
    return found


def _answering(people: Iterable[StaffMember | None]) -> list[StaffMember]:
    seen, found = set(), []
    for person in people:
        if person is not None and person.id not in seen and may_answer(person):
            seen.add(person.id)
            found.append(person)
    return found


def recipients_for_new_message(message: Message, *, digest: bool = False) -> list[Account]:
    """The accounts to email that there is a new message (never what it says), the author
    left out. A staff message: the client's own account (unless its hand-over is pending)
    and the guardians who fully see the child, unless the message is kept from them. A
    client's message: the staff who answer the conversation and chose instant emails
    (``digest=True``: those who chose the daily digest instead)."""
    thread = db.session.get(MessageThread, message.thread_id)
    if message.from_staff:
        client = db.session.get(Client, message.client_id)
        accounts = []
        own = household.own_account(client) if client is not None else None
        if own is not None:
            accounts.append(own)
        if not message.confidential_from_guardians:
            accounts += [link.guardian for link in db.session.scalars(
                select(Guardianship).where(Guardianship.dependant_id == message.client_id)
                .where(Guardianship.access == ACCESS_FULL))
                if not link.guardian.handover_pending]
    else:
        accounts = [person.account for person in _answering_staff(thread)
                    if (person.message_notifications == NOTIFY_DIGEST) == digest]
    seen, found = set(), []
    for account in accounts:
        if account.id in seen or account.id == message.author_account_id:
            continue
        if message.author_staff_id is not None and getattr(
                account.staff_member, "id", None) == message.author_staff_id:
            continue
        seen.add(account.id)
        found.append(account)
    return found


def digest_due(*, now: datetime | None = None) -> list[tuple[StaffMember, int]]:
    """Staff who chose the daily digest, had none for a day, and have clients' messages no
    one on staff has read in conversations they answer: each with how many."""
    now = now or utcnow()
    due = []
    for member in db.session.scalars(
            select(StaffMember).where(StaffMember.active.is_(True))
            .where(StaffMember.message_notifications == NOTIFY_DIGEST)
            .where(or_(StaffMember.message_digest_sent_at.is_(None),
                       StaffMember.message_digest_sent_at <= now - DIGEST_EVERY))
            .order_by(StaffMember.id)):
        count = unread_for_staff(member=member)
        if count:
            due.append((member, count))
    return due


def mark_digest_sent(member: StaffMember, *, at: datetime | None = None) -> None:
    member.message_digest_sent_at = at or utcnow()
    db.session.commit()


def send_digests(*, now: datetime | None = None) -> int:
    """Email each staff member whose digest is due how many clients' messages wait unread
    (a count and a link, nothing of anyone's); returns how many were sent."""
    from flask_babel import lazy_gettext as _l

    from shared import mail

    now = now or utcnow()
    sent = 0
    for member, unread in digest_due(now=now):
        account = member.account
        if account is None or not account.email:
            continue
        mail.send(to=account.email, subject=_l("Unread messages from clients"),
                  template="message_digest", locale=account.locale, unread=unread)
        mark_digest_sent(member, at=now)
        sent += 1
    return sent


# -- transparency, retention -----------------------------------------------------------------
def attachments_for_export(client_id: uuid.UUID, *, as_guardian: bool):
    """The files of a client's conversations for the export, one at a time (each file's
    content is read, then let go)."""
    stmt = (select(MessageAttachment).join(Message, Message.id == MessageAttachment.message_id)
            .join(MessageThread, MessageThread.id == Message.thread_id)
            .where(MessageAttachment.client_id == client_id)
            .order_by(MessageAttachment.created_at, MessageAttachment.id))
    if as_guardian:
        stmt = stmt.where(MessageThread.confidential_from_guardians.is_(False)) \
            .where(MessageAttachment.confidential_from_guardians.is_(False))
    return list(db.session.scalars(stmt))


def deleted_on(row) -> datetime | None:
    """When the retention purge deletes a conversation ("my data" says so); None for any
    other row."""
    if not isinstance(row, MessageThread) or row.last_message_at is None:
        return None
    from shared.services.erasure import years_after

    return years_after(row.last_message_at, retention_years())


def purge_expired(*, now: datetime | None = None) -> int:
    """Delete every conversation whose last message is older than the retention; each
    client's access log says so. Returns how many conversations went."""
    from shared.services.erasure import years_after

    now = now or utcnow()
    cutoff = years_after(now, -retention_years())
    expired = db.session.execute(select(MessageThread.id, MessageThread.client_id)
                                 .where(MessageThread.last_message_at <= cutoff)).all()
    if not expired:
        return 0
    ids = [thread_id for thread_id, _client in expired]
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        messages = select(Message.id).where(Message.thread_id.in_(batch))
        db.session.execute(delete(MessageAttachment)
                           .where(MessageAttachment.message_id.in_(messages))
                           .execution_options(synchronize_session=False))
        db.session.execute(delete(Message).where(Message.thread_id.in_(batch))
                           .execution_options(synchronize_session=False))
        db.session.execute(delete(ThreadStaff).where(ThreadStaff.thread_id.in_(batch))
                           .execution_options(synchronize_session=False))
        db.session.execute(delete(MessageThread).where(MessageThread.id.in_(batch))
                           .execution_options(synchronize_session=False))
    for client_id in sorted({client_id for _id, client_id in expired}, key=str):
        audit.record_access(client_id=client_id, staff_member=None, category=audit.MESSAGES,
                            action=audit.PURGE)
    return len(ids)
