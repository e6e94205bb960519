"""Anonymous first contact (issue 17, item 4): someone writes to a team with only a
pseudonym and a password, the way anonymous online counselling works.

The person is a data subject like every client: a Client row (``anonymous_at`` set) with
a data key of its own, and an Account of kind "client" that signs in with the pseudonym
instead of an address. The pseudonym is stored encrypted under that key and found by its
blind index (``accounts.pseudonym_bidx``, unique), as an address is. The account has no
address: its email column holds an empty value under a random search key that no address
hashes to, so it is never found by an address, never collides with another account, and
``shared/mail.py`` sends nothing to it. Everything else (conversations, the access log,
"my data", the export, erasure) is the ordinary client's, keyed by the client.

An anonymous contact is never linked to a client file: staff see the pseudonym, the
client search does not find it, and no code here or elsewhere joins it to another client.
"""

from __future__ import annotations

import secrets
import unicodedata
import uuid
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from shared import mail, security_log
from shared.auth import passwords, sessions, tokens
from shared.extensions import db
from shared.models.accounts import CLIENT, Account, AccountToken
from shared.models.base import current_keyring, utcnow
from shared.models.clients import Client
from shared.models.keys import DataKey
from shared.models.messages import MessageThread
from shared.services import accounts, messages

MIN_PSEUDONYM = 3
MAX_PSEUDONYM = 40


class AnonymousError(Exception):
    """Base for errors the page turns into a message."""


class PseudonymInvalid(AnonymousError):
    """Too short, too long, or shaped like an email address (which would identify)."""


class PseudonymTaken(AnonymousError):
    """Someone already signs in with this pseudonym (compared without case or width)."""


class LinkInvalid(AnonymousError):
    """A link to confirm an address for notifications that is unknown (mistyped, made up),
    used, replaced by a newer one, too old, or for an account that is gone."""


@dataclass
class SignInResult:
    account: Account | None
    needs_second_factor: bool = False


def clean_pseudonym(value: str | None) -> str:
    """The pseudonym as it is kept: NFKC, inner spaces collapsed. Raises PseudonymInvalid."""
    text = " ".join(unicodedata.normalize("NFKC", value or "").split())
    if not MIN_PSEUDONYM <= len(text) <= MAX_PSEUDONYM or "@" in text:
        raise PseudonymInvalid
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise PseudonymInvalid
    return text


def _pseudonym_index(pseudonym: str) -> bytes:
    # The purpose is the one the model's setter uses (``accounts.pseudonym``).
    return current_keyring().blind_index("accounts.pseudonym", pseudonym)


def find_account(*, pseudonym: str) -> Account | None:
    return db.session.scalar(select(Account).where(Account.kind == CLIENT)
                             .where(Account.pseudonym_bidx == _pseudonym_index(pseudonym)))


def new_contact(*, pseudonym: str, locale: str, **account_fields) -> tuple[Account, Client]:
    """Add (flush, not commit) the anonymous contact's data key, account and client, for
    the first conversation to be written in the same transaction; ``account_fields`` are
    the way in (a password hash, or a passkey user handle). Raises PseudonymTaken when the
    same pseudonym was chosen at the same moment (the session is rolled back)."""
    data_key = DataKey.generate()
    account = Account(kind=CLIENT, data_key=data_key, locale=locale, **account_fields)
    account.email = ""
    # Not the index of "" (every anonymous account would share it): a random value no
    # address hashes to, so the account is found only by its pseudonym.
    account.email_bidx = secrets.token_bytes(32)
    account.pseudonym = pseudonym
    client = Client(data_key=data_key, account=account, anonymous_at=utcnow())
    db.session.add_all([data_key, account, client])
    try:
        db.session.flush()
    except IntegrityError:  # the same pseudonym chosen at the same moment
        db.session.rollback()
        raise PseudonymTaken from None
    return account, client


def start(*, pseudonym: str, password: str, service_id: uuid.UUID, topic: str, body: str,
          locale: str) -> MessageThread:
    """Create the anonymous contact (client, account, data key) and its first
    conversation with the team of ``service_id``, then sign the person in. Nothing is
    stored when anything is refused. Raises PseudonymInvalid, PseudonymTaken,
    accounts.WeakPassword, and what messages.start_thread raises (EmptyMessage,
    ServiceUnavailable, AttachmentRejected)."""
    pseudonym = clean_pseudonym(pseudonym)
    accounts.check_new_password(password, pseudonym=pseudonym)
    if find_account(pseudonym=pseudonym) is not None:
        raise PseudonymTaken
    account, client = new_contact(pseudonym=pseudonym, locale=locale,
                                  password_hash=passwords.hash_password(password),
                                  password_changed_at=utcnow())
    thread = first_conversation(account, client, service_id=service_id, topic=topic,
                                body=body)
    sessions.start(account, second_factor=False)
    return thread


def first_conversation(account: Account, client: Client, *, service_id: uuid.UUID,
                       topic: str, body: str) -> MessageThread:
    """The new contact's first conversation, committed with the contact's rows; a refused
    message stores nothing of either (rolled back). Raises what messages.start_thread
    raises."""
    try:
        return messages.start_thread(account=account, client_id=client.id,
                                     service_id=service_id, topic=topic, body=body)
    except messages.MessagesError:
        db.session.rollback()
        raise


def authenticate(*, pseudonym: str, password: str) -> SignInResult:
    """Check pseudonym and password; says whether a second step must follow. The same
    answer (no account) for an unknown pseudonym and a wrong password, after the same
    work."""
    try:
        account = find_account(pseudonym=clean_pseudonym(pseudonym))
    except PseudonymInvalid:
        account = None
    if account is None:
        passwords.verify_password(None, password)
        security_log.record("login.password", outcome=security_log.FAILED,
                            account_kind=CLIENT)
        return SignInResult(None)
    check = passwords.check_password(account.password_hash, password)
    if not check.ok:
        security_log.record("login.password", outcome=security_log.FAILED, account=account)
        return SignInResult(None)
    security_log.record("login.password", outcome=security_log.OK, account=account)
    if check.rehash:
        account.password_hash = passwords.hash_password(password)
        db.session.commit()
    return SignInResult(account, needs_second_factor=account.has_second_factor)


def is_anonymous(account: Account) -> bool:
    """Whether the signed-in account is an anonymous contact."""
    return account.is_authenticated and getattr(account, "is_pseudonymous", False)


# -- an address for notifications only --------------------------------------------------------
EMAIL_LINK_HOURS = 24


def request_notification_email(*, account: Account, email: str) -> None:
    """Email a link to ``email`` that makes it the anonymous contact's address for
    notifications ("you have a new message", never the content). Until the link is used
    the address is kept only encrypted under the account's data key (``pending_email``),
    and the link carries a random token whose keyed hash alone is stored (an account
    token: single use, EMAIL_LINK_HOURS long): the URL says nothing of the address or the
    account to whoever sees it (mail logs, proxies, the browser's history). A new request
    replaces the one before: its link stops working and its address is overwritten."""
    if not account.is_pseudonymous:
        raise LinkInvalid
    token = tokens.issue(account, tokens.NOTIFICATION_EMAIL, hours=EMAIL_LINK_HOURS)
    account.pending_email = email
    db.session.commit()
    mail.send(to=email, subject=_l("Confirm your email address for notifications"),
              template="anonymous_email_confirm", locale=account.locale, token=token,
              hours=EMAIL_LINK_HOURS)


def notification_link_valid(token: str) -> bool:
    """Whether the link still confirms an address (without using it up)."""
    try:
        account = tokens.peek(token, tokens.NOTIFICATION_EMAIL)
    except tokens.TokenInvalid:
        return False
    return account is not None and account.is_pseudonymous


def confirm_notification_email(*, token: str) -> Account:
    """Make the waiting address the account's address for notifications; the link works
    once. It is not a sign-in name: its search key stays random, so no one finds the
    account by it and no password reset goes to it. Raises LinkInvalid (unknown, used,
    replaced or expired link, or an account that is gone)."""
    try:
        # Used up in one conditional UPDATE: of two requests racing, one goes on.
        account = tokens.consume(token, tokens.NOTIFICATION_EMAIL)
    except tokens.TokenInvalid:
        raise LinkInvalid from None
    if account is None or not account.is_pseudonymous:
        db.session.rollback()
        raise LinkInvalid
    db.session.refresh(account)  # the address of the request this link belongs to
    email = account.pending_email
    if not email:
        db.session.rollback()
        raise LinkInvalid
    bidx = account.email_bidx
    account.email = email
    account.email_bidx = bidx  # the setter indexed the address: keep the random key
    account.email_confirmed_at = utcnow()
    account.pending_email = None
    db.session.commit()
    return account


def _cancel_pending_email(account: Account) -> None:
    db.session.execute(
        update(AccountToken).where(AccountToken.account_id == account.id)
        .where(AccountToken.purpose == tokens.NOTIFICATION_EMAIL)
        .where(AccountToken.used_at.is_(None)).values(used_at=utcnow())
        .execution_options(synchronize_session=False))
    account.pending_email = None


def purge_pending_emails(now) -> int:
    """Forget the waiting addresses whose link has expired, was used or was replaced
    (the retention purge runs it): an address nobody confirmed is kept no longer than its
    link works."""
    live = (select(AccountToken.id).where(AccountToken.account_id == Account.id)
            .where(AccountToken.purpose == tokens.NOTIFICATION_EMAIL)
            .where(AccountToken.used_at.is_(None))
            .where(AccountToken.expires_at > now))
    return db.session.execute(
        update(Account).where(Account.pending_email_ciphertext.is_not(None))
        .where(~live.exists()).values(pending_email_ciphertext=None)
        .execution_options(synchronize_session=False)).rowcount


def remove_notification_email(*, account: Account) -> None:
    """No more emails: the address is deleted, and a link still on its way no longer
    works."""
    if not account.is_pseudonymous:
        return
    _cancel_pending_email(account)
    bidx = account.email_bidx
    account.email = ""
    account.email_bidx = bidx
    account.email_confirmed_at = None
    db.session.commit()
