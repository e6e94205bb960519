"""Languages. The locale is chosen in this order, first match wins:

1. an explicit choice (the language switch, remembered in a cookie),
2. the signed-in account's setting,
3. the first supported language in the browser's Accept-Language,
4. German.
"""

from __future__ import annotations

from functools import lru_cache

from flask import request
from flask_login import current_user

from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES

LANG_COOKIE = "einblick_lang"
# Each language by its own name, as its speakers look for it in a list.
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English", "tr": "Türkçe", "ar": "العربية",
                  "uk": "Українська"}
RTL_LOCALES = frozenset({"ar"})


def select_locale() -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in SUPPORTED_LOCALES:
        return chosen
    signed_in = getattr(current_user, "is_authenticated", False)
    if signed_in and current_user.locale in SUPPORTED_LOCALES:
        return current_user.locale
    for language, _quality in request.accept_languages:
        primary = language.split("-")[0].lower()
        if primary in SUPPORTED_LOCALES:
            return primary
    return DEFAULT_LOCALE


def text_direction(locale: str) -> str:
    return "rtl" if locale in RTL_LOCALES else "ltr"


# -- dates and times: one format per purpose and language -----------------------------------
# Babel's English is American ("12/1/26, 2:05 PM"); people here read English dates in the
# European order and the 24-hour clock, as British English writes them. Seconds are never
# shown. Templates keep using Flask-Babel's filter names (datetimeformat, dateformat,
# timeformat), which install_date_filters points here:
#   datetimeformat  "01.12.2026, 14:05"            / "1 Dec 2026, 14:05"
#   dateformat      medium "01.12.2026"            / "1 Dec 2026" (short is the same);
#                   long "1. Dezember 2026"         / "1 December 2026"; full with weekday
#   timeformat      "14:05"
#   appointment     "Dienstag, 1. Dezember 2026, 14:05" / "Tuesday, 1 December 2026, 14:05"
# Turkish, Arabic and Ukrainian follow Babel's (CLDR's) forms of their language: Turkish
# "1 Aralık 2026 Salı 14:05", Ukrainian "1 груд. 2026 р., 14:05", Arabic day before month
# with its own comma and its 12-hour clock ("2:05 م"), in the digits used here (0-9).
FORMATTING_LOCALES = {"en": "en_GB"}


def formatting_locale():
    """The Babel locale dates are written in for the current language."""
    return _parsed_locale(_formatting_identifier())


def _formatting_identifier() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    identifier = DEFAULT_LOCALE if locale is None else str(locale)
    return FORMATTING_LOCALES.get(identifier, identifier)


@lru_cache(maxsize=32)
def _parsed_locale(identifier: str):
    """Babel's locale of that name, parsed once per process (parsing takes 15 µs, and a
    page like "my data" writes a hundred dates); locale data, nothing of anyone's."""
    from babel import Locale

    return Locale.parse(identifier)


def _local(value):
    """A datetime in the organisation's time zone (naive values are UTC)."""
    from flask_babel import to_user_timezone

    return to_user_timezone(value)


# The words of a day and of a clock time, once per language: an access log or an export
# writes the same few days and minutes thousands of times (an export of 50,000 events
# spent two thirds of its time in Babel). Only moments are kept (days of timestamps,
# hours and minutes), never a date someone entered such as a birth date; bounded.
@lru_cache(maxsize=4096)
def _day_words(day, width: str, identifier: str) -> str:
    from babel import dates

    return dates.format_date(day, width, locale=_parsed_locale(identifier))


@lru_cache(maxsize=2048)
def _clock_words(hour: int, minute: int, identifier: str) -> str:
    from datetime import time

    from babel import dates

    return dates.format_time(time(hour, minute), "short", locale=_parsed_locale(identifier))


def format_day(value, width: str = "medium") -> str:
    """A date (or the date of a datetime, in local time): medium, long or full."""
    from datetime import datetime

    from babel import dates

    if value is None:
        return ""
    width = "medium" if width == "short" else width
    if isinstance(value, datetime):
        return _day_words(_local(value).date(), width, _formatting_identifier())
    return dates.format_date(value, width, locale=formatting_locale())


def format_clock(value, _width: str = "short") -> str:
    """A time of day in local time, hours and minutes."""
    from datetime import datetime

    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _local(value)
    return _clock_words(value.hour, value.minute, _formatting_identifier())


def _date_and_time(day: str, clock: str, identifier: str | None = None) -> str:
    """A date and a time joined as the language joins them ("…, 14:05"; Turkish without
    the comma, Arabic with its own)."""
    locale = _parsed_locale(identifier) if identifier else formatting_locale()
    return str(locale.datetime_formats["medium"]).format(clock, day)


def format_when(value, _width: str = "medium") -> str:
    """A moment: the date and the time of day, in local time, without seconds."""
    if value is None:
        return ""
    local, identifier = _local(value), _formatting_identifier()
    return _date_and_time(_day_words(local.date(), "medium", identifier),
                          _clock_words(local.hour, local.minute, identifier), identifier)


def moment_writer():
    """``format_when`` for the many moments of one request (an export's access log): the
    language, its date-and-time pattern and the time zone are looked up once, not for
    every value; the same words as ``format_when``."""
    from datetime import UTC

    from flask_babel import get_timezone

    identifier = _formatting_identifier()
    zone = get_timezone()
    pattern = str(_parsed_locale(identifier).datetime_formats["medium"])
    normalize = getattr(zone, "normalize", lambda value: value)  # pytz zones

    def write(value) -> str:
        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        local = normalize(value.astimezone(zone))
        return pattern.format(_clock_words(local.hour, local.minute, identifier),
                              _day_words(local.date(), "medium", identifier))

    return write


def format_appointment(value) -> str:
    """An appointment: weekday, date and time, as in a letter."""
    if value is None:
        return ""
    return _date_and_time(format_day(value, "full"), format_clock(value))


def install_date_filters(app) -> None:
    """Point the date filters of every template at the formats above (after Babel's
    init_app, which installs its own under the same names)."""
    app.jinja_env.filters.update(datetimeformat=format_when, dateformat=format_day,
                                 timeformat=format_clock, appointment=format_appointment)
