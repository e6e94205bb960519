"""Input normalisation shared by forms, services and the CLI."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidEmail(ValueError):
    pass


def normalise_email(value: str) -> str:
    """A syntactically valid address in normal form (no DNS look-up: no network here)."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    return result.normalized


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
