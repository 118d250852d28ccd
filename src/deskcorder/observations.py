"""The observation model: what the person saw and acted on, defined once.

An event says what the person did; an observation says what was in front of
them when they did it. A computer-use agent learns from (observation, action)
pairs, so each observation belongs to one action event: ``(session_id,
action_seq)`` names that event (a button press, the first key of a typing
run, a hotkey, the start of a scroll) in ``deskcorder.events``.

Observations are a second kind of stored data beside events, gated by the
policy's ``observe`` setting (``none`` by default; ``elements`` records only
the UI element under a click; ``frames`` also records a frame of the focused
allowed window). They are sealed with the person's key like events and go
wherever events go on erasure, retention, deletion and export.

What an observation holds:

- geometry in force (screen, monitors, window client area, DPI), so every
  coordinate of the action can be normalised to the window and the screen;
- ``frame``: an image of only the focused allowed window (never the whole
  screen), downscaled, WebP or PNG, with ``masked`` boxes already blacked
  out by the agent (protected UI elements such as password fields);
- ``element``: the UI element under the pointer at a click, read over AT-SPI
  (role, name, states, box, ancestors' roles). A protected element (password
  role or protected state) carries no name, and its box is black in the frame.

Coordinates are root-window pixels (the X screen) unless a field says
otherwise; ``masked`` boxes and nothing else are in frame pixels.

Pillow and pyarrow are never imported here: the agent builds observations
from plain values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Box", "Element", "Frame", "Observation", "OBSERVE_LEVELS", "TRIGGERS", "FRAME_FORMATS"]

# The policy's ``observe`` setting, from least to most recorded.
OBSERVE_LEVELS: tuple[str, ...] = ("none", "elements", "frames")
# The action boundaries that take an observation (the kind of the action event, or a typing run's start).
TRIGGERS: tuple[str, ...] = ("button_down", "typing_start", "hotkey", "scroll_start")
FRAME_FORMATS: tuple[str, ...] = ("webp", "png")


@dataclasses.dataclass(slots=True, frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int


@dataclasses.dataclass(slots=True)
class Element:
    role: str  # AT-SPI role name, e.g. "push button", "text", "password text"
    name: str | None  # accessible name (label); None when protected or unnamed
    states: list[str]  # AT-SPI state names, e.g. ["enabled", "focused", "sensitive"]
    box: Box  # screen coordinates
    ancestors: list[str]  # roles from the parent up to the application, nearest first
    protected: bool = False  # password role or protected state: no name, box blacked out in the frame


@dataclasses.dataclass(slots=True)
class Frame:
    format: str  # one of FRAME_FORMATS
    width: int  # encoded image size (after downscaling)
    height: int
    data: bytes  # the encoded image
    masked: list[Box] = dataclasses.field(default_factory=list)  # frame pixels blacked out by the agent


@dataclasses.dataclass(slots=True)
class Observation:
    session_id: str
    action_seq: int  # seq of the action event this observation belongs to
    t_mono_ns: int  # when the observation was taken (same clock as events' t_mono_ns)
    t_wall_ns: int
    trigger: str  # one of TRIGGERS
    screen_width: int
    screen_height: int
    window_x: int  # the focused window's client area in root coordinates
    window_y: int
    window_width: int
    window_height: int
    monitors: list[Box] = dataclasses.field(default_factory=list)  # RandR monitors, root coordinates
    dpi: float | None = None  # horizontal dots per inch of the screen (RandR physical size)
    frame: Frame | None = None
    element: Element | None = None

    def to_plain(self) -> dict[str, Any]:
        """Plain values (dicts, lists, bytes) for MessagePack: what the agent sends."""
        return dataclasses.asdict(self)
