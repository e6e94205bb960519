"""Bidirectional text: what a person typed, and machine-like values, keep their place in a
sentence whatever the page's direction.

In an Arabic page a Latin name or an email address next to a full stop or a number can
pull neighbouring characters into its own direction and reorder the sentence ("Mia Demir."
shown as ".Mia Demir", "+49 30 1234" as "1234 30 49+"). Templates wrap such values:

    {{ person.full_name|bdi }}            names and anything a user wrote: <bdi>, its
                                          direction taken from its own first letters
    {{ account.email|ltr }}               emails, phone numbers, codes, IBAN-like values,
                                          file names: always left to right, isolated
    {{ _("Hello %(name)s", name=person.full_name|bdi) }}
                                          inside a translated sentence: the value is
                                          escaped here and the markup survives _()

Both escape the value (Markup.format), so user input is never marked safe unescaped.
"""

from __future__ import annotations

from markupsafe import Markup


def isolate(value) -> Markup | str:
    """A name or other user content, isolated with <bdi> (its direction from its text)."""
    if value is None or value == "":
        return ""
    return Markup("<bdi>{}</bdi>").format(value)


def left_to_right(value) -> Markup | str:
    """An email address, phone number, code or file name: isolated, left to right."""
    if value is None or value == "":
        return ""
    return Markup('<bdi dir="ltr">{}</bdi>').format(value)


def install(app) -> None:
    """The |bdi and |ltr filters."""
    app.jinja_env.filters.update(bdi=isolate, ltr=left_to_right)
