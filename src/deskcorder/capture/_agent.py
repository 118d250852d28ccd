"""The agent: backend -> queue -> writer -> spool -> uploader, started and stopped as one.

Threads: the backend's listener threads (submit only), the writer (numbers,
coalesces and spools events every ``flush_interval_s``) and the uploader.

What a crash loses: a ``kill -9`` or power cut loses the events still in
memory, i.e. those captured since the start of the writer's last completed
spool commit: at most ``flush_interval_s`` of input plus one commit's
duration (a few ms on a local disk). Nothing that reached the spool is lost;
it is uploaded by the next agent started with the same state directory.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import re
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from ._backend import CaptureBackend
from ._queue import EventQueue
from ._spool import Spool
from ._transport import HttpTransport, Transport
from ._uploader import Uploader
from ._writer import Writer

__all__ = ["Agent", "AgentConfig", "AgentError", "load_device_id"]

log = logging.getLogger("deskcorder.capture")

# wire.py's rule for batch and device ids (8-128 characters of A-Z a-z 0-9 _ . : -).
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")


class AgentError(RuntimeError):
    """The agent cannot start with this configuration; the message says what to change."""


@dataclasses.dataclass
class AgentConfig:
    server_url: str
    state_dir: Path
    device_id: str | None = None  # None: the one in <state_dir>/device_id, created on first start
    move_hz: float = 60.0
    flush_interval_s: float = 0.2
    flush_max_events: int = 2000
    upload_max_events: int = 20000
    upload_interval_s: float = 0.5


class Agent:
    def __init__(self, config: AgentConfig, backend: CaptureBackend | None = None, *,
                 transport: Transport | None = None):
        if backend is None:
            if not sys.platform.startswith("linux"):
                raise AgentError(f"no capture backend for {sys.platform} yet; only X11 on Linux is supported")
            from ._x11 import X11Backend
            backend = X11Backend()
        self.config = config
        self.backend = backend
        self._transport = transport
        self._started = False
        self._lock_file: Any = None
        self._failed = threading.Event()
        self.session_id: str | None = None
        self.device_id: str | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        if self._started:
            raise AgentError("agent already started")
        if cfg.move_hz <= 0 or cfg.flush_interval_s <= 0:
            raise AgentError(f"move_hz and flush_interval_s must be > 0 (got {cfg.move_hz}, {cfg.flush_interval_s})")
        state_dir = Path(cfg.state_dir)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AgentError(f"cannot create the state directory {state_dir}: {exc.strerror or exc}") from exc
        self._lock_file = _lock(state_dir)
        try:
            self.device_id = cfg.device_id or load_device_id(state_dir)
            if not _DEVICE_ID.match(self.device_id):
                raise AgentError(f"device id {self.device_id!r} must be 8-128 characters of A-Z a-z 0-9 _ . : -")
            transport = self._transport or HttpTransport(cfg.server_url)
            self.spool = Spool(state_dir / Spool.FILE_NAME)
        except BaseException:
            self._unlock()
            raise
        self.session_id = uuid.uuid4().hex
        self._failed.clear()
        self.queue = EventQueue(wake_at=cfg.flush_max_events, on_failure=lambda exc: self._failed.set())
        self.writer = Writer(self.queue, self.spool, self.session_id, move_hz=cfg.move_hz,
                             flush_interval_s=cfg.flush_interval_s, flush_max_events=cfg.flush_max_events)
        self.uploader = Uploader(self.spool, transport, self.device_id, max_events=cfg.upload_max_events,
                                 interval_s=cfg.upload_interval_s)
        self.writer.start()
        self.uploader.start()
        try:
            self.backend.start(self.queue)
        except BaseException:
            self.writer.stop()
            self.uploader.stop(timeout=0)
            self.spool.close()
            self._unlock()
            raise
        self._started = True
        log.info("agent started: session %s, device %s, server %s", self.session_id, self.device_id, cfg.server_url)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing, write everything in memory to the spool, then try to upload what is left."""
        if not self._started:
            return
        self._started = False
        self.backend.stop()
        self.writer.stop(timeout)
        self.uploader.stop(timeout)
        self._final_stats = self._collect_stats()
        self.spool.close()
        self._unlock()

    def run_until_signal(self) -> None:
        """Run until SIGINT or SIGTERM (or the backend fails), then stop cleanly. Main thread only."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        if not self._started:
            self.start()
        try:
            while not stop.is_set() and not self._failed.is_set():
                stop.wait(0.5)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @property
    def failure(self) -> BaseException | None:
        """Why capture stopped on its own (e.g. the X display went away), else None."""
        return self.queue.failure if hasattr(self, "queue") else None

    # -- pause / resume -----------------------------------------------------------------
    def pause(self, reason: str) -> None:
        """Record a PAUSE event and capture nothing until ``resume``."""
        self._require_started()
        self.queue.pause(reason[:256])

    def resume(self, reason: str = "resumed") -> None:
        self._require_started()
        if self.queue.resume(reason[:256]):
            self.backend.resync()  # the active window may have changed while paused

    # -- stats --------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters of this agent run (events); backlog and dead_letter count what the spool holds."""
        if self._started:
            return self._collect_stats()
        if hasattr(self, "_final_stats"):
            return dict(self._final_stats)
        raise AgentError("agent not started")

    def _collect_stats(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "device_id": self.device_id,
            "captured": self.queue.captured,
            "coalesced": self.writer.coalesced,
            "spooled": self.writer.spooled,
            "uploaded": self.uploader.uploaded,
            "backlog": self.spool.backlog(),
            "lost": dict(self.queue.lost),
            "dead_letter": self.spool.dead_letter_events(),
            "paused": self.queue.paused,
            "healthy": self.uploader.is_healthy(),
            "last_upload_error": self.uploader.last_error,
        }

    def _require_started(self) -> None:
        if not self._started:
            raise AgentError("agent not started; call start() first")

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None


def load_device_id(state_dir: Path) -> str:
    """The id in ``<state_dir>/device_id``, created (atomically) on first use."""
    path = state_dir / "device_id"
    try:
        device_id = path.read_text().strip()
    except FileNotFoundError:
        device_id = uuid.uuid4().hex
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(device_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return device_id
    if not _DEVICE_ID.match(device_id):
        raise AgentError(f"{path} holds {device_id[:40]!r}, not a device id (8-128 characters of "
                         f"A-Z a-z 0-9 _ . : -); fix it, or delete it to get a new one")
    return device_id


def _lock(state_dir: Path) -> Any:
    """Hold ``<state_dir>/agent.lock`` so two agents never share one spool; the kernel drops it on kill -9."""
    f = open(state_dir / "agent.lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise AgentError(f"another agent (pid {holder}) is running with state directory {state_dir}; "
                         f"stop it or pick another --state-dir") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f

