"""The bundled list of common passwords: its size, its pinned checksum, how it is used."""

import gzip
import hashlib
import importlib.util
from pathlib import Path

from shared.auth import passwords

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_common_passwords.py"


def build_script():
    spec = importlib.util.spec_from_file_location("build_common_passwords", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bundled_list_is_the_pinned_one_with_at_least_100000_entries():
    script = build_script()
    assert script.OUTPUT == passwords.COMMON_PASSWORDS_FILE
    text = gzip.decompress(passwords.COMMON_PASSWORDS_FILE.read_bytes())
    assert hashlib.sha256(text).hexdigest() == script.OUTPUT_TEXT_SHA256
    assert len(passwords.common_passwords()) >= 100_000
    assert (passwords.COMMON_PASSWORDS_FILE.parent / "common-passwords.LICENSE").exists()


def test_the_list_is_read_once_and_compared_without_case_and_without_trailing_decoration():
    assert passwords.common_passwords() is passwords.common_passwords()
    assert passwords.is_common("Summer2023!!")
    assert passwords.is_common("PASSWORD")
    assert passwords.is_common("ｐａｓｓｗｏｒｄ１２３")  # fullwidth, NFKC
    assert not passwords.is_common("violet-harbour-lantern-92")
    assert not passwords.is_common("2023!!")  # nothing left but decoration: zxcvbn decides
