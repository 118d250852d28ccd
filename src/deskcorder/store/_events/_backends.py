"""Where the event files live: a folder on local disk, or an S3-compatible object store.

Both hold the same keys, '/'-separated paths relative to a root::

    events/date=YYYY-MM-DD/device=<device_id>/<batch_id>-<hash16>.parquet

and the manifest in the control database (``batches.files``) lists them by
that key, so moving a store between backends is a copy of the keys. The
encryption binds each file to its key (``_sealed.py``), not to the backend.

``open_event_files(url, data_dir)`` picks the backend:

- no url: ``<data_dir>/events/...`` on local disk (the embedded default);
- ``file:///path``: the same layout under another folder (a shared mount);
- ``s3://bucket/prefix?endpoint_override=host:port&scheme=http``: any
  S3-compatible store, through pyarrow's filesystems (``pyarrow.fs``: the
  same library that writes our Parquet, with S3 built into its wheels, so no
  extra dependency). Credentials come from the usual AWS chain
  (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, instance
  roles), never from the url: the url is recorded in the control database.
  Other pyarrow schemes (``gs://``, ``hdfs://``) take the same code path.

What "durable" means per backend (what ``put`` promises when it returns):

- local disk: temp file in the target folder, fsync, atomic rename, fsync of
  the folder; a crash leaves no file, a stray temp file, or the whole file.
- object store: one PUT (multipart for large files) that the store
  acknowledged; an object appears whole or not at all, and an upload that
  is aborted or never completed leaves nothing visible.

Deleting one employee's data is deleting the manifest's keys of their
devices plus whatever else sits under their ``device=`` prefixes (files of
batches that crashed before their manifest commit), one listing per date
folder; retention deletes a whole ``date=`` prefix. Object stores with
versioning keep deleted objects as old versions: use an unversioned bucket,
or a lifecycle rule that expires noncurrent versions within days (their
content stays unreadable anyway once the employee's key is destroyed).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import os
import re
import urllib.parse
import uuid
from pathlib import Path

from .._errors import InvalidInput, StoreError
from ._layout import EVENTS_DIR
from .._private import make_private_dirs, open_private, private_dir

__all__ = ["EventFiles", "StoredFile", "LocalEventFiles", "ObjectStoreEventFiles", "open_event_files",
           "check_events_url"]

_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
# Query parameters of a url that would put a secret into the control database.
_SECRET_PARAMS = {"access_key", "secret_key", "session_token"}


@dataclasses.dataclass(frozen=True)
class StoredFile:
    key: str
    mtime: float  # seconds since the epoch: how retention tells an old orphan from a batch being written


class EventFiles(abc.ABC):
    """The event files of one store, by key; see the module docstring for what each backend promises."""

    location: str  # shown in messages: a folder or a url

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write a file whole and durably (see the module docstring), replacing one under the same key."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The file's bytes; FileNotFoundError when there is none."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[StoredFile]:
        """Every file whose key starts with the folder ``prefix`` (no trailing '/'), at any depth."""

    @abc.abstractmethod
    def folders(self, prefix: str) -> list[str]:
        """The names of the folders directly under ``prefix``."""

    @abc.abstractmethod
    def delete(self, keys: list[str]) -> int:
        """Delete these files (missing ones are fine: a re-run after a crash); returns how many were there."""

    def prune(self, prefix: str) -> None:
        """Remove empty folders under (and including) ``prefix``; object stores have none."""

    def describe(self, key: str) -> str:
        return f"{self.location.rstrip('/')}/{key}"

    def partition_dates(self) -> list[dt.date]:
        """Every date folder under events/, whatever the manifest says (crash leftovers included)."""
        return sorted(dt.date.fromisoformat(m.group(1)) for name in self.folders(EVENTS_DIR)
                      if (m := _DATE_DIR.match(name)))


class LocalEventFiles(EventFiles):
    """Event files under ``root`` on a local (or mounted) file system, written with fsync + rename."""

    def __init__(self, root: Path):
        self.root = root
        self.location = str(root)

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def put(self, key: str, data: bytes) -> None:
        final = self.root / key
        _make_dirs_durably(final.parent)
        tmp = final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_EXCL), "wb") as fh:  # 0600 whatever the umask
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)  # the rename itself is a directory entry

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def list(self, prefix: str) -> list[StoredFile]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted((StoredFile(p.relative_to(self.root).as_posix(), p.stat().st_mtime)
                       for p in folder.rglob("*") if p.is_file()), key=lambda f: f.key)

    def folders(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def delete(self, keys: list[str]) -> int:
        """Delete, fsync what held them, and drop the folders (up to events/) that this emptied."""
        deleted = 0
        touched: set[Path] = set()
        for key in keys:
            path = self.root / key
            if not path.is_file():
                continue
            path.unlink()
            deleted += 1
            touched.add(path.parent)
        events = self.root / EVENTS_DIR
        for folder in sorted(touched, key=lambda p: len(p.parts), reverse=True):
            while folder != events and folder.is_relative_to(events) and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                touched.add(folder.parent)
                folder = folder.parent
        for folder in touched:
            if folder.is_dir():
                _fsync_dir(folder)
        return deleted

    def prune(self, prefix: str) -> None:
        folder = self.root / prefix
        if not folder.is_dir():
            return
        for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            if not any(sub.iterdir()):
                sub.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()


class ObjectStoreEventFiles(EventFiles):
    """Event files in an object store (S3-compatible, or any pyarrow file system) under ``base``."""

    def __init__(self, url: str):
        import pyarrow.fs as pafs

        self.location = _without_query(url)
        try:
            self._fs, base = pafs.FileSystem.from_uri(url)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise InvalidInput(f"cannot use the events url {self.location!r}: {exc}", field="events_url") from exc
        self._base = base.rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._base}/{key}"

    def put(self, key: str, data: bytes) -> None:
        with self._fs.open_output_stream(self._path(key)) as out:
            out.write(data)

    def get(self, key: str) -> bytes:
        with self._fs.open_input_stream(self._path(key)) as src:
            return src.readall()

    def _infos(self, prefix: str, *, recursive: bool) -> list:
        import pyarrow.fs as pafs

        return self._fs.get_file_info(pafs.FileSelector(self._path(prefix), recursive=recursive,
                                                        allow_not_found=True))

    def list(self, prefix: str) -> list[StoredFile]:
        import pyarrow.fs as pafs

        skip = len(self._base) + 1
        return sorted((StoredFile(i.path[skip:], i.mtime.timestamp() if i.mtime else 0.0)
                       for i in self._infos(prefix, recursive=True) if i.type == pafs.FileType.File),
                      key=lambda f: f.key)

    def folders(self, prefix: str) -> list[str]:
        import pyarrow.fs as pafs

        return sorted(i.base_name for i in self._infos(prefix, recursive=False) if i.type == pafs.FileType.Directory)

    def delete(self, keys: list[str]) -> int:
        deleted = 0
        for key in keys:
            try:
                self._fs.delete_file(self._path(key))  # pyarrow checks first: a missing key raises
            except FileNotFoundError:
                continue
            deleted += 1
        return deleted


def check_events_url(url: str) -> str:
    """The url as it will be recorded, or InvalidInput naming what is wrong with it."""
    parsed = urllib.parse.urlsplit(url)
    if not parsed.scheme or len(parsed.scheme) == 1:  # "C:\..." or a bare path
        raise InvalidInput(f"events url {url!r} needs a scheme: s3://BUCKET/PREFIX or file:///PATH",
                           field="events_url")
    secrets = _SECRET_PARAMS & {k for k, _ in urllib.parse.parse_qsl(parsed.query)}
    if secrets:
        raise InvalidInput(f"the events url must not carry credentials ({', '.join(sorted(secrets))}): it is "
                           f"recorded in the control database; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                           f"in the environment instead", field="events_url")
    if parsed.scheme == "file" and (parsed.netloc or not parsed.path.startswith("/")):
        raise InvalidInput(f"events url {url!r}: a file url takes an absolute path, file:///srv/events",
                           field="events_url")
    return url


def open_event_files(url: str | None, data_dir: Path) -> EventFiles:
    if url is None:
        return LocalEventFiles(data_dir)
    parsed = urllib.parse.urlsplit(check_events_url(url))
    if parsed.scheme == "file":
        root = Path(urllib.parse.unquote(parsed.path))
        try:
            private_dir(root)
        except OSError as exc:
            raise StoreError(f"cannot create the events folder {root}: {exc.strerror or exc}") from exc
        return LocalEventFiles(root)
    return ObjectStoreEventFiles(url)


def _without_query(url: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(query="", fragment=""))


def _make_dirs_durably(path: Path) -> None:
    make_private_dirs(path, created=lambda folder: _fsync_dir(folder.parent))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
