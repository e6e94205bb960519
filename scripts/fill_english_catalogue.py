"""Fill translations/en: message ids are English, so each English text is its id."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "translations/en/LC_MESSAGES/messages.po"


def main() -> int:
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            message.string = tuple(message.id)
        else:
            message.string = message.id
        message.flags.discard("fuzzy")
    with PO.open("wb") as fh:
        write_po(fh, catalog, sort_output=True, omit_header=False, width=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
