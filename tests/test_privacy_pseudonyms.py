"""Pseudonymous ids: keyed HMAC, stable per key, unlinkable across keys, key file kept private."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import stat

import pytest

from deskcorder import privacy
from deskcorder.privacy import Pseudonymizer, PseudonymKeyError

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


def test_public_privacy_api_is_exactly_this():
    assert sorted(privacy.__all__) == ["FrameRedaction", "FrameRedactor", "PLACEHOLDERS", "PseudonymKeyError", "Pseudonymizer", "Redactor", "Span",
                                       "anonymise_keystrokes", "anonymise_pointer"]


def test_same_key_same_value_gives_the_same_kind_prefixed_pseudonym():
    a, again = Pseudonymizer(KEY_A, "k1"), Pseudonymizer(KEY_A, "k1")
    p = a.pseudonym("person", "alice")
    assert p == again.pseudonym("person", "alice")
    assert re.fullmatch(r"p_[0-9a-f]{20}", p)
    assert re.fullmatch(r"d_[0-9a-f]{20}", a.pseudonym("device", "9f1c-laptop"))
    assert a.pseudonym("person", "bob") != p


def test_a_different_key_gives_unrelated_pseudonyms():
    assert Pseudonymizer(KEY_A, "k1").pseudonym("person", "alice") != Pseudonymizer(KEY_B, "k2").pseudonym(
        "person", "alice"
    )


def test_kinds_are_separated_even_for_the_same_value():
    p = Pseudonymizer(KEY_A, "k1")
    person, host = p.pseudonym("person", "alice"), p.pseudonym("host", "alice")
    assert person.split("_")[1] != host.split("_")[1]
    # The MAC input is kind + NUL + value; a kind can hold no NUL, so no two (kind, value) pairs share an input.
    for bad_kind in ("Person Name", "user\x00x", ""):
        with pytest.raises(ValueError, match="kind"):
            p.pseudonym(bad_kind, "alice")


def test_pseudonym_contains_no_part_of_the_raw_value():
    p = Pseudonymizer(KEY_A, "k1")
    for kind, value in [("person", "alice.smith"), ("host", "ws-0423"), ("user", "jdoe"), ("device", "ABCDEF123")]:
        out = p.pseudonym(kind, value).lower()
        assert value.lower() not in out
        assert not any(part in out for part in re.split(r"[.\-]", value.lower()) if len(part) >= 4)


def test_key_shorter_than_32_bytes_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        Pseudonymizer(b"short", "k1")


def test_key_file_is_created_private_and_reused_from_disk(tmp_path):
    path = tmp_path / "data" / "pseudonym.key"
    first = Pseudonymizer.from_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["key_id"] == first.key_id and doc["version"] == 1
    reopened = Pseudonymizer.from_file(path)
    assert reopened.key_id == first.key_id
    assert reopened.pseudonym("person", "alice") == first.pseudonym("person", "alice")
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temp files left behind


def test_missing_key_file_without_create_says_how_to_get_one(tmp_path):
    with pytest.raises(PseudonymKeyError, match="build a dataset once"):
        Pseudonymizer.from_file(tmp_path / "pseudonym.key", create=False)


def test_key_file_readable_by_others_is_refused_with_the_chmod_to_run(tmp_path):
    path = tmp_path / "pseudonym.key"
    Pseudonymizer.from_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(PseudonymKeyError, match=f"chmod 600 {re.escape(str(path))}"):
        Pseudonymizer.from_file(path)


def test_edited_or_corrupt_key_file_is_refused(tmp_path):
    path = tmp_path / "pseudonym.key"
    Pseudonymizer.from_file(path)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "key_id": "k000000000000"}))
    with pytest.raises(PseudonymKeyError, match="does not match"):
        Pseudonymizer.from_file(path)
    path.write_text("{not json")
    with pytest.raises(PseudonymKeyError, match="rotate"):
        Pseudonymizer.from_file(path)


def test_rotation_gives_a_new_key_id_and_unlinkable_pseudonyms(tmp_path):
    path = tmp_path / "pseudonym.key"
    old = Pseudonymizer.from_file(path)
    new = Pseudonymizer.rotate(path)
    assert new.key_id != old.key_id
    assert new.pseudonym("person", "alice") != old.pseudonym("person", "alice")
    assert Pseudonymizer.from_file(path).key_id == new.key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _load_key_id(path: str) -> str:
    return Pseudonymizer.from_file(path).key_id


def test_processes_racing_to_create_the_key_agree_on_one(tmp_path):
    path = str(tmp_path / "pseudonym.key")
    with concurrent.futures.ProcessPoolExecutor(max_workers=4) as pool:
        key_ids = set(pool.map(_load_key_id, [path] * 8))
    assert len(key_ids) == 1


def test_repr_never_shows_the_key():
    p = Pseudonymizer(KEY_A, "k1")
    assert repr(p) == "Pseudonymizer(key_id='k1')"
