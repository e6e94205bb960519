"""Languages. The locale is chosen in this order, first match wins:

1. an explicit choice (the language switch, remembered in a cookie),
2. the signed-in account's setting,
3. the first supported language in the browser's Accept-Language,
4. German.
"""

from __future__ import annotations

from flask import request
from flask_login import current_user

from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES

LANG_COOKIE = "einblick_lang"
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English"}
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
