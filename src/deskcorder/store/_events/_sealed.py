"""Event files encrypted whole with AES-256-GCM under their employee's data key.

File layout (version 1)::

    b"DCEV" | version (1 byte) | key id (16 ASCII hex bytes) | nonce (12 bytes) | ciphertext + 16-byte tag

The associated data is the 33-byte header followed by the file's path relative
to the data dir, so a file cannot be swapped for another employee's, moved to
another date or device folder, or have its key id edited without failing
authentication. Nonces are random: a key encrypts at most a few million files
in its life, far below the 2^32 messages at which random 96-bit nonces start
to risk a repeat.

Why the whole file and not Parquet modular encryption (``pyarrow.parquet.encryption``):

- Our files are small (one per batch and UTC date, a few hundred kB) and are
  always read whole; column projection and predicate push-down on encrypted
  files, the point of modular encryption, buy nothing here.
- One authenticated primitive over every byte (pages, dictionaries, footer,
  statistics) is easy to audit. Modular encryption leaves room for leaks we
  would have to configure away (plaintext footers, page statistics holding
  min/max window titles) and needs a ``KmsClient`` and its own key-material
  format that we would have to keep readable for years.
- Crypto-shredding stays trivial: one key per employee, no per-file key
  material to hunt down.

The price: files are not readable by other Parquet tools without going through
``EventStore``, and a file is decrypted in memory (bounded by the collector's
32 MiB body limit).
"""

from __future__ import annotations

import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._errors import TamperedData

__all__ = ["seal", "unseal", "sealed_key_id", "HEADER_BYTES"]

_MAGIC = b"DCEV"
_VERSION = 1
_KEY_ID_BYTES = 16
_NONCE_BYTES = 12
HEADER_BYTES = len(_MAGIC) + 1 + _KEY_ID_BYTES + _NONCE_BYTES
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")


def seal(plaintext: bytes, key: bytes, key_id: str, rel_path: str) -> bytes:
    if not _KEY_ID.match(key_id):
        raise ValueError(f"key id must be 16 lowercase hex characters, got {key_id!r}")
    header = _MAGIC + bytes([_VERSION]) + key_id.encode("ascii") + os.urandom(_NONCE_BYTES)
    return header + AESGCM(key).encrypt(header[-_NONCE_BYTES:], plaintext, header + rel_path.encode())


def sealed_key_id(data: bytes, rel_path: str) -> str:
    """The key id in a sealed file's header (checked before any decryption is tried)."""
    if len(data) < HEADER_BYTES + 16 or data[:len(_MAGIC)] != _MAGIC:
        raise TamperedData(f"{rel_path} is not an encrypted deskcorder event file (no DCEV header); "
                           f"it was replaced or truncated: restore it from a backup")
    if data[len(_MAGIC)] != _VERSION:
        raise TamperedData(f"{rel_path} uses encryption format version {data[len(_MAGIC)]}; this deskcorder "
                           f"reads version {_VERSION}: upgrade deskcorder")
    return data[len(_MAGIC) + 1:len(_MAGIC) + 1 + _KEY_ID_BYTES].decode("ascii", "replace")


def unseal(data: bytes, key: bytes, key_id: str, rel_path: str) -> bytes:
    found = sealed_key_id(data, rel_path)
    if found != key_id:
        raise TamperedData(f"{rel_path} was encrypted under key {found}, but its employee's key is {key_id}; "
                           f"the file does not belong in this folder: restore it from a backup")
    header = data[:HEADER_BYTES]
    try:
        return AESGCM(key).decrypt(header[-_NONCE_BYTES:], data[HEADER_BYTES:], header + rel_path.encode())
    except InvalidTag as exc:
        raise TamperedData(f"{rel_path} failed authentication: its bytes were altered, it was truncated, "
                           f"or it was moved from another path; restore it from a backup") from exc
