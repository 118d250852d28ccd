"""Files only their owner can read: the data dir 0700, every file in it 0600, whatever the umask.

The data dir holds the control database (hostnames, consent history, password
and secret hashes, wrapped data keys), the master key and the encrypted event
files. A umask of 022 made them 0644 in a 0755 folder, readable by every local
user. So modes are set explicitly, never left to the umask: folders are
created and then ``chmod`` 0700 (``mkdir``'s mode is masked by the umask),
files are created with ``os.open(..., 0o600)`` and ``fchmod`` 0600 (the same
mask, and an existing file keeps its mode through ``O_CREAT``).

SQLite creates ``control.db-wal`` and ``-shm`` itself, with the mode of the
database file (and ``fchmod``s them to it whatever the umask), so
``private_file`` creates the database file 0600 before SQLite first opens it.
Opening an existing store tightens the data dir and the control database
files too, so a store made by an older version stops being readable by
others from its next start (the folder's 0700 alone already keeps others out
of everything beneath it).
"""

from __future__ import annotations

import logging
import os
import stat
from typing import Callable
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "make_private_dirs", "private_dir", "private_file", "tighten", "open_private"]

log = logging.getLogger("deskcorder.store")

DIR_MODE = 0o700
FILE_MODE = 0o600


def tighten(path: Path, mode: int) -> None:
    """Take away group and other bits (and set ``mode``) if the path exists; warn when it is not ours to change."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current == mode:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:
        log.warning("cannot make %s private (mode %o, want %o): %s", path, current, mode, exc.strerror or exc)


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700 folders; an existing ``path`` is made 0700."""
    make_private_dirs(path)
    tighten(path, DIR_MODE)


def make_private_dirs(path: Path, created: Callable[[Path], None] = lambda _: None) -> None:
    """Create the missing folders of ``path``, parents first, each 0700 whatever the umask, calling
    ``created`` with each new one (the event files fsync its parent there)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)  # a concurrent process may create it first
        os.chmod(folder, DIR_MODE)
        created(folder)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with ``O_CREAT``, the file 0600 whatever the umask or its mode before."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_file(path: Path) -> None:
    """Make sure ``path`` exists and is 0600 (an empty file is a valid new SQLite database)."""
    os.close(open_private(path, os.O_WRONLY))
