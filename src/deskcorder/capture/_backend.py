"""The seam between a platform's input hooks and the rest of the agent.

A ``CaptureBackend`` (X11 today; macOS and Windows later, behind the same
protocol) turns OS input into ``RawEvent`` tuples and hands each one to an
``EventSink`` from its listener callback. The sink stamps the timestamps and
queues the event; the backend never sees sessions, sequence numbers, the
spool or the network.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from .._errors import DeskcorderError
from ..events import FIELD_NAMES, LOSS_REASONS, EventKind

__all__ = ["CaptureBackend", "CaptureUnavailable", "EventSink", "RawEvent", "LOSS_REASONS"]

# LOSS_REASONS (from the event model): every way an event can be lost, counted by
# ``Agent.stats()["lost"]`` and written into the stream as a GAP event where it happened.


class CaptureUnavailable(DeskcorderError, RuntimeError):
    """This machine cannot capture input; the message says what is missing and how to fix it."""


class RawEvent(NamedTuple):
    """An event as a listener sees it: no session, seq or timestamps yet (the sink adds them)."""

    kind: EventKind
    key: str | None = None
    char: str | None = None
    vk: int | None = None
    button: str | None = None
    x: int | None = None
    y: int | None = None
    dx: int | None = None
    dy: int | None = None
    app_process: str | None = None
    app_class: str | None = None
    window_title: str | None = None
    reason: str | None = None
    screen_width: int | None = None
    screen_height: int | None = None
    window_x: int | None = None
    window_y: int | None = None
    window_width: int | None = None
    window_height: int | None = None
    lost: int | None = None


# The writer turns (session, seq, t_mono, t_wall) + RawEvent into columns by position.
assert RawEvent._fields == FIELD_NAMES[4:], "RawEvent must follow the event model's column order"


class EventSink(Protocol):
    def submit(self, event: RawEvent) -> bool:
        """Timestamp and queue one event; never blocks. False when it was not kept (paused, full)."""

    def record_lost(self, reason: str, quantity: int = 1) -> None:
        """Count events that were lost before they could be submitted (reason from LOSS_REASONS)."""

    def fail(self, error: BaseException) -> None:
        """The backend stopped capturing for good (for example the display went away)."""


class CaptureBackend(Protocol):
    def start(self, sink: EventSink) -> None:
        """Start delivering events; return once capture is live. Raises CaptureUnavailable."""

    def stop(self) -> None:
        """Stop delivering events and release the platform hooks."""

    def resync(self) -> None:
        """Re-submit context that later events depend on (the active window's FOCUS event)."""
