"""What the message pages need beside ``shared/services/messages.py``: who wrote each
message, in the reader's words, and the emails that tell of a new message.

The emails say only that there is a message and link to it: never its text, its topic, a
file's name or whom it is about (issue 17). Each goes out in the recipient's language.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from shared import mail
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.clients import Client
from shared.models.messages import Message
from shared.models.staff import StaffMember
from shared.services import household, messages


def _account_names(account_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """The name of each account's own client (a parent's, a young person's), in one
    statement; accounts without a name are left out."""
    ids = sorted({i for i in account_ids if i is not None}, key=str)
    if not ids:
        return {}
    return {client.account_id: client.full_name
            for client in db.session.scalars(select(Client).where(Client.account_id.in_(ids)))
            if client.full_name}


def has_guardians(account: Account) -> bool:
    """Whether the account's own client has parents or guardians with an account (a young
    person, who may keep a conversation from them)."""
    own = household.own_client(account)
    return own is not None and bool(household.guardians_of(own))


def _staff_name(member: StaffMember | None) -> str:
    return (member.name if member is not None and member.name else "") or _("Our team")


def authors_for_client(view: messages.ThreadView, reader: Account) -> dict[uuid.UUID, str]:
    """Who wrote each message of a conversation, as the client (or guardian) reads it: a
    staff member's name, "You", or the name of the other person who wrote (the parent, or
    the young person)."""
    names = _account_names(m.author_account_id for m in view.messages
                           if m.author_account_id != reader.id)
    authors = {}
    for m in view.messages:
        if m.from_staff:
            authors[m.id] = _staff_name(m.author_staff)
        elif m.author_account_id == reader.id:
            authors[m.id] = _("You")
        else:
            authors[m.id] = names.get(m.author_account_id) or (
                (view.client.full_name or _("your child")) if view.as_guardian
                else _("your parent or guardian"))
    return authors


def authors_for_staff(view: messages.ThreadView, reader: StaffMember) -> dict[uuid.UUID, str]:
    """Who wrote each message, as staff read it: "You", a colleague's name, the client's
    name, or a guardian's name marked as such."""
    own_account = view.client.account_id
    names = _account_names(m.author_account_id for m in view.messages)
    client_name = contact_name(view.client)
    authors = {}
    for m in view.messages:
        if m.from_staff:
            authors[m.id] = _("You") if m.author_staff_id == reader.id else _staff_name(
                m.author_staff)
        elif m.author_account_id is not None and m.author_account_id == own_account:
            authors[m.id] = client_name
        else:
            authors[m.id] = _("%(name)s (parent or guardian)",
                              name=names.get(m.author_account_id) or _("name not given"))
    return authors


def contact_name(client: Client | None) -> str:
    """The client's name as staff read it in the messages: an anonymous contact's
    pseudonym, marked as such (never a file's name: it has none)."""
    if client is None:
        return _("(no name given)")
    if client.anonymous:
        pseudonym = client.account.pseudonym if client.account is not None else None
        return _("%(pseudonym)s (anonymous contact)", pseudonym=pseudonym or _("name deleted"))
    return client.full_name or _("the client")


def tell_of_new_message(message: Message) -> int:
    """Email everyone who should hear of ``message`` (``recipients_for_new_message``):
    clients and guardians that they have a new message, staff who chose instant emails
    that a client wrote. A link, never the content. Returns how many were sent."""
    recipients = messages.recipients_for_new_message(message)
    for account in recipients:
        if account.is_staff:
            mail.send(to=account.email, subject=_l("A new message from a client"),
                      template="message_new_staff", locale=account.locale,
                      thread_id=message.thread_id)
        else:
            mail.send(to=account.email, subject=_l("You have a new message"),
                      template="message_new", locale=account.locale,
                      thread_id=message.thread_id)
    return len(recipients)


def first_message(thread_id: uuid.UUID) -> Message | None:
    """The message that started a conversation (to tell of a new one)."""
    return db.session.scalar(select(Message).where(Message.thread_id == thread_id)
                             .order_by(Message.seq).limit(1))
