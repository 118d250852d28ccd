"""Pseudonymous ids for datasets: keyed HMAC, so ids are stable inside one key and useless outside it.

``Pseudonymizer(key, key_id).pseudonym("person", "alice")`` is
``"p_" + hex(HMAC-SHA256(key, "person\\x00alice"))[:20]``: the same employee
gets the same id in every dataset built with that key, so sessions can be
grouped per person without the dataset ever holding a name. The kind is part of
the MAC input, so a device and a person that happen to share a string get
unrelated ids. 80 bits of hex makes a collision between two of a company's
ids astronomically unlikely (birthday bound ~10^12 ids) while staying short.

Why keyed and not a plain hash: employee handles, hostnames and device ids are
guessable; ``sha256("alice")`` can be reversed by trying every name in the
directory. Without the key nobody, including the dataset's recipient, can
compute or test a pseudonym.

Key file and rotation
---------------------
The key lives in ``<data_dir>/pseudonym.key`` (JSON: version, key_id, base64
key, created), created on first use with mode 0600 by an atomic
write-then-link, so two builds racing at first start agree on one key. Put the
key id in the dataset statistics (`Pseudonymizer.key_id`): it tells which
datasets can be joined on pseudonyms.

To rotate, call ``Pseudonymizer.rotate(path)`` (or delete the file; the next
build creates a new one). A new key gets a new key id and every pseudonym
changes: datasets built before and after cannot be linked to each other, by
anyone. The old key is overwritten, not archived, on purpose: keeping it would
keep the ability to re-link. Rotate when a dataset leaves the company, when
someone with access to the data dir leaves, or on a schedule (e.g. yearly).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from pathlib import Path

from .._errors import DeskcorderError

__all__ = ["KIND_PREFIXES", "PseudonymKeyError", "Pseudonymizer"]

KEY_BYTES = 32
DIGEST_HEX_CHARS = 20
# Short prefixes for the kinds the dataset uses; any other kind is its own prefix.
KIND_PREFIXES = {"person": "p", "device": "d", "session": "s", "host": "h", "user": "u", "app": "a"}
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class PseudonymKeyError(DeskcorderError):
    """The pseudonym key file is unreadable, malformed or readable by other users."""


class Pseudonymizer:
    def __init__(self, key: bytes, key_id: str) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"pseudonym key must be at least {KEY_BYTES} bytes, got {len(key)}")
        if not key_id:
            raise ValueError("key_id must be a non-empty string naming this key in dataset statistics")
        self._key = bytes(key)
        self.key_id = key_id

    def __repr__(self) -> str:  # never print the key
        return f"Pseudonymizer(key_id={self.key_id!r})"

    def pseudonym(self, kind: str, value: str) -> str:
        """``<prefix>_<20 hex>``; stable for (key, kind, value)."""
        if not _KIND_RE.match(kind):
            raise ValueError(f"pseudonym kind {kind!r} must be lowercase letters/digits, e.g. 'person'")
        mac = hmac.new(self._key, kind.encode() + b"\x00" + value.encode("utf-8"), hashlib.sha256)
        return f"{KIND_PREFIXES.get(kind, kind)}_{mac.hexdigest()[:DIGEST_HEX_CHARS]}"

    # -- key file ----------------------------------------------------------------------------

    @classmethod
    def generate(cls) -> Pseudonymizer:
        key = secrets.token_bytes(KEY_BYTES)
        return cls(key, _key_id(key))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, create: bool = True) -> Pseudonymizer:
        """Load the key at ``path``; create it (0600, atomically) when missing and ``create``."""
        path = Path(path)
        if not path.exists():
            if not create:
                raise PseudonymKeyError(f"no pseudonym key at {path}; build a dataset once to create it")
            _write_key(path, cls.generate(), replace=False)
        return _read_key(cls, path)

    @classmethod
    def rotate(cls, path: str | os.PathLike[str]) -> Pseudonymizer:
        """Replace the key at ``path`` with a fresh one; returns it. Old pseudonyms become unlinkable."""
        new = cls.generate()
        _write_key(Path(path), new, replace=True)
        return new


def _key_id(key: bytes) -> str:
    # A fingerprint, not a counter: it identifies the key without revealing it and
    # needs no state to stay unique across rotations.
    return "k" + hashlib.sha256(b"deskcorder pseudonym key id\x00" + key).hexdigest()[:12]


def _write_key(path: Path, p: Pseudonymizer, *, replace: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": 1,
        "key_id": p.key_id,
        "key": base64.b64encode(p._key).decode(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if another process created the key first: keep theirs
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)


def _read_key(cls: type[Pseudonymizer], path: Path) -> Pseudonymizer:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PseudonymKeyError(
            f"pseudonym key {path} is accessible by other users (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    try:
        doc = json.loads(path.read_text())
        key = base64.b64decode(doc["key"], validate=True)
        key_id = doc["key_id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PseudonymKeyError(
            f"pseudonym key {path} is malformed ({type(exc).__name__}); restore it from backup, or "
            f"call Pseudonymizer.rotate() to start unlinkable new pseudonyms"
        ) from exc
    if key_id != _key_id(key):
        raise PseudonymKeyError(f"pseudonym key {path}: key_id {key_id!r} does not match the key; file was edited")
    return cls(key, key_id)
