"""Digital consent: a canonical document, signed by the signer's passkey (or, weaker, TOTP
plus the typed name; weakest, for accounts with only a password, a code sent by email plus
the typed name), stored with its evidence and a sealed receipt; withdrawal as easy, and
"I do not agree" recorded too.

Passkey challenge = SHA-256("einblick-consent-v1" ‖ document hash ‖ server nonce), where
the document hash is SHA-256 of the canonical JSON of (template key, version, language,
text hash, subject, signer, time). An assertion made for one document verifies for no
other. ``verify_evidence`` re-checks a signature from the evidence alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import joinedload

from shared import audit, mail, policy, seal, security_log
from shared.auth import passkeys, totp
from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES
from shared.content_i18n import binding_language, consent_title
from shared.extensions import db
from shared.models.accounts import Account
from shared.models.base import current_keyring, utcnow
from shared.models.casefile import Assignment
from shared.models.clients import Client
from shared.models.consents import (
    CONFIRMATION,
    DECLINED,
    DRAFT,
    EMAIL_CODE_NAME,
    GIVEN,
    PASSKEY,
    PUBLISHED,
    TOTP_NAME,
    WITHDRAWN,
    Consent,
    ConsentEmailCode,
    ConsentRequest,
    ConsentTemplate,
)
from shared.models.household import ACCESS_FULL, Guardianship
from shared.models.staff import StaffMember
from shared.services import casefile, household
from shared.services.staff import active_members

DOMAIN_TAG = b"einblick-consent-v1"
PURPOSE = "consent"
# What the receipt adds to the stored evidence (see shared/services/receipts.py).
RECEIPT_ONLY_EVIDENCE = frozenset({"status", "withdrawn_at"})
# The code sent by email (EMAIL_CODE_NAME): six digits, valid this long, and this many
# wrong guesses end it (one in 200,000 to guess right before a new code must be sent).
EMAIL_CODE_MINUTES = 15
EMAIL_CODE_ATTEMPTS = 5
# Requests reminded of per statement batch (`flask consents remind`).
REMINDER_BATCH = 200


class ConsentError(Exception):
    pass


class NotAllowed(ConsentError):
    pass


class AlreadyGiven(ConsentError):
    pass


class ConsentWithdrawn(ConsentError):
    pass


class SignatureInvalid(ConsentError):
    pass


class UnknownTemplate(ConsentError):
    """No consent template with this id."""


class NotADraft(ConsentError):
    """Only a draft can be published (a published version never changes)."""


class WrongName(SignatureInvalid):
    """The typed name is not the account's name (no code was tried, nothing counts)."""


class WrongCode(SignatureInvalid):
    """The emailed code is not the one sent for this consent (a guess that counts)."""


class CodeExpired(SignatureInvalid):
    """No code is waiting: none sent, too old, used, or too many wrong guesses."""


class EmailCodeNotOffered(ConsentError):
    """Accounts with a passkey or an authenticator app sign with those, not the weaker
    emailed code: whoever can read the mailbox must not be able to bypass them."""


class AlreadyDeclined(ConsentError):
    """"I do not agree" is already recorded and nothing was given since."""


class TextNotShown(ConsentError):
    """The answer does not name the text its page showed (another language since, or a
    changed or forged page): nothing is signed."""


class NoReceipt(ConsentError):
    """No such consent, or no receipt of this kind (a consent not withdrawn has no
    withdrawal receipt)."""


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- templates -----------------------------------------------------------------------------
def published_templates() -> list[ConsentTemplate]:
    """The newest published version of each template key."""
    rows = db.session.scalars(select(ConsentTemplate).where(ConsentTemplate.status == PUBLISHED)
                              .order_by(ConsentTemplate.key, ConsentTemplate.version.desc()))
    newest: dict[str, ConsentTemplate] = {}
    for row in rows:
        newest.setdefault(row.key, row)
    return list(newest.values())


def get_template(template_id: uuid.UUID) -> ConsentTemplate:
    template = db.session.get(ConsentTemplate, template_id)
    if template is None:
        raise UnknownTemplate
    return template


def all_templates() -> list[ConsentTemplate]:
    return list(db.session.scalars(select(ConsentTemplate)
                                   .order_by(ConsentTemplate.key, ConsentTemplate.version)))


def save_template(*, key: str, texts: dict, purpose: str, legal_basis: str, audience: str,
                  guardian_signs: bool, template_id: uuid.UUID | None = None,
                  required_for_service_id: uuid.UUID | None = None) -> ConsentTemplate:
    """Edit a draft in place; editing a published version creates a new draft version."""
    if not texts.get("de", {}).get("title") or not texts.get("de", {}).get("text"):
        raise ConsentError("German title and text are required")
    current = db.session.get(ConsentTemplate, template_id) if template_id else None
    if current is not None and current.status == DRAFT:
        template = current
    else:
        key = current.key if current is not None else key
        latest = db.session.scalar(select(ConsentTemplate.version)
                                   .where(ConsentTemplate.key == key)
                                   .order_by(ConsentTemplate.version.desc()).limit(1))
        template = ConsentTemplate(key=key, version=(latest or 0) + 1, status=DRAFT)
        db.session.add(template)
    # A language is there with its binding title and text; its purpose, legal basis and
    # audience may be missing (shown in German then, shared.content_i18n). German's are
    # the columns below.
    template.texts = {lang: {name: v for name, v in value.items()
                             if v and (lang != "de" or name in ("title", "text"))}
                      for lang, value in texts.items() if value.get("text")}
    template.purpose = purpose
    template.legal_basis = legal_basis
    template.audience = audience
    template.guardian_signs = guardian_signs
    template.required_for_service_id = required_for_service_id
    db.session.commit()
    return template


def required_for_service(service_id: uuid.UUID) -> list[ConsentTemplate]:
    return [t for t in published_templates() if t.required_for_service_id == service_id]


def publish(template_id: uuid.UUID) -> ConsentTemplate:
    template = db.session.get(ConsentTemplate, template_id)
    if template is None or template.status != DRAFT:
        raise NotADraft
    template.status = PUBLISHED
    template.published_at = utcnow()
    db.session.commit()
    return template


# -- the document --------------------------------------------------------------------------
def text_hash(template: ConsentTemplate, locale: str) -> str:
    text = template.text(locale)
    canonical = json.dumps({"title": text["title"], "text": text["text"]}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def shown_token(template: ConsentTemplate, locale: str) -> str:
    """What a consent page carries into its answer: the language it was shown in and the
    hash of the binding text it showed. The answer is signed in that language, whatever
    the language is by the time it arrives (another tab may have switched it)."""
    return f"{locale}:{text_hash(template, locale)}"


def locale_shown(template: ConsentTemplate, token: str | None) -> str:
    """The language a consent was read in, from its page's token; refuses (TextNotShown)
    unless the text that would be signed is exactly the text that page showed."""
    locale, _sep, digest = (token or "").partition(":")
    if locale not in SUPPORTED_LOCALES or not hmac.compare_digest(
            digest.encode(), text_hash(template, locale).encode()):
        raise TextNotShown
    return locale


def canonical_document(*, template: ConsentTemplate, locale: str, subject_id: uuid.UUID,
                       signer_id: uuid.UUID, at: datetime, decision: str | None = None
                       ) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8; equal inputs give equal bytes.
    ``decision`` ("declined") marks a refusal; a consent's document has none, so every
    document made before refusals existed stays byte for byte the same."""
    fields = {
        "template": template.key,
        "version": template.version,
        # The language of the text shown and signed: German when the reader's is missing.
        "language": binding_language(template, locale),
        "text_sha256": text_hash(template, locale),
        "subject": str(subject_id),
        "signer": str(signer_id),
        "time": at.isoformat(),
    }
    if decision is not None:
        fields["decision"] = decision
    return json.dumps(fields, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def signing_challenge(document: bytes, nonce: bytes) -> bytes:
    return hashlib.sha256(DOMAIN_TAG + hashlib.sha256(document).digest() + nonce).digest()


# -- who signs for whom -------------------------------------------------------------------
def subject_for(account: Account, subject_id: uuid.UUID) -> Client:
    try:
        return household.client_for(account, subject_id, need=ACCESS_FULL)
    except household.HandoverPending:
        raise
    except household.NotAllowed as exc:
        raise NotAllowed from exc


def signable_subject(account: Account, subject_id: uuid.UUID,
                     template: ConsentTemplate) -> Client:
    """Clients sign for themselves; a guardian signs for a child only where the template
    says a guardian signs, and only while the child has no account of their own that staff
    have confirmed in person. An invited account whose hand-over is pending may be held by
    whoever sent the invitation, so it neither signs nor withdraws in the young person's
    name (``household.HandoverPending``, from ``subject_for``)."""
    subject = subject_for(account, subject_id)
    if subject.id == getattr(household.own_client(account), "id", None):
        return subject
    if not template.guardian_signs or (subject.account_id is not None
                                       and not household.handover_pending(subject.account)):
        raise NotAllowed
    return subject


# Newest first. Times are kept to the second, so a consent given in the same second as a
# refusal ("I do not agree", then changing one's mind) must still come first: a refusal
# can only come before a consent in that second (a given consent is withdrawn, not
# declined, and a withdrawn one was given earlier).
_NEWEST_FIRST = (Consent.given_at.desc(), case((Consent.status == DECLINED, 1), else_=0))


def current_consent(subject_id: uuid.UUID, key: str) -> Consent | None:
    return db.session.scalar(
        select(Consent).join(ConsentTemplate, Consent.template_id == ConsentTemplate.id)
        .where(Consent.subject_id == subject_id).where(ConsentTemplate.key == key)
        .order_by(*_NEWEST_FIRST).limit(1)
    )


def overview(account: Account) -> list[tuple[Client, bool, list[tuple[ConsentTemplate,
                                                                       Consent | None]]]]:
    """For the account and each child: every published template with its latest consent."""
    people = []
    own = household.own_client(account)
    if own is not None:
        people.append((own, True))
    people += [(c, False) for c in household.visible_dependants(account, need=ACCESS_FULL)]
    templates = published_templates()
    result = []
    for client, is_self in people:
        relevant = [t for t in templates if is_self or t.guardian_signs]
        result.append((client, is_self, [(t, current_consent(client.id, t.key))
                                         for t in relevant]))
    return result


# -- signing ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PendingSignature:
    """A passkey signature begun and not yet finished: the document and nonce the
    challenge commits to. The caller keeps it (the portal in the signer's session, which
    only the server can write) and hands it back to ``finish_passkey_signature`` once."""

    document: bytes
    nonce: bytes
    template_id: uuid.UUID
    subject_id: uuid.UUID

    def as_dict(self) -> dict[str, str]:
        """Plain strings, for a store that keeps JSON (the session cookie)."""
        return {"document": b64(self.document), "nonce": b64(self.nonce),
                "template": str(self.template_id), "subject": str(self.subject_id)}

    @classmethod
    def from_dict(cls, data: dict[str, str] | None) -> PendingSignature | None:
        """Back from ``as_dict``; None when nothing was kept."""
        if not data:
            return None
        return cls(document=unb64(data["document"]), nonce=unb64(data["nonce"]),
                   template_id=uuid.UUID(data["template"]),
                   subject_id=uuid.UUID(data["subject"]))


def begin_passkey_signature(*, account: Account, template_id: uuid.UUID,
                            subject_id: uuid.UUID, locale: str
                            ) -> tuple[str, PendingSignature]:
    """WebAuthn options whose challenge commits to exactly this document, and what the
    caller keeps until ``finish_passkey_signature``."""
    template = _published(template_id)
    subject = signable_subject(account, subject_id, template)
    _not_given(subject.id, template.key)
    document = canonical_document(template=template, locale=locale, subject_id=subject.id,
                                  signer_id=account.id, at=utcnow().replace(microsecond=0))
    nonce = secrets.token_bytes(32)
    pending = PendingSignature(document=document, nonce=nonce, template_id=template.id,
                               subject_id=subject.id)
    options = passkeys.begin_authentication(purpose=PURPOSE, account=account,
                                            challenge=signing_challenge(document, nonce))
    return options, pending


def finish_passkey_signature(*, account: Account, response: str,
                             pending: PendingSignature | None) -> Consent:
    """Record the consent the passkey signed; ``pending`` is what ``begin_passkey_signature``
    returned, used once (the caller forgets it before calling)."""
    if pending is None:
        raise passkeys.ChallengeInvalid
    document, nonce = pending.document, pending.nonce
    assertion = passkeys.finish_authentication(purpose=PURPOSE, response=response,
                                               account=account)
    if assertion.challenge != signing_challenge(document, nonce):
        raise SignatureInvalid
    evidence = {
        "method": PASSKEY,
        "credential_id": b64(assertion.credential.credential_id),
        "public_key": b64(assertion.credential.public_key),
        "authenticator_data": b64(assertion.authenticator_data),
        "client_data_json": b64(assertion.client_data_json),
        "signature": b64(assertion.signature),
        "nonce": b64(nonce),
        "document": b64(document),
        "rp_id": passkeys.rp_id(),
        "origin": passkeys.expected_origin(),
    }
    if not verify_evidence(evidence):
        raise SignatureInvalid
    return _record(account=account, template_id=pending.template_id,
                   subject_id=pending.subject_id, document=document,
                   evidence=evidence, method=PASSKEY)


def sign_with_totp(*, account: Account, template_id: uuid.UUID, subject_id: uuid.UUID,
                   locale: str, code: str, typed_name: str) -> Consent:
    """The weaker method for people without a passkey: a TOTP code and the typed name."""
    template = _published(template_id)
    subject = signable_subject(account, subject_id, template)
    _not_given(subject.id, template.key)
    typed_name = _checked_name(account, typed_name)
    if not totp.verify_and_consume(account, code):
        raise SignatureInvalid
    document = canonical_document(template=template, locale=locale, subject_id=subject.id,
                                  signer_id=account.id, at=utcnow().replace(microsecond=0))
    evidence = {"method": TOTP_NAME, "typed_name": typed_name, "totp_time_step":
                account.totp_last_step, "document": b64(document)}
    return _record(account=account, template_id=template.id, subject_id=subject.id,
                   document=document, evidence=evidence, method=TOTP_NAME)


def email_code_offered(account: Account) -> bool:
    """The emailed code is for accounts with only a password (EmailCodeNotOffered)."""
    return not (account.has_passkey or account.has_totp)


def _email_code_hash(*, code_id: uuid.UUID, account_id: uuid.UUID, template_id: uuid.UUID,
                     subject_id: uuid.UUID, code: str) -> bytes:
    """Keyed hash binding the code to the account and the consent it was sent for: the
    database alone does not give the six digits back, and a code sent for one consent
    signs no other."""
    digits = "".join(ch for ch in (code or "") if ch.isdigit())
    return current_keyring().blind_index(
        "consent_email_codes.code", f"{code_id}:{account_id}:{template_id}:{subject_id}:{digits}")


def send_email_code(*, account: Account, template_id: uuid.UUID,
                    subject_id: uuid.UUID) -> None:
    """Email a one-time code to sign this consent (EMAIL_CODE_NAME); a new code replaces
    any code sent before. The email holds the code, never the consent's content."""
    template = _published(template_id)
    subject = signable_subject(account, subject_id, template)
    _not_given(subject.id, template.key)
    if not email_code_offered(account):
        raise EmailCodeNotOffered
    db.session.execute(delete(ConsentEmailCode)
                       .where(ConsentEmailCode.account_id == account.id)
                       .execution_options(synchronize_session=False))
    code = f"{secrets.randbelow(10**6):06d}"
    now = utcnow()
    row = ConsentEmailCode(id=uuid.uuid4(), account_id=account.id, created_at=now,
                           expires_at=now + timedelta(minutes=EMAIL_CODE_MINUTES), attempts=0)
    row.code_hash = _email_code_hash(code_id=row.id, account_id=account.id,
                                     template_id=template.id, subject_id=subject.id, code=code)
    db.session.add(row)
    db.session.commit()
    mail.send(to=account.email, subject=_l("Your code to sign a consent"),
              template="consent_code", locale=account.locale, code=code,
              minutes=EMAIL_CODE_MINUTES)


def _waiting_email_code(account: Account, now: datetime) -> ConsentEmailCode | None:
    return db.session.scalar(
        select(ConsentEmailCode).where(ConsentEmailCode.account_id == account.id)
        .where(ConsentEmailCode.used_at.is_(None))
        .where(ConsentEmailCode.expires_at > now)
        .where(ConsentEmailCode.attempts < EMAIL_CODE_ATTEMPTS)
        .order_by(ConsentEmailCode.created_at.desc()).limit(1))


def sign_with_email_code(*, account: Account, template_id: uuid.UUID, subject_id: uuid.UUID,
                         locale: str, code: str, typed_name: str) -> Consent:
    """The weakest method, for accounts with only a password: the code emailed by
    ``send_email_code`` and the typed name. A wrong name costs nothing (WrongName); a
    wrong code is a guess (WrongCode) and EMAIL_CODE_ATTEMPTS of them end the code."""
    template = _published(template_id)
    subject = signable_subject(account, subject_id, template)
    _not_given(subject.id, template.key)
    if not email_code_offered(account):
        raise EmailCodeNotOffered
    typed_name = _checked_name(account, typed_name)
    now = utcnow()
    row = _waiting_email_code(account, now)
    if row is None:
        raise CodeExpired
    # Each guess first takes one of the attempts (one conditional UPDATE), so requests
    # racing on several workers cannot compare more than EMAIL_CODE_ATTEMPTS guesses.
    reserved = db.session.execute(
        update(ConsentEmailCode).where(ConsentEmailCode.id == row.id)
        .where(ConsentEmailCode.used_at.is_(None))
        .where(ConsentEmailCode.attempts < EMAIL_CODE_ATTEMPTS)
        .values(attempts=ConsentEmailCode.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if reserved != 1:
        raise CodeExpired
    expected = _email_code_hash(code_id=row.id, account_id=account.id, template_id=template.id,
                                subject_id=subject.id, code=code)
    if not hmac.compare_digest(expected, row.code_hash):
        raise WrongCode
    # Used once, also when two requests race (one conditional UPDATE).
    claimed = db.session.execute(
        update(ConsentEmailCode).where(ConsentEmailCode.id == row.id)
        .where(ConsentEmailCode.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if claimed != 1:
        raise CodeExpired
    document = canonical_document(template=template, locale=locale, subject_id=subject.id,
                                  signer_id=account.id, at=now.replace(microsecond=0))
    evidence = {"method": EMAIL_CODE_NAME, "typed_name": typed_name,
                "code_sent_at": row.created_at.replace(microsecond=0).isoformat(),
                "code_sent_to": account.email, "document": b64(document)}
    return _record(account=account, template_id=template.id, subject_id=subject.id,
                   document=document, evidence=evidence, method=EMAIL_CODE_NAME)


def _checked_name(account: Account, typed_name: str) -> str:
    """The typed name, spaces tidied, when it is the account's own name."""
    typed_name = " ".join((typed_name or "").split())
    own_name = getattr(account.client, "full_name", None)
    if len(typed_name) < 3 or (own_name and typed_name.casefold() != own_name.casefold()):
        raise WrongName
    return typed_name


# -- "I do not agree" ------------------------------------------------------------------------
def decline(*, account: Account, template_id: uuid.UUID, subject_id: uuid.UUID,
            locale: str) -> Consent:
    """Record "I do not agree" (confirmed with a button, nothing signed). Staff see it in
    the case file; a consent given later supersedes it."""
    template = _published(template_id)
    subject = signable_subject(account, subject_id, template)
    existing = current_consent(subject.id, template.key)
    if existing is not None and existing.status == GIVEN:
        raise AlreadyGiven  # a given consent is withdrawn, not declined
    if existing is not None and existing.status == DECLINED:
        raise AlreadyDeclined
    at = utcnow().replace(microsecond=0)
    document = canonical_document(template=template, locale=locale, subject_id=subject.id,
                                  signer_id=account.id, at=at, decision=DECLINED)
    record = Consent(template_id=template.id, subject_id=subject.id,
                     data_key=subject.data_key, signer_account_id=account.id,
                     method=CONFIRMATION, locale=json.loads(document)["language"],
                     status=DECLINED, document_hash=hashlib.sha256(document).digest(),
                     given_at=at)
    record.document = document
    record.evidence = {"method": CONFIRMATION, "decision": DECLINED, "document": b64(document)}
    db.session.add(record)
    _fulfil_requests(subject.id, template.key)
    db.session.commit()
    return record


def _fulfil_requests(subject_id: uuid.UUID, key: str) -> None:
    """Staff's requests for this consent are answered (given or declined)."""
    db.session.execute(update(ConsentRequest).where(ConsentRequest.subject_id == subject_id)
                       .where(ConsentRequest.template_key == key)
                       .where(ConsentRequest.fulfilled_at.is_(None))
                       .values(fulfilled_at=utcnow())
                       .execution_options(synchronize_session=False))


def _published(template_id: uuid.UUID) -> ConsentTemplate:
    """Only the newest published version of a template can be signed."""
    template = db.session.get(ConsentTemplate, template_id)
    if template is None or template.status != PUBLISHED:
        raise NotAllowed
    newest = next((t for t in published_templates() if t.key == template.key), None)
    if newest is None or newest.id != template.id:
        raise NotAllowed
    return template


def _not_given(subject_id: uuid.UUID, key: str) -> None:
    existing = current_consent(subject_id, key)
    if existing is not None and existing.status == GIVEN:
        raise AlreadyGiven


def _record(*, account: Account, template_id: uuid.UUID, subject_id: uuid.UUID,
            document: bytes, evidence: dict, method: str) -> Consent:
    subject = db.session.get(Client, subject_id)
    template = db.session.get(ConsentTemplate, template_id)
    _not_given(subject.id, template.key)  # also when a second signature raced this one
    signable_subject(account, subject.id, template)
    locale = json.loads(document)["language"]
    # The exact text signed travels with the evidence, so a verifier can recompute its hash.
    # Title and text only (what text_sha256 covers), as every receipt before had them.
    text = template.text(locale)
    evidence = {**evidence, "text": {"title": text["title"], "text": text["text"]}}
    consent = Consent(template_id=template.id, subject_id=subject.id,
                      data_key=subject.data_key, signer_account_id=account.id, method=method,
                      locale=locale, status=GIVEN, document_hash=hashlib.sha256(document).digest(),
                      given_at=datetime.fromisoformat(json.loads(document)["time"]))
    consent.document = document
    consent.evidence = evidence
    db.session.add(consent)
    db.session.flush()
    from shared.services import receipts

    consent.receipt = receipts.consent_receipt(consent)
    _fulfil_requests(subject.id, template.key)
    db.session.commit()
    security_log.record("consent.given", account=account)
    # A link to the consent's page, where the receipt is: nothing of its content.
    mail.send(to=account.email, subject=_l("Your consent is recorded"),
              template="consent_given", locale=account.locale,
              template_id=template.id, subject_id=subject.id)
    return consent


# -- withdrawal ---------------------------------------------------------------------------
def own_consent(account: Account, consent_id: uuid.UUID) -> Consent:
    consent = db.session.get(Consent, consent_id)
    if consent is None:
        raise NotAllowed
    subject_for(account, consent.subject_id)
    return consent


def withdraw(*, account: Account, consent_id: uuid.UUID) -> Consent:
    """Effective at once, with its own sealed receipt; staff are told by email. Not by an
    invited account for itself while its hand-over is pending (``household.HandoverPending``
    from own_consent)."""
    consent = own_consent(account, consent_id)
    if consent.status != GIVEN:  # withdrawn already, or never given ("I do not agree")
        raise ConsentWithdrawn
    consent.status = WITHDRAWN
    consent.withdrawn_at = utcnow().replace(microsecond=0)
    from shared.services import receipts

    consent.withdrawal_receipt = receipts.withdrawal_receipt(consent)
    db.session.commit()
    security_log.record("consent.withdrawn", account=account)
    for member in _responsible_staff(consent.subject_id):
        mail.send(to=member.account.email, subject=_l("A consent was withdrawn"),
                  template="consent_withdrawn", locale=member.account.locale,
                  template_title=consent_title(consent.template,
                                               member.account.locale or DEFAULT_LOCALE),
                  staff=True)
    return consent


def _responsible_staff(subject_id: uuid.UUID) -> list[StaffMember]:
    assigned = list(db.session.scalars(
        select(StaffMember).join(Assignment, Assignment.staff_member_id == StaffMember.id)
        .where(Assignment.client_id == subject_id).where(StaffMember.active.is_(True))))
    if assigned:
        return assigned
    # No caseworker yet: those who assign one hear of it.
    return active_members(roles=policy.roles_with(policy.ASSIGN_CASEWORKERS))


# -- staff ------------------------------------------------------------------------------
def status_for_client(client_id: uuid.UUID) -> list[tuple[ConsentTemplate, Consent | None]]:
    """Every published template with the client's latest consent under its key (as
    ``current_consent``), in two statements however many templates there are."""
    templates = published_templates()
    latest: dict[str, Consent] = {}
    for consent in db.session.scalars(
            select(Consent).join(ConsentTemplate, Consent.template_id == ConsentTemplate.id)
            .where(Consent.subject_id == client_id)
            .where(ConsentTemplate.key.in_([t.key for t in templates]))
            .order_by(*_NEWEST_FIRST)):
        latest.setdefault(consent.template.key, consent)
    return [(t, latest.get(t.key)) for t in templates]


def request_signature(*, member: StaffMember, client_id: uuid.UUID,
                      session_id: uuid.UUID | None, key: str) -> None:
    """Ask a client (or the guardian of a child) to give a consent: email and portal task.
    Only by staff to whom the client's file is open in this session."""
    _require_open_file(member, client_id, session_id)
    client = db.session.get(Client, client_id)
    if client is None:
        raise NotAllowed
    db.session.add(ConsentRequest(template_key=key, subject_id=client.id,
                                  requested_by_id=member.id))
    audit.record_access(client_id=client.id, staff_member=member, category=audit.CASE_FILE,
                        action=audit.CHANGE)
    db.session.commit()
    own = household.own_account(client)  # not an account nobody has confirmed yet
    recipients = [own] if own is not None else []
    recipients += [g.guardian for g in db.session.scalars(
        select(Guardianship).where(Guardianship.dependant_id == client.id)
        .where(Guardianship.access == ACCESS_FULL))]
    for account in recipients:
        mail.send(to=account.email, subject=_l("Please look at a consent"),
                  template="consent_requested", locale=account.locale)


def _require_open_file(member: StaffMember, client_id: uuid.UUID,
                       session_id: uuid.UUID | None) -> casefile.FileAccess:
    try:
        return casefile.access_for(member, client_id, session_id)
    except (casefile.NoAccess, casefile.NeedsBreakGlass) as exc:
        raise NotAllowed from exc


def receipt_for_staff(*, member: StaffMember, consent_id: uuid.UUID,
                      session_id: uuid.UUID | None, withdrawal: bool) -> bytes:
    """The sealed receipt of a consent (or of its withdrawal) for staff who see more of
    the file than its contact part (reception sees that a consent exists, not its
    receipt); the download is written to the client's access log."""
    consent = db.session.get(Consent, consent_id)
    if consent is None:
        raise NoReceipt
    access = _require_open_file(member, consent.subject_id, session_id)
    if not policy.may_read(access.level, policy.CONSENT_RECEIPTS):
        raise NotAllowed
    pdf = consent.withdrawal_receipt if withdrawal else consent.receipt
    if pdf is None:
        raise NoReceipt
    audit.record_access(client_id=consent.subject_id, staff_member=member,
                        category=audit.CASE_FILE, action=audit.DOWNLOAD,
                        grant_id=access.grant_id)
    db.session.commit()
    return pdf


def send_reminders(*, now: datetime | None = None, batch: int = REMINDER_BATCH) -> int:
    """Remind once of each consent request nobody answered within
    ``consent_reminder_days``: an email with a link, never the consent's content. Safe to
    run often and in parallel (each request is claimed by one conditional UPDATE); a batch
    costs the same few statements however long the history, as the due requests are read
    through a partial index (ix_consent_requests_reminder_due)."""
    config = current_app.extensions["einblick"].config
    now = now or utcnow()
    cutoff = now - timedelta(days=config.consent_reminder_days)
    sent = 0
    while True:
        due = db.session.scalars(
            select(ConsentRequest.id).where(ConsentRequest.fulfilled_at.is_(None))
            .where(ConsentRequest.reminded_at.is_(None))
            .where(ConsentRequest.created_at <= cutoff)
            .order_by(ConsentRequest.created_at).limit(batch)).all()
        if not due:
            return sent
        claimed = db.session.execute(
            update(ConsentRequest).where(ConsentRequest.id.in_(due))
            .where(ConsentRequest.reminded_at.is_(None))
            .values(reminded_at=now).returning(ConsentRequest.subject_id)
            .execution_options(synchronize_session=False)).scalars().all()
        db.session.commit()
        sent += _remind(set(claimed))
        if len(due) < batch:
            return sent


def _remind(subject_ids: set[uuid.UUID]) -> int:
    """Email each person asked (the client's own account, guardians with full access),
    in two statements for the whole batch."""
    if not subject_ids:
        return 0
    recipients: list[Account] = []
    for client in db.session.scalars(select(Client).where(Client.id.in_(subject_ids))
                                     .options(joinedload(Client.account))).unique():
        own = household.own_account(client)
        if own is not None:
            recipients.append(own)
    recipients += [g.guardian for g in db.session.scalars(
        select(Guardianship).where(Guardianship.dependant_id.in_(subject_ids))
        .where(Guardianship.access == ACCESS_FULL)
        .options(joinedload(Guardianship.guardian)))]
    for account in recipients:
        mail.send(to=account.email, subject=_l("Reminder: please look at a consent"),
                  template="consent_reminder", locale=account.locale)
    return len(recipients)


def request_for(subject_id: uuid.UUID, key: str) -> ConsentRequest | None:
    """Staff's newest open request for this consent, with who asked (or None)."""
    return db.session.scalar(select(ConsentRequest)
                             .where(ConsentRequest.subject_id == subject_id)
                             .where(ConsentRequest.template_key == key)
                             .where(ConsentRequest.fulfilled_at.is_(None))
                             .order_by(ConsentRequest.created_at.desc()).limit(1))


def open_requests(account: Account) -> list[ConsentRequest]:
    ids = [c.id for c, _is_self, _items in overview(account)]
    if not ids:
        return []
    return list(db.session.scalars(select(ConsentRequest)
                                   .where(ConsentRequest.subject_id.in_(ids))
                                   .where(ConsentRequest.fulfilled_at.is_(None))))


# -- verification ---------------------------------------------------------------------------
def verify_evidence(evidence: dict, *, expected_rp_id: str | None = None) -> bool:
    """Re-check a passkey signature from the evidence alone (no database, no server)."""
    from shared.consent_verify import verify_passkey_evidence

    return verify_passkey_evidence(evidence, expected_rp_id=expected_rp_id).ok


@dataclass(frozen=True)
class VerifyResult:
    seal_intact: bool
    seal_trusted: bool
    signature_ok: bool
    method: str | None
    template_title: str | None
    version: int | None
    signed_at: str | None
    withdrawn: bool | None  # None: unknown to this organisation
    language: str | None = None  # of the text signed, as the signed document records it


def verify_receipt(pdf: bytes, *, locale: str = "de") -> VerifyResult:
    """For /verify: seal, signature and current status, and nothing else about anyone."""
    from shared.consent_verify import evidence_from_pdf, verify_passkey_evidence

    config = current_app.extensions["einblick"].config
    check = seal.check_seal(pdf, seal.load(config).certificate_pem)
    if not (check.intact and check.trusted):
        # Nothing from an unsealed or foreign PDF is looked up or shown.
        return VerifyResult(check.intact, check.trusted, False, None, None, None, None, None)
    evidence = evidence_from_pdf(pdf)
    if evidence is None:
        return VerifyResult(check.intact, check.trusted, False, None, None, None, None, None)
    document = unb64(evidence.get("document", ""))
    method = evidence.get("method")
    from shared.consent_verify import verify_evidence_document

    signature_ok = verify_evidence_document(evidence).ok and (
        verify_passkey_evidence(evidence).ok if method == PASSKEY
        else method in (TOTP_NAME, EMAIL_CODE_NAME))
    consent = db.session.scalar(select(Consent).where(
        Consent.document_hash == hashlib.sha256(document).digest()))
    try:
        fields = json.loads(document)
    except ValueError:
        fields = {}
    template = consent.template if consent else None
    return VerifyResult(
        seal_intact=check.intact, seal_trusted=check.trusted, signature_ok=signature_ok,
        method=method,
        template_title=template.text(locale)["title"] if template else fields.get("template"),
        version=fields.get("version"), signed_at=fields.get("time"),
        withdrawn=None if consent is None else consent.status == WITHDRAWN,
        language=fields.get("language") if isinstance(fields, dict) else None,
    )


def verify_stored(consent_id: uuid.UUID) -> tuple[bool, str]:
    """`flask consents verify ID`: the evidence alone, ignoring the status column.

    Every part of the stored evidence is checked against something it cannot be changed
    without: the document against its hash and the record, the text against the hash the
    signer signed, the signature against the public key, the passkey it names against the
    registered passkeys, and the whole evidence against the copy sealed into the receipt."""
    from shared.consent_verify import verify_evidence_document, verify_passkey_evidence

    consent = db.session.get(Consent, consent_id)
    if consent is None:
        return False, "no such consent"
    evidence = consent.evidence
    if unb64(evidence["document"]) != consent.document:
        return False, "the stored document differs from the signed document"
    if hashlib.sha256(consent.document).digest() != consent.document_hash:
        return False, "the document hash does not match"
    fields = json.loads(consent.document)
    expected = {"template": consent.template.key, "version": consent.template.version,
                "subject": str(consent.subject_id), "signer": str(consent.signer_account_id),
                "text_sha256": text_hash(consent.template, fields.get("language", "de"))}
    if consent.signer_account_id is None:
        # The signer deleted their account; the kept proof names them in the signed
        # document itself (encrypted and authenticated), which is what is checked below.
        expected.pop("signer")
    for name, value in expected.items():
        if fields.get(name) != value:
            return False, f"the signed document names another {name} than the record"
    if evidence.get("method") != consent.method:
        return False, "the evidence names another signing method than the record"
    if consent.method == CONFIRMATION:
        if consent.status != DECLINED or fields.get("decision") != DECLINED:
            return False, "a confirmation without a signature records only a refusal"
        return True, "a refusal (I do not agree), confirmed with a button: nothing signed"
    if fields.get("decision") is not None:
        return False, "the document records a refusal, not a consent"
    text = verify_evidence_document(evidence)  # the stored text is the text signed
    if not text.ok:
        return False, text.reason
    passkey = None
    if evidence["method"] == PASSKEY:
        signature = verify_passkey_evidence(evidence)
        if not signature.ok:
            return False, signature.reason
        passkey = _named_passkey_signed(consent, evidence)
        if passkey is not None and not passkey[0]:
            return passkey
    sealed = _sealed_evidence_matches(consent, evidence)
    if sealed is not None and not sealed[0]:
        return sealed
    if evidence["method"] == EMAIL_CODE_NAME:
        return True, ("signed with a code sent by email and the typed name (weakest method): "
                      "no signature to check")
    if evidence["method"] != PASSKEY:
        return True, "signed with TOTP and typed name (weaker method): no signature to check"
    if passkey is None and sealed is None:
        return False, ("the passkey the evidence names is no longer registered and there is "
                       "no sealed receipt to compare with")
    return True, signature.reason


def _named_passkey_signed(consent: Consent, evidence: dict) -> tuple[bool, str] | None:
    """Whether the passkey the evidence names is the signer's one with the public key that
    made the signature. The assertion does not sign the credential id, so it is checked
    against the registered passkeys; None when they no longer tell (the passkey is gone)."""
    from shared.models.passkeys import PasskeyCredential

    try:
        credential_id = unb64(evidence["credential_id"])
        public_key = unb64(evidence["public_key"])
    except (KeyError, ValueError, TypeError):
        return False, "the evidence names no passkey"
    named = db.session.scalar(select(PasskeyCredential)
                              .where(PasskeyCredential.credential_id == credential_id))
    if named is not None:
        if named.public_key != public_key:
            return False, "the evidence names another passkey than the one that signed"
        if consent.signer_account_id not in (None, named.account_id):
            return False, "the evidence names a passkey of another account than the signer's"
        return True, "the named passkey signed"
    if consent.signer_account_id is not None and db.session.scalar(
            select(PasskeyCredential.id)
            .where(PasskeyCredential.account_id == consent.signer_account_id)
            .where(PasskeyCredential.public_key == public_key).limit(1)):
        return False, "the evidence names another passkey than the one that signed"
    return None


def _sealed_evidence_matches(consent: Consent, evidence: dict) -> tuple[bool, str] | None:
    """Whether the stored evidence is the evidence sealed into the consent receipt (None
    when there is no receipt). The seal must be the organisation's, as /verify asks: a
    receipt sealed with any other certificate vouches for nothing."""
    from shared.consent_verify import evidence_from_pdf

    receipt = consent.receipt
    if receipt is None:
        return None
    config = current_app.extensions["einblick"].config
    check = seal.check_seal(receipt, seal.load(config).certificate_pem)
    if not check.intact:
        return False, "the sealed receipt was changed after sealing"
    if not check.trusted:
        return False, "the receipt is not sealed with the organisation's certificate"
    sealed = evidence_from_pdf(receipt)
    if sealed is None:
        return False, "the sealed receipt holds no evidence"
    sealed = {name: value for name, value in sealed.items()
              if name not in RECEIPT_ONLY_EVIDENCE}
    if sealed != json.loads(json.dumps(evidence)):
        return False, "the stored evidence differs from the evidence sealed into the receipt"
    return True, "the stored evidence is the sealed evidence"
