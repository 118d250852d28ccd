"""Keys: one random data key per employee, stored only wrapped by a master key.

The master key sits behind ``KeyWrapper`` (wrap/unwrap a 256-bit data key and
say which master key it is), so an embedded install keeps it in a file and a
fleet install can put it in a KMS or HSM without the store changing:

- ``FileMasterKey``: ``<data_dir>/master.key``, 32 random bytes in base64,
  created 0600 on first use. Back it up apart from the data: without it no
  event can be read; with it and a copy of the database, everything can.
  It is created only for a store that has no data keys yet: when the file is
  missing from a store that has them (it was moved off-site, and the
  environment variable is not set in this shell), a new key would open
  nothing and would wrap new employees' keys under a key the collector does
  not have. So it stays missing, and only what needs it (reading events,
  adding an employee) fails, saying how to fix it; audit, erasure and
  retention work without it.
- ``DESKCORDER_MASTER_KEY`` (base64 of 32 bytes) in the environment, when set,
  takes precedence (``default_key_wrapper``).

Wrapping is RFC 3394 AES key wrap (``cryptography``'s keywrap), which is
deterministic and authenticated: unwrapping with the wrong master key fails
instead of yielding a wrong key. Destroying an employee's wrapped key
(erasure) makes every file encrypted under it unreadable for good, wherever
copies of those files went.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
import uuid
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from .._errors import StoreError

__all__ = ["KeyWrapper", "StaticMasterKey", "FileMasterKey", "MASTER_KEY_ENV", "MASTER_KEY_FILE",
           "default_key_wrapper", "new_data_key", "new_key_id"]

MASTER_KEY_ENV = "DESKCORDER_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
_KEY_BYTES = 32  # AES-256


@runtime_checkable
class KeyWrapper(Protocol):
    """What the store needs from a master key (a file, an env var, or a KMS client)."""

    @property
    def key_id(self) -> str:
        """A stable, non-secret name of this master key, stored next to every key it wraps."""
        ...

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes:
        """The data key; raises StoreError when this master key did not wrap it."""
        ...


def new_data_key() -> bytes:
    return secrets.token_bytes(_KEY_BYTES)


def new_key_id() -> str:
    return secrets.token_hex(8)


class StaticMasterKey:
    """A master key held in memory (from the environment, or loaded by ``FileMasterKey``)."""

    def __init__(self, key: bytes, *, source: str = "memory"):
        if len(key) != _KEY_BYTES:
            raise StoreError(f"the master key from {source} is {len(key)} bytes; it must be {_KEY_BYTES} "
                             f"(generate one with: python -c 'import os, base64; "
                             f"print(base64.b64encode(os.urandom(32)).decode())')")
        self._key = key
        self._source = source
        # Derived, not the key: names it in the database without revealing anything.
        self._id = "mk-" + hashlib.sha256(b"deskcorder master key id\x00" + key).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        return self._id

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self._key, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._key, wrapped)
        except InvalidUnwrap as exc:
            raise StoreError(f"the master key {self._id} (from {self._source}) did not wrap this data key; "
                             f"use the master key the store was created with") from exc

    @classmethod
    def from_base64(cls, text: str, *, source: str) -> StaticMasterKey:
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StoreError(f"the master key from {source} is not valid base64: {exc}") from exc
        return cls(key, source=source)


class FileMasterKey:
    """The master key in a file (``<data_dir>/master.key``), created 0600 on first use when ``create``.

    Without ``create``, a missing file is an error only once the key is used.
    """

    def __init__(self, path: Path | str, *, create: bool = True):
        self.path = Path(path)
        self._create = create
        self._loaded: StaticMasterKey | None = None
        if create or self.path.exists():
            self._load()

    def _load(self) -> StaticMasterKey:
        if self._loaded is None:
            if not self._create and not self.path.exists():
                raise StoreError(f"the master key {self.path} is missing, and this store's data keys were wrapped "
                                 f"by it: restore it from your backup, or set {MASTER_KEY_ENV} (a new master key "
                                 f"would open nothing)")
            try:
                text = _read_or_create(self.path)
            except OSError as exc:
                raise StoreError(f"cannot read or create the master key {self.path}: {exc.strerror or exc}") from exc
            self._loaded = StaticMasterKey.from_base64(text, source=str(self.path))
        return self._loaded

    @property
    def key_id(self) -> str:
        return self._load().key_id

    def wrap(self, data_key: bytes) -> bytes:
        return self._load().wrap(data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        return self._load().unwrap(wrapped)


def _read_or_create(path: Path) -> str:
    try:
        return _read_private(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(new_data_key()).decode() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # link, not rename: it fails when another process created the key first, and
            # then we use theirs; the name only ever points at a complete file.
            os.link(tmp, path)
        except FileExistsError:
            pass
        dir_fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_private(path)


def _read_private(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StoreError(f"{path} can be read by other users (mode {stat.S_IMODE(mode):o}); "
                         f"run: chmod 600 {path}")
    return path.read_text()


def default_key_wrapper(data_dir: Path, *, create: bool = True) -> KeyWrapper:
    """``DESKCORDER_MASTER_KEY`` when set, else ``<data_dir>/master.key`` (created on first use if ``create``:
    pass False when the store already holds data keys, see the module docstring)."""
    text = os.environ.get(MASTER_KEY_ENV)
    if text:
        return StaticMasterKey.from_base64(text, source=f"${MASTER_KEY_ENV}")
    try:
        return FileMasterKey(data_dir / MASTER_KEY_FILE, create=create)
    except OSError as exc:
        raise StoreError(f"cannot read or create the master key {data_dir / MASTER_KEY_FILE}: "
                         f"{exc.strerror or exc}") from exc
