"""Status changes of an embedded (SQLite) store, heard by its collector when another process made them.

On PostgreSQL a change goes out with ``pg_notify`` (``_status_changes.py``), so
every collector hears the CLI on any host. SQLite has no notifications, and a
held status request must not stand on an answer that ``deskcorder policy
set`` or ``deskcorder consent withdraw`` in another process has made wrong:
an agent would record under the old, wider rules until the request ended.

So each committed change is also appended, after its commit, as one line
``<origin> <key>`` to a file beside the database (``<control.db>.status``,
mode 0600; a write of one short line with O_APPEND lands whole). The
collector reads the file's new lines a few times a second (one ``os.stat`` per
look, no database query) and wakes the keys that other processes wrote; its
own lines it heard in process. The file holds keys only (``employee:<id>``,
``device:<id>``, ``all``: the ids the database already holds), and the
collector empties it each time it has read it (under an ``flock`` that the
writers take too, so no line is lost between the read and the emptying): a
device id does not outlive its erasure there by more than a look.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from . import _status_changes
from .._private import FILE_MODE

__all__ = ["StatusLog"]


class StatusLog:
    """The change lines of one SQLite control database."""

    def __init__(self, database_file: Path):
        self.path = database_file.with_name(database_file.name + ".status")

    def append(self, keys: list[str]) -> None:
        """After a commit: tell other processes (a collector) whose status changed. Never raises."""
        data = "".join(f"{_status_changes.ORIGIN} {key}\n" for key in keys).encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:  # a read-only data dir: the collector still re-reads within its bound (UNHEARD_FOR_S)
            pass

    def start(self) -> None:
        """The reader begins here: what is already in the file was decided before the reader's first read."""
        self._take()

    def new_keys(self) -> list[str]:
        """The keys other processes appended since the last call (this process's own are skipped)."""
        try:
            if os.stat(self.path).st_size == 0:  # the usual case: one stat, nothing opened
                return []
        except FileNotFoundError:
            return []
        keys = []
        for line in self._take().split(b"\n"):
            key = _status_changes.parse_payload(line.decode("utf-8", "replace"))
            if key is not None:
                keys.append(key)
        return keys

    def _take(self) -> bytes:
        """The file's lines, and the file emptied, under the writers' lock."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return b""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            os.ftruncate(fd, 0)
            return b"".join(chunks)
        finally:
            os.close(fd)
