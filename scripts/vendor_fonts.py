"""Vendor the receipts' font: DejaVu Sans (regular and bold) from Debian's fonts-dejavu-core,
cut down to the scripts Einblick writes (Latin, Cyrillic, Arabic, punctuation) with its
layout tables kept, so that text shaping joins Arabic letters. Writes shared/fonts/ and
SOURCES.txt with the version and SHA-256 of every file. Run again to update:

    apt-get install fonts-dejavu-core && .venv/bin/python scripts/vendor_fonts.py
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

SOURCE = Path("/usr/share/fonts/truetype/dejavu")
LICENCE = Path("/usr/share/doc/fonts-dejavu-core/copyright")
TARGET = Path(__file__).resolve().parent.parent / "shared" / "fonts"
FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
UNICODES = (
    "U+0000-024F,U+0300-036F,"  # Latin, Latin-1, Latin Extended A/B (Turkish), combining marks
    "U+0400-04FF,"  # Cyrillic (Ukrainian: є і ї ґ)
    "U+0600-06FF,U+0750-077F,U+FB50-FDFF,U+FE70-FEFF,"  # Arabic and its presentation forms
    "U+2000-206F,U+20AC,U+2116,U+2122,U+2190-2193,U+2212,U+25CC"  # punctuation, €, №, arrows
)


def main() -> int:
    TARGET.mkdir(exist_ok=True)
    lines = []
    for name in FILES:
        options = subset.Options()
        options.layout_features = ["*"]  # keep every shaping feature (init, medi, fina, liga...)
        options.name_IDs = ["*"]
        options.notdef_outline = True
        font = TTFont(SOURCE / name)
        version = font["name"].getDebugName(5)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=subset.parse_unicodes(UNICODES))
        subsetter.subset(font)
        font.save(TARGET / name)
        digest = hashlib.sha256((TARGET / name).read_bytes()).hexdigest()
        lines.append(f"{name}  DejaVu Sans {version}, Debian fonts-dejavu-core, "
                     f"subset {UNICODES}  sha256 {digest}")
    shutil.copyfile(LICENCE, TARGET / "LICENSE-DejaVu.txt")
    (TARGET / "SOURCES.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
