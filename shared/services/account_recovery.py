"""Account recovery after an identity check in person: the way back when a client has lost
every second factor and every recovery code.

A staff member allowed to (``policy.RECOVER_ACCOUNTS``: an admin, or a caseworker for a
client assigned to them) checks the client's identity in person and starts a recovery,
noting how (encrypted with the account's key). The client is emailed at once and sees it
on their start and security pages, where they can cancel it; staff can cancel it in the
file. Only after ``Config.recovery_wait_hours`` does a password reset (which proves
control of the address) together with the hand-over code sign the client in without a
second factor, once: the authenticator app, the passkeys and the recovery codes are
removed, and the client is asked to set up a new second step (which brings new codes).

Why a hand-over code: staff checked a person, but a reset link only proves the mailbox,
which a thief holding the phone or someone reading the client's mail also has. So starting
a recovery makes a one-time code that staff give the person in person (on paper or aloud);
it is shown once, never emailed, and stored only as a keyed hash bound to the recovery.
Without it a reset is a normal reset (the second factor still applies); after
``MAX_WRONG_CODES`` wrong codes the recovery is cancelled and the client emailed.

Why remove every passkey: whoever needs this has none that works (a passkey they still
had would have signed them in), so each one left is on a lost device and, as passkeys
also sign in alone, would stay a way into the account for whoever holds that device.

Each change writes the access log (staff) and the security event log."""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from shared import audit, mail, policy, security_log
from shared.auth import recovery as recovery_codes
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.base import current_keyring, new_id, utcnow
from shared.models.passkeys import PasskeyCredential
from shared.models.recovery import AccountRecovery
from shared.models.staff import StaffMember
from shared.services import casefile

MIN_NOTE_LENGTH = 5
MAX_NOTE_LENGTH = 200
MAX_WRONG_CODES = 5
HANDOVER_CODE_LENGTH = 10
# Read aloud or copied from paper: no look-alikes (0/O, 1/I/L), upper case.
_HANDOVER_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class RecoveryError(Exception):
    """Base for what a view turns into a message."""


class NoOwnAccount(RecoveryError):
    """The client has no account of their own to recover (a child, or deleted)."""


class AlreadyPending(RecoveryError):
    """A recovery of this account is already under way."""


class NothingToCancel(RecoveryError):
    """No recovery of this account is under way (finished, cancelled, or none)."""


class NoteTooShort(RecoveryError):
    """How identity was checked must be written down."""


class NotReady(RecoveryError):
    """No recovery of this account can be completed now (none, still waiting, finished)."""


class WrongHandoverCode(RecoveryError):
    """The hand-over code typed is not the one staff gave; counted."""


class TooManyWrongCodes(RecoveryError):
    """The last wrong hand-over code allowed: the recovery is cancelled, the client emailed."""


@dataclass(frozen=True)
class Started:
    """A recovery just started and its hand-over code, which exists only here (shown once)."""

    recovery: AccountRecovery
    handover_code: str


def _new_handover_code() -> str:
    raw = "".join(secrets.choice(_HANDOVER_ALPHABET) for _ in range(HANDOVER_CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def _handover_hash(recovery_id: uuid.UUID, code: str) -> bytes:
    """Keyed hash of the code, bound to its recovery (the same code elsewhere is useless)."""
    typed = "".join(ch for ch in (code or "").upper() if ch.isalnum())
    return current_keyring().blind_index("account_recoveries.handover_code",
                                          f"{recovery_id}:{typed}")


def clock() -> datetime:
    """The time recoveries are started and judged by (tests move it instead of waiting)."""
    return utcnow()


def waiting_period() -> timedelta:
    return timedelta(hours=current_app.extensions["einblick"].config.recovery_wait_hours)


def pending(account: Account) -> AccountRecovery | None:
    """The account's open recovery (neither completed nor cancelled), if any."""
    return db.session.scalar(
        select(AccountRecovery).where(AccountRecovery.account_id == account.id)
        .where(AccountRecovery.completed_at.is_(None))
        .where(AccountRecovery.cancelled_at.is_(None)))


def ready_to_complete(account: Account) -> bool:
    """Whether the account's open recovery has taken effect and can be completed with its
    hand-over code (the reset page then asks for the code)."""
    row = pending(account)
    return row is not None and row.effective_at <= clock() \
        and row.handover_code_hash is not None


def waiting_until(account: Account) -> datetime | None:
    """When the account's open recovery takes effect, if it has not yet; else None."""
    row = pending(account)
    return row.effective_at if row is not None and row.effective_at > clock() else None


# -- staff -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StaffView:
    """What the recovery page shows staff about one client's account."""

    client_id: uuid.UUID
    client_name: str | None
    has_account: bool
    pending: AccountRecovery | None
    waiting_hours: int


def may_recover(member: StaffMember, client_id: uuid.UUID) -> bool:
    """Whether ``member`` may start or cancel a recovery of this client's account (for the
    file's link; the actions check again)."""
    if not policy.may(member.role, policy.RECOVER_ACCOUNTS):
        return False
    return not policy.may(member.role, policy.ASSIGNED_FILES_ONLY) or casefile.is_assigned(
        member, client_id)


def _check(member: StaffMember, client_id: uuid.UUID, session_id: uuid.UUID | None):
    """The client, if ``member`` may recover their account: the role, the assignment for
    caseworkers (an emergency opening is not enough to take over an account), and the
    file open at a level that shows the account. Raises casefile.NoAccess."""
    if not may_recover(member, client_id):
        raise casefile.NoAccess
    access = casefile.access_for(member, client_id, session_id)
    if not policy.may_read(access.level, policy.ACCOUNT):
        raise casefile.NoAccess
    return casefile.get_client(client_id)


def _own_account(client) -> Account:
    account = client.account
    if account is None or client.restricted_at is not None or not account.is_client:
        raise NoOwnAccount
    return account


def for_staff(*, member: StaffMember, client_id: uuid.UUID,
              session_id: uuid.UUID | None) -> StaffView:
    """The recovery page: the client's name and any open recovery; logged as a visit."""
    client = _check(member, client_id, session_id)
    audit.record_access(client_id=client.id, staff_member=member, category=audit.ACCOUNT)
    db.session.commit()
    account = client.account if client.restricted_at is None else None
    return StaffView(client_id=client.id, client_name=client.full_name,
                     has_account=account is not None,
                     pending=pending(account) if account is not None else None,
                     waiting_hours=int(waiting_period().total_seconds() // 3600))


def start(*, member: StaffMember, client_id: uuid.UUID, session_id: uuid.UUID | None,
          identity_check: str) -> Started:
    """Start a recovery of the client's account, effective after the waiting period; the
    client is emailed at once. The hand-over code is returned to be shown once to the staff
    member, who gives it to the person. Raises NoteTooShort, NoOwnAccount, AlreadyPending."""
    note = " ".join((identity_check or "").split())
    if len(note) < MIN_NOTE_LENGTH:
        raise NoteTooShort
    client = _check(member, client_id, session_id)
    account = _own_account(client)
    if pending(account) is not None:
        raise AlreadyPending
    now = clock()
    code = _new_handover_code()
    row = AccountRecovery(id=new_id(), account_id=account.id, data_key=account.data_key,
                          started_by_id=member.id, started_at=now,
                          effective_at=now + waiting_period())
    row.handover_code_hash = _handover_hash(row.id, code)
    row.identity_check = note[:MAX_NOTE_LENGTH]
    db.session.add(row)
    try:
        db.session.flush()  # the partial unique index: one open recovery per account
    except IntegrityError:
        db.session.rollback()
        raise AlreadyPending from None
    audit.record_access(client_id=client.id, staff_member=member, category=audit.ACCOUNT,
                        action=audit.RECOVERY_STARTED)
    db.session.commit()
    security_log.record("account_recovery.started", account=account)
    mail.send(to=account.email, subject=_l("A recovery of your account was started"),
              template="account_recovery_started", locale=account.locale,
              staff_name=member.name, effective_at=row.effective_at, phone=_phone())
    return Started(recovery=row, handover_code=code)


def cancel_by_staff(*, member: StaffMember, client_id: uuid.UUID,
                    session_id: uuid.UUID | None) -> None:
    """Staff stop the client's open recovery (a mistake, or the client asked by phone)."""
    client = _check(member, client_id, session_id)
    account = _own_account(client)
    _cancel(account)
    audit.record_access(client_id=client.id, staff_member=member, category=audit.ACCOUNT,
                        action=audit.RECOVERY_CANCELLED)
    db.session.commit()
    _told_cancelled(account)


# -- the client ------------------------------------------------------------------------------
def cancel_by_client(*, account: Account) -> None:
    """The signed-in client stops a recovery they did not ask for (or no longer need)."""
    _cancel(account)
    db.session.commit()
    _told_cancelled(account)


def _cancel(account: Account) -> None:
    result = db.session.execute(
        update(AccountRecovery).where(AccountRecovery.account_id == account.id)
        .where(AccountRecovery.completed_at.is_(None))
        .where(AccountRecovery.cancelled_at.is_(None))
        .values(cancelled_at=clock()).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise NothingToCancel


def _told_cancelled(account: Account, *, wrong_codes: bool = False) -> None:
    security_log.record("account_recovery.cancelled", account=account)
    mail.send(to=account.email, subject=_l("The recovery of your account was cancelled"),
              template="account_recovery_cancelled", locale=account.locale, phone=_phone(),
              wrong_codes=wrong_codes)


def check_handover_code(*, account: Account, code: str) -> None:
    """Before a reset saves the new password: is ``code`` the hand-over code of the
    account's recovery that has taken effect? Only a wrong code counts (one conditional
    UPDATE, also across workers); the last one allowed cancels the recovery and emails the
    client. Raises NotReady, WrongHandoverCode, TooManyWrongCodes."""
    row = pending(account)
    if row is None or row.effective_at > clock() or row.handover_code_hash is None:
        raise NotReady
    if hmac.compare_digest(_handover_hash(row.id, code), row.handover_code_hash):
        return
    wrong = db.session.execute(
        update(AccountRecovery).where(AccountRecovery.id == row.id)
        .where(AccountRecovery.completed_at.is_(None))
        .where(AccountRecovery.cancelled_at.is_(None))
        .values(wrong_codes=AccountRecovery.wrong_codes + 1)
        .returning(AccountRecovery.wrong_codes)
        .execution_options(synchronize_session=False)).scalar()
    if wrong is None:  # completed or cancelled meanwhile
        db.session.rollback()
        raise NotReady
    db.session.commit()
    security_log.record("account_recovery.completed", outcome=security_log.FAILED,
                        account=account)
    if wrong < MAX_WRONG_CODES:
        raise WrongHandoverCode
    try:
        _cancel(account)
    except NothingToCancel:
        raise NotReady from None
    db.session.commit()
    _told_cancelled(account, wrong_codes=True)
    raise TooManyWrongCodes


def complete_after_reset(*, account: Account, handover_code: str) -> bool:
    """Called right after a password reset: if the account's recovery has taken effect
    and ``handover_code`` is its code, complete it (once, also across workers: one
    conditional UPDATE) and remove the lost factors, so the caller signs the client in
    without a second factor. False when there is none, its waiting period has not yet
    passed, or the code is not right: the second factor still applies."""
    row = pending(account)
    if row is None or row.handover_code_hash is None:
        return False
    result = db.session.execute(
        update(AccountRecovery).where(AccountRecovery.id == row.id)
        .where(AccountRecovery.completed_at.is_(None))
        .where(AccountRecovery.cancelled_at.is_(None))
        .where(AccountRecovery.effective_at <= clock())
        .where(AccountRecovery.handover_code_hash == _handover_hash(row.id, handover_code))
        .values(completed_at=clock()).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        return False
    account.totp_secret = None
    account.totp_pending_secret = None
    account.totp_enabled_at = None
    account.totp_last_step = None
    db.session.execute(delete(PasskeyCredential)
                       .where(PasskeyCredential.account_id == account.id))
    recovery_codes.delete_all(account)
    db.session.commit()
    security_log.record("account_recovery.completed", account=account)
    mail.send(to=account.email, subject=_l("Your account was recovered"),
              template="account_recovery_completed", locale=account.locale, phone=_phone())
    return True


def _phone() -> str:
    return current_app.extensions["einblick"].config.organisation_phone
