"""What a page shows once its reader chose English: the page says so (``<html lang>``),
and no German of the catalogue is left on it untranslated (a text missing from the English
catalogue, or written outside ``_()``, would show the German msgstr's words)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

GERMAN_CATALOGUE = (Path(__file__).resolve().parents[2]
                    / "translations" / "de" / "LC_MESSAGES" / "messages.po")
# A placeholder or markup splits a German text into the fragments a page shows verbatim.
SPLIT = re.compile(r"%\(\w+\)[sd]|%[sd]|<[^>]*>")
# Shorter fragments ("Termin", "Akte") could as well be part of a name or a topic.
SHORTEST = 12


def _words(text: str) -> str:
    return " ".join(text.split())


@lru_cache(maxsize=1)
def german_fragments() -> frozenset[str]:
    """Every German fragment of SHORTEST characters or more that the catalogue puts on a
    page, except those its English text has as well (a name such as "Einblick")."""
    from babel.messages.pofile import read_po

    with GERMAN_CATALOGUE.open("rb") as po:
        catalog = read_po(po, locale="de")
    fragments = set()
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        english = _words(" ".join(ids))
        for text in strings:
            for part in SPLIT.split(text):
                part = _words(part).strip(" .,:;()")
                if len(part) >= SHORTEST and part not in english:
                    fragments.add(part)
    return frozenset(fragments)


def german_on(page, *, written: tuple[str, ...] = ()) -> list[str]:
    """The catalogue's German fragments the page shows; ``written`` are the texts people
    wrote (a German message, a service's German name), which stay as they are and are
    left out of the comparison."""
    seen = _words(f"{page.title()} {page.inner_text('body')}")
    for text in written:
        seen = seen.replace(_words(text), " ")
    return sorted(fragment for fragment in german_fragments() if fragment in seen)


def assert_reads_in_english(page, *, written: tuple[str, ...] = ()) -> None:
    """The page is in English and shows no German of the catalogue (``german_on``)."""
    from playwright.sync_api import expect

    expect(page.locator("html")).to_have_attribute("lang", "en")
    german = german_on(page, written=written)
    assert german == [], f"{page.url} shows German in English: {german}"
