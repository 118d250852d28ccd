"""The state directory is this person's alone: directory 0700, every file in it 0600, whatever the umask.

It holds what they typed until the collector acknowledges it (the spool), the
device's secret and its pause. A umask of 022, the usual default, would
otherwise leave the spool readable by every local user (``open(..., 0o600)``
only *removes* bits the umask lets through; an existing file keeps its mode
through ``O_CREAT``), so modes are set with ``fchmod``/``chmod`` after the
fact and existing files from older agents are tightened on start.
SQLite creates ``-wal`` and ``-shm`` with the main database file's mode, so
a spool file made 0600 here gives 0600 companions.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "write_private"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if needed and make it 0700; tighten the files already in it to 0600."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    for entry in os.scandir(path):
        if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mode & 0o077:
            os.chmod(entry.path, FILE_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty if it does not exist, and make it 0600 either way (before anything is written)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text`` (temp file 0600, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
