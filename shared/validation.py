"""Input normalisation shared by forms, services and the CLI."""

from __future__ import annotations

import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidEmail(ValueError):
    pass


# Full stops that input methods type in place of "." (NFKC maps U+FF0E to "." and U+FF61
# to U+3002, but U+3002 to nothing).
_FULL_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def _prepare_email(value: str) -> str:
    return unicodedata.normalize("NFKC", value).translate(_FULL_STOPS).strip()


def normalise_email(value: str) -> str:
    """A syntactically valid address in normal form (no DNS look-up: no network here).

    NFKC first (fullwidth "ｍｉａ" is "mia"), ideographic full stops as ".", then
    email-validator: the domain through IDNA (UTS 46: lower case, "xn--" labels shown as
    Unicode). The local part keeps its case, as mail servers may treat it so."""
    try:
        result = validate_email(_prepare_email(value), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    return result.normalized


def email_identity(value: str) -> str:
    """The one form that every way of writing an address shares: ``normalise_email``
    case-folded ("Mia@Example.org", "mia@example。org", "ｍｉａ@example.org" and
    "mia@xn--…" style variants are equal). Rate limits count per this form; an invalid
    address is only prepared and case-folded."""
    try:
        return normalise_email(value).casefold()
    except InvalidEmail:
        return _prepare_email(value).casefold()


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str) -> str:
    """E.164 form of a phone number (default region Germany); raises InvalidPhone."""
    try:
        number = phonenumbers.parse(raw, "DE")
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(raw) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
