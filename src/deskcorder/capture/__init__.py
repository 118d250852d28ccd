"""capture stage: the agent that records input on a workstation, spools it durably and uploads it.

The flow, one private module per step::

    _x11 / _x11_focus   platform backend: pynput listeners and the active-window tracker
    _credential         this device's credential (<state_dir>/credential), from a one-time enrolment token
    _status             may this device record, under which policy: the collector's answer, polled
    _gate               consent, pause, working hours, app scope and password prompts, decided per
                        event before it is queued: what is out drops here, leaving only a marker
    _queue              bounded in-memory queue the listener callbacks submit to (never blocks)
    _writer             numbers events (seq), coalesces mouse moves, flushes chunks to the spool
    _spool              SQLite spool: chunks waiting for upload, uploads in flight, dead letters
    _observe            the policy's ``observe``: at each action boundary, what was in front (gated like events)
    _x11_frames         ... a frame of only the focused window (XComposite), geometry (RandR), Pillow encoding
    _observation_uploader  ... observations to ``POST /v1/observations``
    _uploader           retry, backoff and rate limits above ...
    _transport          ... one HTTP request per batch
    _agent              wiring, lifecycle and stats: ``Agent(AgentConfig(...)).run_until_signal()``
    _control            ``deskcorder agent pause|resume|status``: a Unix socket in the state directory
"""

from ._agent import Agent, AgentConfig, AgentError, load_device_id
from ._backend import LOSS_REASONS, CaptureBackend, CaptureUnavailable, EventSink, RawEvent
from ._control import send_command
from ._credential import CREDENTIAL_FILE, Credential, load_credential, save_credential
from ._gate import DEFAULT_PAUSE_HOTKEY, is_password_prompt
from ._status import CollectorStatus, FixedStatus, RecordingStatus, StatusSource
from ._spool import Spool, SpoolError, Upload
from ._transport import HandlerTransport, HttpTransport, Response, Transport, TransportError
from ._x11 import X11Backend

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentError",
    "CaptureBackend",
    "CaptureUnavailable",
    "CollectorStatus",
    "CREDENTIAL_FILE",
    "Credential",
    "DEFAULT_PAUSE_HOTKEY",
    "EventSink",
    "FixedStatus",
    "HandlerTransport",
    "HttpTransport",
    "LOSS_REASONS",
    "RawEvent",
    "RecordingStatus",
    "Response",
    "Spool",
    "SpoolError",
    "StatusSource",
    "Transport",
    "TransportError",
    "Upload",
    "X11Backend",
    "is_password_prompt",
    "load_credential",
    "load_device_id",
    "save_credential",
    "send_command",
]
