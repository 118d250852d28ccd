"""The agent: backend -> gate -> queue -> writer -> spool -> uploader, started and stopped as one.

Threads: the backend's listener threads (submit only), the writer (numbers,
coalesces and spools events: a chunk once ``flush_max_events`` wait or the
oldest is ``flush_interval_s`` old), the uploader (a round of uploads once
``Uploader.UPLOAD_MIN_EVENTS`` are spooled or the oldest has waited
``upload_interval_s``), the status poller (asks the collector every
``status_poll_s`` whether this device may record and under which policy; see
``_status`` and ``_gate``) and the control socket (``deskcorder agent
pause|resume|status``). Nothing wakes on a timer while nothing happens: the
writer and the uploader sleep until input arrives, and the poller asks less
and less often on an idle desk (``StatusPoller.IDLE_AFTER_S``), at once again
at the next input.

Enrolment and consent first: ``start`` enrols the device with
``enrol_token`` when it has no credential yet (``_credential``; the token
decides whose device this is) and asks for the recording status before the
first input listener is attached. Until an answer says recording_allowed nothing is recorded, not
even into the spool; a withdrawal stops recording at the next poll: of the
input that follows a withdrawal, at most ``status_poll_s`` plus one request
is recorded (well under a second by default). On a desk idle for a while
the next poll may be further off, but the first input makes the agent ask at
once, so that bound holds for the input that follows; the collector refuses
anything stamped after a withdrawal in any case. A fleet's collectors may set
the cadence for every agent in their status answers (``upload_interval_s``,
``status_poll_s``, the latter at most 60 s); the agent's own settings stand
until one does.

What a crash loses: a ``kill -9`` or power cut loses the events still in
memory, i.e. those captured since the start of the writer's last completed
spool commit: at most ``flush_interval_s`` of input plus one commit's
duration (a few ms on a local disk), the writer's age trigger. Nothing that
reached the spool is lost; it is uploaded by the next agent started with the
same state directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import re
import signal
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from ..policy import Policy
from ._backend import CaptureBackend
from ._control import ControlServer
from ._credential import Credential, load_credential, save_credential
from ._errors import AgentError, DeviceRefused
from ._gate import DEFAULT_PAUSE_HOTKEY, Gate, parse_hotkey
from ._observation_uploader import ObservationTransport, ObservationUploader
from ._observe import Observer
from ._private import private_dir, private_file, write_private
from ._queue import EventQueue
from ._spool import Spool
from ._status import CollectorStatus, RecordingStatus, StatusPoller, StatusSource
from ._transport import HttpTransport, Transport
from ._uploader import Uploader
from ._writer import Writer

__all__ = ["Agent", "AgentConfig", "AgentError", "load_device_id"]

log = logging.getLogger("deskcorder.capture")
# The start line on a logger of its own: the CLI prints its own first line and silences this one.
_start_log = logging.getLogger("deskcorder.capture.started")

# wire.py's rule for batch and device ids (8-128 characters of A-Z a-z 0-9 _ . : -).
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")
# Present while the person has paused recording, so a restarted agent stays paused.
PAUSED_FILE = "paused"


@dataclasses.dataclass
class AgentConfig:
    server_url: str
    state_dir: Path
    device_id: str | None = None  # None: the one in <state_dir>/device_id, created on first start
    move_hz: float = 60.0
    flush_interval_s: float = 0.2
    flush_max_events: int = 2000
    # Events held in memory while the writer catches up; past it input is lost (counted, and marked by a GAP).
    queue_max_events: int = EventQueue.MAX_EVENTS
    upload_max_events: int = 20000
    upload_interval_s: float = 2.0  # the longest a spooled event waits for its upload to start
    # A one-time token from an admin (``deskcorder device token --employee HANDLE``), exchanged on the
    # first start for the device's credential (<state_dir>/credential); ignored once that exists.
    enrol_token: str | None = None
    hostname: str | None = None  # None: socket.gethostname()
    status_poll_s: float = 0.5  # how often the collector is asked whether recording is still allowed
    pause_hotkey: str | None = DEFAULT_PAUSE_HOTKEY  # None: no hotkey
    control_socket: bool = True  # serve <state_dir>/control.sock for `deskcorder agent pause|resume|status`


class Agent:
    def __init__(self, config: AgentConfig, backend: CaptureBackend | None = None, *,
                 transport: Transport | None = None, consent: StatusSource | None = None,
                 observation_transport: Transport | None = None):
        """``transport``, ``consent`` and ``observation_transport`` replace the collector's batch, status and
        observation endpoints (tests, benchmarks)."""
        if backend is None:
            if not sys.platform.startswith("linux"):
                raise AgentError(f"no capture backend for {sys.platform} yet; only X11 on Linux is supported")
            from ._x11 import X11Backend
            backend = X11Backend()
        self.config = config
        self.backend = backend
        self._transport = transport
        self._consent = consent
        self._observation_transport = observation_transport
        self._control: ControlServer | None = None
        self._pause_lock = threading.Lock()
        self._persisted_pause: str | None = None
        self._started = False
        self._lock_file: Any = None
        self._failed = threading.Event()
        self._halt = threading.Event()  # run_until_signal's: set by SIGINT/SIGTERM or a failure
        self.session_id: str | None = None
        self.device_id: str | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        if self._started:
            raise AgentError("agent already started")
        if cfg.move_hz <= 0 or cfg.flush_interval_s <= 0 or cfg.status_poll_s <= 0 or cfg.queue_max_events <= 0:
            raise AgentError(f"move_hz, flush_interval_s, status_poll_s and queue_max_events must be > 0 (got "
                             f"{cfg.move_hz}, {cfg.flush_interval_s}, {cfg.status_poll_s}, {cfg.queue_max_events})")
        try:
            hotkey = parse_hotkey(cfg.pause_hotkey) if cfg.pause_hotkey else None
        except ValueError as exc:
            raise AgentError(str(exc)) from exc
        state_dir = Path(cfg.state_dir)
        try:
            private_dir(state_dir)  # 0700, files 0600: it holds typed text until the collector acknowledges it
        except OSError as exc:
            raise AgentError(f"cannot create the state directory {state_dir}: {exc.strerror or exc}") from exc
        self._lock_file = _lock(state_dir)
        try:
            self.device_id = cfg.device_id or load_device_id(state_dir)
            if not _DEVICE_ID.match(self.device_id):
                raise AgentError(f"device id {self.device_id!r} must be 8-128 characters of A-Z a-z 0-9 _ . : -")
            self.credential = Credential(self.device_id, load_credential(state_dir, self.device_id))
            enrol_token = None if self.credential.enrolled else cfg.enrol_token
            if enrol_token is None and not self.credential.enrolled and self._consent is None:
                raise AgentError(f"device {self.device_id} is not enrolled with the collector ({state_dir}/credential "
                                 f"does not exist): ask an admin for an enrolment token (deskcorder device token "
                                 f"--employee HANDLE) and start the agent with --enrol-token TOKEN")
            transport = self._transport or HttpTransport(cfg.server_url, auth=self.credential.headers)
            status_source = self._consent or CollectorStatus(cfg.server_url, credential=self.credential,
                                                             state_dir=str(state_dir))
            self.spool = Spool(state_dir / Spool.FILE_NAME)
        except BaseException:
            self._unlock()
            raise
        self.session_id = uuid.uuid4().hex
        self._failed.clear()
        self.gate = Gate(hotkey=hotkey)
        # Observations (the policy's ``observe``): no thread, X connection or Pillow until a policy asks for them.
        self.observation_uploader = ObservationUploader(
            self._observation_transport or ObservationTransport(cfg.server_url, auth=self.credential.headers),
            self.device_id, interval_s=cfg.upload_interval_s,
            on_refused=lambda n: self.observer.record_lost("refused", n))
        self.observer = Observer(self.gate, self.session_id, self.observation_uploader.add)
        self.queue = EventQueue(self.gate, max_events=cfg.queue_max_events, wake_at=cfg.flush_max_events,
                                on_failure=lambda exc: (self._failed.set(), self._halt.set()))
        self.poller = StatusPoller(status_source, self.device_id, enrol_token=enrol_token,
                                   hostname=cfg.hostname or socket.gethostname(), interval_s=cfg.status_poll_s,
                                   on_status=self._on_status, on_fatal=self._on_fatal, on_tick=self._on_tick,
                                   watch_input=self.queue.on_next_input,
                                   on_enrolled=lambda employee_id, secret: self._enrolled(state_dir, employee_id,
                                                                                          secret))
        self._persisted_pause = _read_pause(state_dir)
        if self._persisted_pause is not None:
            self.queue.apply(lambda t_mono, t_wall, out: self.gate.set_user_pause(
                self._persisted_pause, t_mono, t_wall, out))
        try:
            # Before any listener exists: enrolment refused is fatal now, and the first answer
            # decides whether the very first FOCUS event may be recorded.
            self.poller.poll_once()
        except BaseException:
            self.observer.stop(timeout=0)
            status_source.close()
            transport.close()
            self.spool.close()
            self._unlock()
            raise
        first = self.poller.last_status
        self.uploader = Uploader(self.spool, transport, self.device_id, max_events=cfg.upload_max_events,
                                 interval_s=first.upload_interval_s if first and first.upload_interval_s
                                 else cfg.upload_interval_s)
        self.writer = Writer(self.queue, self.spool, self.session_id, move_hz=cfg.move_hz,
                             flush_interval_s=cfg.flush_interval_s, flush_max_events=cfg.flush_max_events,
                             on_spooled=self.uploader.spooled)
        self._follow_observe(first.policy if first else None)
        self.writer.start()
        self.uploader.start()
        try:
            self.backend.start(self.queue)
            self.poller.start()
            if cfg.control_socket:
                self._control = ControlServer(state_dir, self._control_command)
                self._control.start()
        except BaseException:
            with contextlib.suppress(Exception):
                self.backend.stop()  # it may have started before the control socket failed
            self.poller.stop(timeout=0)
            self.writer.stop()
            self.observer.stop(timeout=0)
            self.uploader.stop(timeout=0)
            self.spool.close()
            self._unlock()
            raise
        self._started = True
        _start_log.info("agent started: session %s, device %s, server %s, %s", self.session_id, self.device_id,
                 cfg.server_url, self.state if self.gate.recording else f"not recording ({self.state})")

    def _enrolled(self, state_dir: Path, employee_id: str, secret: str) -> None:
        if self._consent is None:  # a test's status source hands out no real secret
            save_credential(state_dir, self.device_id or "", secret, employee_id)
            self.credential.set_secret(secret)
        # Expected on a first start, and nothing to act on: not a warning.
        log.info("device %s enrolled with the collector; its credential is in %s/credential", self.device_id,
                 state_dir)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing, write everything in memory to the spool, then try to upload what is left."""
        if not self._started:
            return
        self._started = False
        if self._control is not None:
            self._control.stop()
            self._control = None
        self.backend.stop()
        self.poller.stop(timeout=min(timeout, 3.0))
        self._persist_pause()
        self.queue.apply(lambda _t, _w, out: self.gate.flush(out))
        self.writer.stop(timeout)
        self.observer.stop(min(timeout, 2.0))  # its last observations get their seq from the writer's last flush
        self.uploader.stop(timeout)
        self.observation_uploader.stop(min(timeout, 2.0))
        self._final_stats = self._collect_stats()
        self.spool.close()
        self._unlock()

    def run_until_signal(self) -> None:
        """Run until SIGINT or SIGTERM (or the backend fails), then stop cleanly. Main thread only."""
        stop = self._halt
        stop.clear()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        if not self._started:
            self.start()
        try:
            while not stop.is_set() and not self._failed.is_set():
                stop.wait(60)  # a signal or a failure sets it; the timeout only guards the main thread
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @property
    def failure(self) -> BaseException | None:
        """Why capture stopped on its own (e.g. the X display went away), else None."""
        return self.queue.failure if hasattr(self, "queue") else None

    # -- pause / resume -----------------------------------------------------------------
    def pause(self, reason: str = "paused_by_user") -> bool:
        """Record nothing until ``resume`` (a PAUSE marker if recording was on); False if already paused."""
        self._require_started()
        changed = bool(self.queue.apply(lambda t_mono, t_wall, out: self.gate.set_user_pause(
            reason[:256], t_mono, t_wall, out)))
        self._persist_pause()
        return changed

    def resume(self, reason: str = "resumed_by_user") -> bool:
        """Undo ``pause``; recording restarts (RESUME marker, then the active window's FOCUS) if the
        collector and the policy allow it. False if it was not paused."""
        self._require_started()
        changed = bool(self.queue.apply(lambda t_mono, t_wall, out: self.gate.set_user_pause(
            None, t_mono, t_wall, out, resume_reason=reason[:256])))
        self._persist_pause()
        return changed

    @property
    def state(self) -> str:
        """One word that is true now: ``recording``, or why not (the gate's reason: ``collector_unreachable``,
        ``no_consent``, ``consent_withdrawn``, ``policy_changed``, ``paused_by_user``, ``paused_remotely``,
        ``outside_hours``, ``out_of_scope``, ``password_prompt``, ``revoked``, ``not_enrolled``, ...)."""
        if not hasattr(self, "gate"):
            return "not_started"
        return "recording" if self.gate.recording else (self.gate.reason or "not_recording")

    @property
    def recording(self) -> bool:
        """Whether input is being recorded right now (consent, pause, hours and the active window allow it)."""
        return self._started and self.gate.recording

    # -- status poller and control socket callbacks ------------------------------------
    def _on_status(self, status: RecordingStatus) -> None:
        self.queue.apply(lambda t_mono, t_wall, out: self.gate.set_status(status, t_mono, t_wall, out))
        if status.upload_interval_s is not None and hasattr(self, "uploader"):
            self.uploader.interval_s = status.upload_interval_s
            self.observation_uploader.interval_s = status.upload_interval_s
        self._follow_observe(status.policy)

    def _follow_observe(self, policy: Policy | None) -> None:
        """Hook the observer in while the policy observes anything, out otherwise (then it costs nothing)."""
        on = self.observer.set_policy(policy)
        self.gate.observe = self.observer.admitted if on else None
        if hasattr(self, "writer"):
            self.writer.on_numbered = self.observer.numbered if on else None

    def _on_tick(self) -> None:
        self.queue.apply(self.gate.tick)
        self._persist_pause()  # the hotkey toggles the pause on a listener thread, which must not do file I/O

    def _persist_pause(self) -> None:
        """Keep ``<state_dir>/paused`` in step with the person's pause."""
        with self._pause_lock:
            reason = self.gate.user_pause_reason
            if reason == self._persisted_pause:
                return
            path = Path(self.config.state_dir) / PAUSED_FILE
            try:
                if reason is None:
                    path.unlink(missing_ok=True)
                else:
                    write_private(path, reason + "\n")
            except OSError as exc:
                log.warning("cannot record the pause in %s: %s; a restart would not stay paused", path, exc)
                return
            self._persisted_pause = reason

    def _on_fatal(self, error: BaseException) -> None:
        log.error("%s", error)
        reason = error.reason if isinstance(error, DeviceRefused) else "agent_error"
        self._on_status(RecordingStatus(False, reason, str(error), None, 0))  # never record unchecked
        self.queue.fail(error)

    def _control_command(self, command: str) -> dict[str, Any]:
        changed = None
        if command == "pause":
            changed = self.pause("paused_by_user")
        elif command == "resume":
            changed = self.resume("resumed_by_user")
        return {"command": command, "changed": changed, **self._collect_stats()}

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
            "state": self.state,  # "recording" or why not, one word (see ``state``)
            "recording": self.gate.recording,
            "gate_reason": self.gate.reason,  # why not recording (a marker reason), None while recording
            "paused": self.gate.user_paused,  # paused by the person (hotkey, CLI, pause())
            "pause_reason": self.gate.user_pause_reason,
            "consent_detail": self._consent_detail(),
            "healthy": self.uploader.is_healthy(),
            "last_upload_error": self.uploader.last_error,
            "observations": {**self.observer.stats(), "sent": self.observation_uploader.sent,
                             "sent_bytes": self.observation_uploader.sent_bytes,
                             "waiting": self.observation_uploader.waiting},
        }

    def _consent_detail(self) -> str:
        poller = self.poller
        if poller.unreachable_since is not None:
            kept = "recording under its last answer" if self.gate.recording or (
                poller.last_status and poller.last_status.allowed) else "not recording until it answers"
            pending = "; the enrolment token is exchanged once it answers" if poller.enrolling else ""
            return f"collector unreachable ({poller.last_error}); {kept}{pending}"
        return poller.last_status.detail if poller.last_status else "no answer from the collector yet"

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
        write_private(path, device_id + "\n")
        return device_id
    if not _DEVICE_ID.match(device_id):
        raise AgentError(f"{path} holds {device_id[:40]!r}, not a device id (8-128 characters of "
                         f"A-Z a-z 0-9 _ . : -); fix it, or delete it to get a new one")
    return device_id


def _read_pause(state_dir: Path) -> str | None:
    try:
        return (state_dir / PAUSED_FILE).read_text().strip()[:256] or "paused_by_user"
    except FileNotFoundError:
        return None
    except OSError as exc:  # unreadable: the person may have paused, so stay paused
        log.warning("cannot read %s: %s; starting paused", state_dir / PAUSED_FILE, exc)
        return "paused_by_user"


def _lock(state_dir: Path) -> Any:
    """Hold ``<state_dir>/agent.lock`` so two agents never share one spool; the kernel drops it on kill -9."""
    private_file(state_dir / "agent.lock")
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

