"""The organisation's own content (services, consent templates) in the reader's language.

Staff write each service and consent template in German (DEFAULT_LOCALE, required) and,
optionally, in every other configured language. German lives in the columns it always
lived in (``Service.name``, ``.description``, ``.location``; ``ConsentTemplate.texts["de"]``
and ``.purpose``, ``.legal_basis``, ``.audience``); the other languages are in
``Service.translations[locale]`` ({name, description, location}) and
``ConsentTemplate.texts[locale]`` ({title, text, purpose, legal_basis, audience}).

A text missing in the reader's language is shown in German, never silently: ``Shown``
renders it with ``lang="de"`` (so screen readers pronounce it right) and a visible note.
A consent's binding text (title and text) is one language as a whole: the reader's when
it exists, German otherwise, and exactly that language is recorded in the signed document
(``binding_language``, used by ``ConsentTemplate.text`` and ``canonical_document``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from markupsafe import Markup, escape

from shared.config import DEFAULT_LOCALE, SUPPORTED_LOCALES

SERVICE_FIELDS = ("name", "description", "location")
CONSENT_TEXT_FIELDS = ("title", "text")
CONSENT_DETAIL_FIELDS = ("purpose", "legal_basis", "audience")


def current_locale() -> str:
    """The language pages and emails are being written in (emails: the recipient's, as
    shared.mail renders them under force_locale)."""
    from flask_babel import get_locale

    try:
        locale = str(get_locale() or DEFAULT_LOCALE)
    except RuntimeError:  # no application context
        locale = DEFAULT_LOCALE
    return locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE


def language_name(locale: str) -> str:
    """A language by its own name ("Türkçe"), as the language switch names it."""
    from shared.i18n import LANGUAGE_NAMES

    return LANGUAGE_NAMES.get(locale, locale)


@dataclass(frozen=True)
class Shown:
    """One text as shown: its words, the language they are in, and the language asked
    for. ``str()`` is the bare text; in HTML a German fallback carries ``lang="de"`` and
    a short visible note, ``note`` is the full sentence for a page's main content."""

    text: str
    language: str
    wanted: str

    @property
    def fallback(self) -> bool:
        return bool(self.text) and self.language != self.wanted

    def __str__(self) -> str:
        return self.text

    def __bool__(self) -> bool:
        return bool(self.text)

    def __html__(self) -> str:
        if not self.fallback:
            return str(escape(self.text))
        return str(Markup('<span lang="{}" dir="ltr">{}</span> '
                          '<small class="content-fallback">{}</small>')
                   .format(self.language, self.text, self.short_note))

    @property
    def short_note(self) -> str:
        """"(in German)", in the reader's language; empty when nothing fell back."""
        return _("(in German)") if self.fallback else ""

    @property
    def note(self) -> str:
        """"Not available in Türkçe – shown in German."; empty when nothing fell back."""
        if not self.fallback:
            return ""
        return _("Not available in %(language)s – shown in German.",
                 language=language_name(self.wanted))

    @property
    def plain(self) -> str:
        """For plain text (emails): the text, with "(in German)" after a fallback."""
        return f"{self.text} {self.short_note}" if self.fallback else self.text

    @property
    def lang(self) -> str:
        """For a lang attribute on an element holding only this text."""
        return self.language


# -- services --------------------------------------------------------------------------------
def service_text(service, field: str, locale: str | None = None) -> Shown:
    """A service's name, description or location in ``locale`` (default: the current
    language), German when that language has none."""
    if field not in SERVICE_FIELDS:
        raise ValueError(field)
    wanted = locale or current_locale()
    german = getattr(service, field) or ""
    if wanted != DEFAULT_LOCALE:
        value = ((service.translations or {}).get(wanted) or {}).get(field) or ""
        if value:
            return Shown(value, wanted, wanted)
        if not german:
            return Shown("", wanted, wanted)
    return Shown(german, DEFAULT_LOCALE, wanted)


class LazyServiceText:
    """A service's text picked when it is written out, e.g. in an email rendered later
    in the recipient's language (shared.mail). Plain text: a fallback says "(in German)"."""

    def __init__(self, service, field: str) -> None:
        self._values = {"translations": dict(service.translations or {}),
                        **{name: getattr(service, name) for name in SERVICE_FIELDS}}
        self._field = field

    def shown(self) -> Shown:
        return service_text(_Values(self._values), self._field)

    def __str__(self) -> str:
        return self.shown().plain

    def __bool__(self) -> bool:
        return bool(self._values[self._field] or self._values["translations"])

    def __html__(self) -> str:
        return self.shown().__html__()


class _Values:
    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)


def service_translations(service) -> dict[str, dict[str, str]]:
    """Every language's fields as staff wrote them (German from the columns)."""
    result = {DEFAULT_LOCALE: {f: getattr(service, f) or "" for f in SERVICE_FIELDS}}
    for locale, values in (service.translations or {}).items():
        result[locale] = {f: (values or {}).get(f) or "" for f in SERVICE_FIELDS}
    return result


# -- consent templates -------------------------------------------------------------------------
def binding_language(template, locale: str) -> str:
    """The language of the consent text shown and signed for a reader of ``locale``: theirs
    when the template has a text in it, German otherwise."""
    entry = (template.texts or {}).get(locale)
    return locale if entry and entry.get("text") else DEFAULT_LOCALE


@dataclass(frozen=True)
class ConsentShown:
    """A consent template as shown: title and text in the binding language (one language,
    as signed), purpose, legal basis and audience each in the reader's language or
    German."""

    language: str
    wanted: str
    title: Shown
    text: Shown
    purpose: Shown
    legal_basis: Shown
    audience: Shown

    @property
    def fallback(self) -> bool:
        return self.language != self.wanted

    @property
    def note(self) -> str:
        return self.title.note


def consent_text(template, locale: str | None = None) -> ConsentShown:
    wanted = locale or current_locale()
    language = binding_language(template, wanted)
    texts = template.texts or {}
    binding = texts.get(language) or {}
    own = texts.get(wanted) or {}

    def detail(field: str) -> Shown:
        value = own.get(field) or "" if wanted != DEFAULT_LOCALE else ""
        if value:
            return Shown(value, wanted, wanted)
        return Shown(getattr(template, field) or "", DEFAULT_LOCALE, wanted)

    return ConsentShown(language=language, wanted=wanted,
                        title=Shown(binding.get("title") or "", language, wanted),
                        text=Shown(binding.get("text") or "", language, wanted),
                        **{field: detail(field) for field in CONSENT_DETAIL_FIELDS})


def consent_title(template, locale: str | None = None) -> str:
    """The title as plain text (lists in my data, emails)."""
    return consent_text(template, locale).title.text or template.key


def consent_translations(template) -> dict[str, dict[str, str]]:
    """Every language's fields as staff wrote them (German details from the columns)."""
    fields = CONSENT_TEXT_FIELDS + CONSENT_DETAIL_FIELDS
    result = {}
    for locale, values in (template.texts or {}).items():
        result[locale] = {f: (values or {}).get(f) or "" for f in fields}
    german = result.setdefault(DEFAULT_LOCALE, {f: "" for f in fields})
    for field in CONSENT_DETAIL_FIELDS:
        german[field] = getattr(template, field) or ""
    return result


def install(app) -> None:
    """Template filters: ``service|shown('name')``, ``template|consent_shown``."""
    app.jinja_env.filters["shown"] = lambda service, field: service_text(service, field)
    app.jinja_env.filters["consent_shown"] = lambda template: consent_text(template)
    from shared.i18n import text_direction

    app.add_template_global(language_name, "language_name")
    app.add_template_global(text_direction, "direction_of")
