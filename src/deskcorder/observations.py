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

The wire format (``POST /v1/observations``, MessagePack only: a frame is
binary, which JSON cannot carry)::

    {"v": 1, "device_id": "<8-128 chars [A-Za-z0-9_.:-]>",
     "observations": [Observation.to_plain(), ...]}

``encode_observations`` builds it, ``decode_observations`` reads it back into
``Observation`` objects. Decoding is bounded like ``deskcorder.wire``'s:
msgpack refuses any array, object, text or binary longer than a valid body
can hold before it builds it, and the arrays and objects of a whole body are
counted as they are built. Then every field is checked: values are never
coerced (``action_seq: 5.0``, ``"v": true``, ``dpi: 96`` are refused), and an
error names the field with its place (``observations[3].frame.masked[0].x``).
A frame's bytes must start as its format says (RIFF....WEBP or the PNG
signature); the image itself is not decoded here (no Pillow on the collector's
hot path).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import msgpack

from .wire import InvalidBatch, UnreadableBatch

__all__ = ["Box", "Element", "Frame", "Observation", "OBSERVE_LEVELS", "TRIGGERS", "FRAME_FORMATS",
           "ObservationBatch", "InvalidObservations", "UnreadableObservations", "OBSERVATIONS_WIRE_VERSION",
           "MAX_OBSERVATIONS_PER_BODY", "MAX_FRAME_BYTES", "MAX_BODY_BYTES", "encode_observations",
           "decode_observations"]

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


# --- wire format (see the module docstring) ---

OBSERVATIONS_WIRE_VERSION = 1
MAX_OBSERVATIONS_PER_BODY = 64  # an agent sends a few seconds' worth (at most 2 frames per second by default)
MAX_FRAME_BYTES = 4 * 1024 * 1024  # one encoded frame; a 1280 px WebP is ~50-200 KiB
MAX_BODY_BYTES = 32 * 1024 * 1024  # a whole body; the collector refuses a longer one (413) before reading it
MAX_FRAME_SIDE = 8192  # encoded frame width/height (the agent's default long side is 1280)
MAX_MONITORS = 16
MAX_MASKED = 64  # boxes blacked out in one frame
MAX_LIST = 64  # states, ancestors
_MAX_TEXT = {"session_id": 64, "role": 64, "name": 1024, "state": 64, "ancestor": 64}
_MAX_COORD = 1_000_000  # as deskcorder.events' coordinates
_INT64 = (1 << 63) - 1
_ID = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")  # as deskcorder.wire's ids
_MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "webp": (b"RIFF", b"WEBP")}
_TOP = ("v", "device_id", "observations")
_OBS_FIELDS = tuple(f.name for f in dataclasses.fields(Observation))
_FRAME_FIELDS = tuple(f.name for f in dataclasses.fields(Frame))
_ELEMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Element))
_BOX_FIELDS = tuple(f.name for f in dataclasses.fields(Box))
# Arrays and objects a valid body can hold: itself and its list, and per observation its object, the
# monitors (list + boxes), the frame (object, masked list + boxes) and the element (object, box, two lists).
_MAX_CONTAINERS = 2 + MAX_OBSERVATIONS_PER_BODY * (1 + 1 + MAX_MONITORS + 2 + MAX_MASKED + 4)


class InvalidObservations(InvalidBatch):
    """The body is not a valid observations upload; ``field`` names the first problem (e.g.
    ``observations[2].frame.data``). An InvalidBatch: the collector answers it as it answers a bad batch."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(f"field '{field}': {message}" if field else message, field=field)


class UnreadableObservations(InvalidObservations, UnreadableBatch):
    """The body could not be decoded at all (not MessagePack, or built beyond any valid body's limits)."""


@dataclasses.dataclass(frozen=True)
class ObservationBatch:
    device_id: str
    observations: list[Observation]


def encode_observations(device_id: str, observations: list[Observation]) -> bytes:
    """The body of ``POST /v1/observations`` (MessagePack)."""
    body = {"v": OBSERVATIONS_WIRE_VERSION, "device_id": device_id,
            "observations": [o.to_plain() for o in observations]}
    return msgpack.packb(body, use_bin_type=True)


def decode_observations(body: bytes) -> ObservationBatch:
    """A MessagePack body to checked observations; raises InvalidObservations naming the field."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidObservations(f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}", field="body")
    try:
        obj = _unpack(body)
    except InvalidObservations:
        raise
    except (ValueError, RecursionError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise UnreadableObservations(f"body is not valid MessagePack within the limits of an observations "
                                     f"upload: {exc}", field="body") from exc
    if not isinstance(obj, dict):
        raise InvalidObservations("body must be an object with v, device_id and observations", field="body")
    _known(obj, _TOP, "")
    version = obj.get("v")
    if type(version) is not int or version != OBSERVATIONS_WIRE_VERSION:
        raise InvalidObservations(f"unsupported version {ascii(version)[:40]}; this collector speaks "
                                  f"v={OBSERVATIONS_WIRE_VERSION} (an integer)", field="v")
    device_id = obj.get("device_id")
    if not isinstance(device_id, str) or not _ID.fullmatch(device_id):
        raise InvalidObservations(f"must be 8-128 characters of A-Z a-z 0-9 _ . : -, got {ascii(device_id)[:140]}",
                                  field="device_id")
    items = obj.get("observations")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_OBSERVATIONS_PER_BODY:
        raise InvalidObservations(f"must be a list of 1 to {MAX_OBSERVATIONS_PER_BODY} observations",
                                  field="observations")
    observations = [_observation(item, f"observations[{i}]") for i, item in enumerate(items)]
    seen: set[tuple[str, int]] = set()
    for i, o in enumerate(observations):
        key = (o.session_id, o.action_seq)
        if key in seen:  # one observation per action: a body repeating one is corrupt
            raise InvalidObservations(f"repeats the observation of session {o.session_id!r} action "
                                      f"{o.action_seq}", field=f"observations[{i}].action_seq")
        seen.add(key)
    return ObservationBatch(device_id, observations)


def _unpack(body: bytes) -> Any:
    containers = [0]

    def counted(value: Any) -> Any:
        containers[0] += 1
        if containers[0] > _MAX_CONTAINERS:
            raise UnreadableObservations(f"body holds more than {_MAX_CONTAINERS} arrays and objects; no valid "
                                         f"upload of {MAX_OBSERVATIONS_PER_BODY} observations has more",
                                         field="observations")
        return value

    def mapping(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):  # a decoder keeps the last silently; two readers could see two uploads
            raise InvalidObservations("a field appears twice in one object", field="body")
        return counted(obj)

    return msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True, list_hook=counted,
                           object_pairs_hook=mapping, max_array_len=2 * max(MAX_OBSERVATIONS_PER_BODY, MAX_MASKED,
                                                                        MAX_LIST, MAX_MONITORS),
                           max_map_len=len(_OBS_FIELDS) + 4, max_str_len=64 * 1024,
                           # Texts and binaries are checked by field below (the body's size bounds them here),
                           # so that a frame over MAX_FRAME_BYTES is refused naming its place.
                           max_bin_len=MAX_BODY_BYTES, max_ext_len=0)


def _known(obj: dict[Any, Any], names: tuple[str, ...], where: str) -> None:
    unknown = sorted(ascii(k) if not isinstance(k, str) else k for k in obj if k not in names)
    if unknown:
        raise InvalidObservations(f"unknown field {unknown[0]!r}; known: {', '.join(names)}",
                                  field=f"{where}.{unknown[0]}".lstrip("."))


def _object(value: Any, names: tuple[str, ...], where: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidObservations(f"must be an object, got {type(value).__name__}", field=where)
    _known(value, names, where)
    for name in required:
        if name not in value:
            raise InvalidObservations("is required", field=f"{where}.{name}")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if type(value) is not int:  # not bool, not 5.0
        raise InvalidObservations(f"must be an integer, got {type(value).__name__}", field=where)
    if not low <= value <= high:
        raise InvalidObservations(f"must be between {low} and {high}, got {value}", field=where)
    return value


def _text(value: Any, where: str, limit: int, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise InvalidObservations(f"must be text, got {type(value).__name__}", field=where)
    if len(value) > limit:
        raise InvalidObservations(f"longer than {limit} characters", field=where)
    if "\x00" in value:
        raise InvalidObservations("must not contain NUL (U+0000)", field=where)
    try:
        value.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate cannot be stored as UTF-8
        raise InvalidObservations("is not valid Unicode text", field=where) from exc
    return value


def _texts(value: Any, where: str, limit: int) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise InvalidObservations(f"must be a list of at most {MAX_LIST} texts", field=where)
    return [_text(v, f"{where}[{i}]", limit) for i, v in enumerate(value)]  # type: ignore[misc]


def _box(value: Any, where: str) -> Box:
    obj = _object(value, _BOX_FIELDS, where, _BOX_FIELDS)
    return Box(_int(obj["x"], f"{where}.x", -_MAX_COORD, _MAX_COORD), _int(obj["y"], f"{where}.y", -_MAX_COORD, _MAX_COORD),
               _int(obj["width"], f"{where}.width", 0, _MAX_COORD),
               _int(obj["height"], f"{where}.height", 0, _MAX_COORD))


def _boxes(value: Any, where: str, limit: int) -> list[Box]:
    if not isinstance(value, list) or len(value) > limit:
        raise InvalidObservations(f"must be a list of at most {limit} boxes", field=where)
    return [_box(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _frame(value: Any, where: str) -> Frame:
    obj = _object(value, _FRAME_FIELDS, where, ("format", "width", "height", "data"))
    fmt = obj["format"]
    if fmt not in FRAME_FORMATS or not isinstance(fmt, str):
        raise InvalidObservations(f"must be one of {', '.join(FRAME_FORMATS)}, got {ascii(fmt)[:40]}",
                                  field=f"{where}.format")
    width = _int(obj["width"], f"{where}.width", 1, MAX_FRAME_SIDE)
    height = _int(obj["height"], f"{where}.height", 1, MAX_FRAME_SIDE)
    data = obj["data"]
    if type(data) is not bytes:
        raise InvalidObservations(f"must be binary (MessagePack bin), got {type(data).__name__}",
                                  field=f"{where}.data")
    if not 0 < len(data) <= MAX_FRAME_BYTES:
        raise InvalidObservations(f"{len(data)} bytes; a frame holds 1 to {MAX_FRAME_BYTES}", field=f"{where}.data")
    magic = _MAGIC[fmt]
    if not (data.startswith(magic[0]) and (len(magic) == 1 or data[8:12] == magic[1])):
        raise InvalidObservations(f"is not a {fmt.upper()} image (its first bytes are {data[:12]!r})",
                                  field=f"{where}.data")
    masked = _boxes(obj.get("masked", []), f"{where}.masked", MAX_MASKED)
    for i, box in enumerate(masked):
        if box.x < 0 or box.y < 0 or box.x + box.width > width or box.y + box.height > height:
            raise InvalidObservations(f"{box} lies outside the {width}x{height} frame", field=f"{where}.masked[{i}]")
    return Frame(fmt, width, height, data, masked)


def _element(value: Any, where: str) -> Element:
    obj = _object(value, _ELEMENT_FIELDS, where, ("role", "name", "states", "box", "ancestors"))
    protected = obj.get("protected", False)
    if type(protected) is not bool:
        raise InvalidObservations(f"must be true or false, got {type(protected).__name__}", field=f"{where}.protected")
    name = _text(obj["name"], f"{where}.name", _MAX_TEXT["name"], nullable=True)
    if protected and name is not None:  # the agent drops it; a name here would store what the person protected
        raise InvalidObservations("a protected element (password role or protected state) carries no name; "
                                  "send null", field=f"{where}.name")
    return Element(_text(obj["role"], f"{where}.role", _MAX_TEXT["role"]), name,  # type: ignore[arg-type]
                   _texts(obj["states"], f"{where}.states", _MAX_TEXT["state"]), _box(obj["box"], f"{where}.box"),
                   _texts(obj["ancestors"], f"{where}.ancestors", _MAX_TEXT["ancestor"]), protected)


def _observation(value: Any, where: str) -> Observation:
    required = tuple(f.name for f in dataclasses.fields(Observation)
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    obj = _object(value, _OBS_FIELDS, where, required)
    session_id = _text(obj["session_id"], f"{where}.session_id", _MAX_TEXT["session_id"])
    if not session_id:
        raise InvalidObservations("must not be empty", field=f"{where}.session_id")
    trigger = obj["trigger"]
    if not isinstance(trigger, str) or trigger not in TRIGGERS:
        raise InvalidObservations(f"must be one of {', '.join(TRIGGERS)}, got {ascii(trigger)[:40]}",
                                  field=f"{where}.trigger")
    dpi = obj.get("dpi")
    if dpi is not None and (type(dpi) is not float or not math.isfinite(dpi) or not 1.0 <= dpi <= 10_000.0):
        raise InvalidObservations(f"must be null or a float between 1 and 10000, got {ascii(dpi)[:40]}",
                                  field=f"{where}.dpi")
    frame = obj.get("frame")
    element = obj.get("element")
    return Observation(
        session_id=session_id, action_seq=_int(obj["action_seq"], f"{where}.action_seq", 0, _INT64),
        t_mono_ns=_int(obj["t_mono_ns"], f"{where}.t_mono_ns", 0, _INT64),
        t_wall_ns=_int(obj["t_wall_ns"], f"{where}.t_wall_ns", 0, _INT64), trigger=trigger,
        screen_width=_int(obj["screen_width"], f"{where}.screen_width", 1, _MAX_COORD),
        screen_height=_int(obj["screen_height"], f"{where}.screen_height", 1, _MAX_COORD),
        window_x=_int(obj["window_x"], f"{where}.window_x", -_MAX_COORD, _MAX_COORD),
        window_y=_int(obj["window_y"], f"{where}.window_y", -_MAX_COORD, _MAX_COORD),
        window_width=_int(obj["window_width"], f"{where}.window_width", 1, _MAX_COORD),
        window_height=_int(obj["window_height"], f"{where}.window_height", 1, _MAX_COORD),
        monitors=_boxes(obj.get("monitors", []), f"{where}.monitors", MAX_MONITORS), dpi=dpi,
        frame=None if frame is None else _frame(frame, f"{where}.frame"),
        element=None if element is None else _element(element, f"{where}.element"))
