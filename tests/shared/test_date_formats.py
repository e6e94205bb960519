"""One date format per language: no seconds, no ISO, English in the European order."""

import re
from datetime import UTC, date, datetime

import pytest
from flask import render_template_string

MOMENT = datetime(2026, 12, 1, 13, 5, 33, tzinfo=UTC)  # 14:05:33 in Berlin
TEMPLATE = ("{{ m|datetimeformat }}|{{ m|datetimeformat('short') }}|"
            "{{ m|datetimeformat('medium') }}|{{ m|dateformat('short') }}|"
            "{{ m|dateformat('medium') }}|{{ d|dateformat('long') }}|{{ m|timeformat('short') }}|"
            "{{ m|timeformat('medium') }}|{{ m|appointment }}")


@pytest.mark.parametrize(("language", "expected"), [
    ("de", ["01.12.2026, 14:05"] * 3 + ["01.12.2026"] * 2 + ["1. Dezember 2026"]
     + ["14:05"] * 2 + ["Dienstag, 1. Dezember 2026, 14:05"]),
    ("en", ["1 Dec 2026, 14:05"] * 3 + ["1 Dec 2026"] * 2 + ["1 December 2026"]
     + ["14:05"] * 2 + ["Tuesday, 1 December 2026, 14:05"]),
    ("tr", ["1 Ara 2026 14:05"] * 3 + ["1 Ara 2026"] * 2 + ["1 Aralık 2026"]
     + ["14:05"] * 2 + ["1 Aralık 2026 Salı 14:05"]),
    ("uk", ["1 груд. 2026\u202fр., 14:05"] * 3 + ["1 груд. 2026\u202fр."] * 2
     + ["1 грудня 2026\u202fр."] + ["14:05"] * 2 + ["вівторок, 1 грудня 2026\u202fр., 14:05"]),
    # Arabic: day before month, its own comma, the 12-hour clock with م (afternoon).
    ("ar", ["01\u200f/12\u200f/2026، 2:05 م"] * 3 + ["01\u200f/12\u200f/2026"] * 2
     + ["1 ديسمبر 2026"] + ["2:05 م"] * 2 + ["الثلاثاء، 1 ديسمبر 2026، 2:05 م"]),
])
def test_every_date_filter_writes_one_format_per_language(app, language, expected):
    with app.test_request_context(headers={"Accept-Language": language}):
        rendered = render_template_string(TEMPLATE, m=MOMENT, d=date(2026, 12, 1))
    assert rendered.split("|") == expected


US_SHORT_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b")
WITH_SECONDS = re.compile(r"\b\d{1,2}:\d{2}:\d{2}\b")
ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2})?")
TWELVE_HOURS = re.compile(r"\b\d{1,2}:\d{2}\s?[AP]M\b")


def machine_dates(text: str) -> list[str]:
    """Dates and times a person should not have to read."""
    return [match.group(0) for pattern in (US_SHORT_DATE, WITH_SECONDS, ISO, TWELVE_HOURS)
            for match in pattern.finditer(text)]


def test_machine_dates_are_found():
    assert machine_dates("am 12/1/26, 2:05 PM, 14:05:33 und 2026-12-01T13:05") == [
        "12/1/26", "14:05:33", "2026-12-01T13:05", "2:05 PM"]
    assert machine_dates("1 Dec 2026, 14:05 · 01.12.2026") == []
