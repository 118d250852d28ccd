"""The spool: a durable local queue of event chunks waiting to be uploaded.

Why SQLite and not an append log: an upload must atomically record *which*
chunks it carries and under which batch id (so a retry after a crash resends
the identical batch), and an acknowledgement must atomically delete exactly
those chunks. That is two small transactions in SQLite; with a log it would
be a second index file, compaction, and our own torn-write recovery.

Durability: WAL journal with ``synchronous=FULL``, so each ``append`` returns
only after its commit is fsynced. A ``kill -9`` (or power loss) therefore
loses only what the agent still held in memory, never a committed chunk.

Tables
------
``chunks``       one row per writer flush: session_id, first_seq, n_events and
                 the columns as MessagePack (the wire's column layout); ``upload_id``
                 is set once an upload claims the chunk.
``uploads``      an upload in flight: batch_id, device_id, n_events. Created
                 *before* sending, deleted together with its chunks on ack.
``dead_letter``  batches the collector refused as invalid: kept for inspection,
                 never retried. Batches it refused because their events fall outside
                 the person's consent (``dead_letter(keep_events=False)``) leave only
                 their count and the collector's words here: what a person did not
                 consent to is not kept, not even on their own disk.

What an acknowledgement leaves behind: nothing of the typed text, in any
file of the state directory, once ``scrub`` has run (see below; the agent
runs it in the same call as the deletion, so at once, and retries it every
``SCRUB_RETRY_S`` while another process reads the spool). Two things are
needed for that, and neither is enough alone:

* ``secure_delete`` overwrites deleted rows (acknowledged chunks, discarded
  events) with zeros in the page, and zeroes freed and overflow pages, so no
  free page of ``spool.db`` keeps them;
* but in WAL mode the zeroed page is a *new* frame appended to ``spool.db-wal``:
  the frame written when the chunk was spooled, text and all, stays in the
  WAL until it is checkpointed and the WAL is rewritten, which by default
  takes 1000 pages (hours of typing). ``scrub`` runs
  ``PRAGMA wal_checkpoint(TRUNCATE)``, which copies the zeroed pages into
  ``spool.db`` and truncates the WAL to zero bytes.

A truncated WAL leaves its old bytes in the disk blocks the filesystem
freed, readable only by someone with raw access to the device (root), not
in any file. Encrypting chunks with a per-run key kept in memory was the
alternative: it would also cover freed blocks, but a ``kill -9`` would then
make every committed, unacknowledged chunk unreadable to the next agent,
breaking the promise above that nothing which reached the spool is lost;
a key in a file next to the spool protects nothing from someone who can
read the spool. The spool and its ``-wal``/``-shm`` are 0600 (``_private``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import msgpack

from .._errors import DeskcorderError
from ..events import FIELD_NAMES
from ._private import private_file

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Spool", "Upload", "SpoolError"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    n_events INTEGER NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    n_events INTEGER NOT NULL,
    columns BLOB NOT NULL,
    created_ns INTEGER NOT NULL,
    upload_id INTEGER REFERENCES uploads(id)
);
CREATE INDEX IF NOT EXISTS chunks_by_upload ON chunks(upload_id, id);
CREATE TABLE IF NOT EXISTS dead_letter (
    batch_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    n_events INTEGER NOT NULL,
    status INTEGER,
    error TEXT NOT NULL,
    columns BLOB NOT NULL,
    dead_at_ns INTEGER NOT NULL
);
"""


class SpoolError(DeskcorderError, RuntimeError):
    """The spool file cannot be used; the message names the file and what to do."""


@dataclasses.dataclass(frozen=True)
class Upload:
    """One batch to send: always the same chunks under the same batch id until acknowledged."""

    upload_id: int
    batch_id: str
    device_id: str
    n_events: int
    n_chunks: int
    columns: dict[str, list[Any]]


class Spool:
    """SQLite spool at ``path``; safe to share between the writer and uploader threads."""

    FILE_NAME = "spool.db"
    # How often a scrub that found the spool busy (another process reading it) is tried again.
    SCRUB_RETRY_S = 1.0
    _SCRUB_BUSY_TIMEOUT_MS = 200  # a reader holds the WAL only for a query: wait that long, not 30 s

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        # Acknowledged text may still be in the WAL (deleted rows not yet checkpointed out of it).
        self.scrub_pending = False
        try:
            for suffix in ("", "-wal", "-shm"):  # 0600 before the first byte is written; -wal/-shm follow the db
                name = self.path.with_name(self.path.name + suffix)
                if not suffix or name.exists():
                    private_file(name)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA secure_delete=ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise SpoolError(f"{self.path} has spool format {version}, this agent reads {_SCHEMA_VERSION}; "
                                 f"upgrade the agent, or move the file away to start an empty spool")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            # A previous agent killed between an acknowledgement and its scrub left the text in the WAL.
            self.scrub_pending = True
            self._scrub()
        except OSError as exc:
            raise SpoolError(f"cannot create the spool {self.path}: {exc.strerror or exc}; check the state "
                             f"directory is writable") from exc
        except sqlite3.DatabaseError as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}; check the state directory "
                             f"is writable, or move a damaged file away") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writer -------------------------------------------------------------------------
    def append(self, session_id: str, first_seq: int, columns: Mapping[str, list[Any]]) -> None:
        """Store one chunk durably (returns after the fsynced commit)."""
        n = len(columns["seq"])
        body = msgpack.packb(dict(columns), use_bin_type=True)
        with self._lock:
            self._db.execute("INSERT INTO chunks (session_id, first_seq, n_events, columns, created_ns) "
                             "VALUES (?, ?, ?, ?, ?)", (session_id, first_seq, n, body, time.time_ns()))

    # -- uploader -----------------------------------------------------------------------
    def next_upload(self, device_id: str, max_events: int) -> Upload | None:
        """The upload in flight if there is one, else a new one from the oldest chunks.

        The new upload's chunks and batch id are committed before this returns,
        so whatever happens to the request, the next call (in this process or
        after a restart) returns the same batch.
        """
        with self._lock:
            row = self._db.execute("SELECT id, batch_id, device_id, n_events FROM uploads "
                                   "ORDER BY id LIMIT 1").fetchone()
            if row is None:
                row = self._claim(device_id, max_events)
                if row is None:
                    return None
            upload_id, batch_id, upload_device, n_events = row
            bodies = self._db.execute("SELECT columns FROM chunks WHERE upload_id = ? ORDER BY id",
                                      (upload_id,)).fetchall()
        return Upload(upload_id, batch_id, upload_device, n_events, len(bodies), _merge(bodies))

    def _claim(self, device_id: str, max_events: int) -> tuple[int, str, str, int] | None:
        chosen: list[int] = []
        total = 0
        for chunk_id, n in self._db.execute("SELECT id, n_events FROM chunks WHERE upload_id IS NULL ORDER BY id"):
            if chosen and total + n > max_events:
                break
            chosen.append(chunk_id)
            total += n
        if not chosen:
            return None
        batch_id = uuid.uuid4().hex  # the collector keys batches globally, so ids must be unique across devices
        with self._transaction():
            cur = self._db.execute("INSERT INTO uploads (batch_id, device_id, n_events, created_ns) "
                                   "VALUES (?, ?, ?, ?)", (batch_id, device_id, total, time.time_ns()))
            upload_id = cur.lastrowid
            self._db.executemany("UPDATE chunks SET upload_id = ? WHERE id = ?", [(upload_id, c) for c in chosen])
        assert upload_id is not None
        return upload_id, batch_id, device_id, total

    def ack(self, upload: Upload) -> None:
        """The collector stored the batch: forget its chunks, and scrub their text out of the files."""
        with self._lock:
            with self._transaction():
                self._db.execute("DELETE FROM chunks WHERE upload_id = ?", (upload.upload_id,))
                self._db.execute("DELETE FROM uploads WHERE id = ?", (upload.upload_id,))
            self.scrub_pending = True
            self._scrub()

    def scrub(self) -> bool:
        """Checkpoint the WAL into the (zeroed) database pages and truncate it; True when nothing is pending.

        False while another process holds a read snapshot of the spool; call again later
        (the uploader does, every ``SCRUB_RETRY_S``).
        """
        with self._lock:
            return self._scrub()

    def _scrub(self) -> bool:
        if not self.scrub_pending:
            return True
        self._db.execute(f"PRAGMA busy_timeout={self._SCRUB_BUSY_TIMEOUT_MS}")
        try:
            busy, wal_frames, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError:  # locked: as busy
            busy, wal_frames = 1, -1
        finally:
            self._db.execute("PRAGMA busy_timeout=30000")
        # TRUNCATE succeeded only when it was not blocked and the WAL is empty now.
        self.scrub_pending = bool(busy) or wal_frames != 0
        return not self.scrub_pending

    def release(self, upload: Upload) -> None:
        """Give the chunks back unsent, e.g. to regroup them into smaller batches.

        Only for a batch the collector provably did not store (it refused the
        body before reading it), since the chunks will go out under a new id.
        """
        with self._lock, self._transaction():
            self._db.execute("UPDATE chunks SET upload_id = NULL WHERE upload_id = ?", (upload.upload_id,))
            self._db.execute("DELETE FROM uploads WHERE id = ?", (upload.upload_id,))

    def dead_letter(self, upload: Upload, status: int | None, error: str, *, keep_events: bool = True) -> None:
        """Move a batch the collector refused out of the queue: with its events (invalid, kept for
        inspection), or without them (``keep_events=False``: outside consent, only counted)."""
        body = msgpack.packb(upload.columns, use_bin_type=True) if keep_events else b""
        with self._lock, self._transaction():
            self._db.execute("INSERT OR REPLACE INTO dead_letter VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (upload.batch_id, upload.device_id, upload.n_events, status, error, body,
                              time.time_ns()))
            self._db.execute("DELETE FROM chunks WHERE upload_id = ?", (upload.upload_id,))
            self._db.execute("DELETE FROM uploads WHERE id = ?", (upload.upload_id,))
        if not keep_events:
            self.scrub_pending = True
            self.scrub()

    # -- inspection ---------------------------------------------------------------------
    def backlog(self) -> int:
        """Events spooled and not yet acknowledged by the collector."""
        with self._lock:
            return self._db.execute("SELECT coalesce(sum(n_events), 0) FROM chunks").fetchone()[0]

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT batch_id, device_id, n_events, status, error FROM dead_letter "
                                    "ORDER BY dead_at_ns").fetchall()
        return [dict(zip(("batch_id", "device_id", "n_events", "status", "error"), r)) for r in rows]

    def dead_letter_events(self) -> int:
        with self._lock:
            return self._db.execute("SELECT coalesce(sum(n_events), 0) FROM dead_letter").fetchone()[0]

    def pending_batch_id(self) -> str | None:
        """The batch id of the upload in flight, if any (what a retry will resend)."""
        with self._lock:
            row = self._db.execute("SELECT batch_id FROM uploads ORDER BY id LIMIT 1").fetchone()
        return None if row is None else row[0]

    def read_events(self) -> pa.Table:
        """Every spooled event not yet acknowledged, oldest chunk first (tools and tests)."""
        import pyarrow as pa  # here only: the agent itself never reads its spool as a table

        from ..events import EVENT_SCHEMA

        with self._lock:
            bodies = self._db.execute("SELECT columns FROM chunks ORDER BY id").fetchall()
        return pa.Table.from_pydict(_merge(bodies), schema=EVENT_SCHEMA)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # The connection is in autocommit mode: group statements explicitly.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _merge(bodies: list[tuple[bytes]]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in FIELD_NAMES}
    for (body,) in bodies:
        chunk = msgpack.unpackb(body, raw=False)
        n = len(chunk["seq"])
        for name, values in columns.items():  # a chunk spooled before a column existed: nulls for it
            values.extend(chunk.get(name) or [None] * n)
    return columns
