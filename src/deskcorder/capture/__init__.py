"""capture stage: the agent that records input on a workstation, spools it durably and uploads it.

The flow, one private module per step::

    _x11 / _x11_focus   platform backend: pynput listeners and the active-window tracker
    _queue              bounded in-memory queue the listener callbacks submit to (never blocks)
    _writer             numbers events (seq), coalesces mouse moves, flushes chunks to the spool
    _spool              SQLite spool: chunks waiting for upload, uploads in flight, dead letters
    _uploader           retry, backoff and rate limits above ...
    _transport          ... one HTTP request per batch
    _agent              wiring, lifecycle and stats: ``Agent(AgentConfig(...)).run_until_signal()``
"""

from ._agent import Agent, AgentConfig, AgentError, load_device_id
from ._backend import LOSS_REASONS, CaptureBackend, CaptureUnavailable, EventSink, RawEvent
from ._spool import Spool, SpoolError, Upload
from ._transport import HandlerTransport, HttpTransport, Response, Transport, TransportError
from ._x11 import X11Backend

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentError",
    "CaptureBackend",
    "CaptureUnavailable",
    "EventSink",
    "HandlerTransport",
    "HttpTransport",
    "LOSS_REASONS",
    "RawEvent",
    "Response",
    "Spool",
    "SpoolError",
    "Transport",
    "TransportError",
    "Upload",
    "X11Backend",
    "load_device_id",
]
