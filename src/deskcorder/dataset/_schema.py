"""The dataset's tables: column names, Arrow types and what each column means.

Defined once here; the Parquet files carry each description as field metadata
and the dataset card prints them, so the files and their documentation agree.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["ACTION_KINDS", "ACTION_COLUMNS", "ACTION_SCHEMA", "EPISODE_COLUMNS", "EPISODE_SCHEMA",
           "EPISODE_START_REASONS", "KEYSTROKE_COLUMNS", "KEYSTROKE_SCHEMA", "OBSERVATION_COLUMNS", "OBSERVATION_SCHEMA",
           "OPTIONAL_TABLES", "POINTER_COLUMNS", "POINTER_SCHEMA",
           "RELEASE_ACTION_COLUMNS", "RELEASE_ACTION_SCHEMA", "RELEASE_EPISODE_COLUMNS", "RELEASE_EPISODE_SCHEMA",
           "TABLES", "schemas"]

ACTION_KINDS: tuple[str, ...] = ("click", "double_click", "right_click", "middle_click", "drag", "scroll",
                                 "type", "hotkey", "key")

# Why an episode starts where it does (episodes.start_reason), in order of precedence.
EPISODE_START_REASONS: tuple[str, ...] = ("session_start", "out_of_scope", "pause", "gap", "resume",
                                          "app_switch", "idle_gap")

_Column = tuple[str, pa.DataType, bool, str]  # name, type, nullable, description

ACTION_COLUMNS: tuple[_Column, ...] = (
    ("action_id", pa.string(), False, "`<episode_id>-<seq_index:05d>`; the same input always gives the same id"),
    ("episode_id", pa.string(), False, "the episode of the action's first event"),
    ("session_id", pa.string(), False, "capture session the events came from (pseudonym)"),
    ("device_id", pa.string(), True, "device that recorded the session (pseudonym)"),
    ("person_id", pa.string(), True, "the person recorded (keyed-HMAC pseudonym; null when the device's owner is "
                                     "unknown)"),
    ("split", pa.string(), False, "train, validation or test; all of a person's data is in one split"),
    ("seq_index", pa.int32(), False, "position of the action in its episode, from 0"),
    ("kind", pa.string(), False, "one of " + ", ".join(ACTION_KINDS)),
    ("text", pa.string(), True, "type: the text typed, after backspaces inside the run, with secrets and personal "
                                "data replaced by placeholders such as <EMAIL>"),
    ("keys", pa.string(), True, "hotkey/key: the keys, e.g. `ctrl+shift+t`, `enter`; pointer actions: "
                                "the modifiers held, e.g. `ctrl` for ctrl+click (null when none)"),
    ("button", pa.string(), True, "pointer button of clicks and drags: left, right, middle, button8..."),
    ("x", pa.int32(), True, "pointer position where the action starts (press, first scroll step)"),
    ("y", pa.int32(), True, "pointer position where the action starts"),
    ("x2", pa.int32(), True, "drag: where the button was released"),
    ("y2", pa.int32(), True, "drag: where the button was released"),
    ("dx", pa.int32(), True, "scroll: horizontal steps, summed over the merged scroll events"),
    ("dy", pa.int32(), True, "scroll: vertical steps, summed (negative is down, as pynput reports)"),
    ("t_start_mono_ns", pa.int64(), False, "monotonic time of the first event of the action"),
    ("t_end_mono_ns", pa.int64(), False, "monotonic time of the last event of the action"),
    ("t_start_wall_ns", pa.int64(), False, "UTC wall-clock time of the first event, ns since the epoch"),
    ("app_class", pa.string(), True, "active application (WM_CLASS class) at the action's first event; "
                                     "null before the session's first focus event"),
    ("app_process", pa.string(), True, "process name of the active application"),
    ("window_title", pa.string(), True, "title of the active window at the action's first event (user names, "
                                        "hosts and personal data replaced by placeholders)"),
    ("event_seq_first", pa.int64(), False, "smallest seq in event_seqs"),
    ("event_seq_last", pa.int64(), False, "largest seq in event_seqs"),
    ("event_seqs", pa.list_(pa.field("item", pa.int64(), nullable=False)), False,
     "provenance: the seqs (within session_id) of exactly the raw events that formed the action, ascending"),
)

EPISODE_COLUMNS: tuple[_Column, ...] = (
    ("episode_id", pa.string(), False, "`<session_id>-<index:04d>`"),
    ("session_id", pa.string(), False, "capture session (pseudonym)"),
    ("device_id", pa.string(), True, "device that recorded the session (pseudonym)"),
    ("person_id", pa.string(), True, "the person recorded (pseudonym)"),
    ("split", pa.string(), False, "train, validation or test, by person"),
    ("episode_index", pa.int32(), False, "position of the episode in its session, from 0"),
    ("start_reason", pa.string(), False, "why the episode starts here: " + ", ".join(EPISODE_START_REASONS)),
    ("app_class", pa.string(), True, "active application at the episode's first event (null: not known yet)"),
    ("app_process", pa.string(), True, "its process name"),
    ("window_title", pa.string(), True, "active window title at the episode's first event"),
    ("t_start_mono_ns", pa.int64(), False, "monotonic time of the first event"),
    ("t_end_mono_ns", pa.int64(), False, "monotonic time of the last event"),
    ("t_start_wall_ns", pa.int64(), False, "UTC wall-clock time of the first event"),
    ("t_end_wall_ns", pa.int64(), False, "UTC wall-clock time of the last event"),
    ("event_seq_first", pa.int64(), False, "seq of the first event"),
    ("event_seq_last", pa.int64(), False, "seq of the last event"),
    ("n_events", pa.int64(), False, "raw events in the episode (every kind, moves included)"),
    ("n_actions", pa.int64(), False, "actions whose first event is in the episode"),
)


KEYSTROKE_COLUMNS: tuple[_Column, ...] = (
    ("action_id", pa.string(), False, "the type, hotkey or key action the press is part of"),
    ("person_id", pa.string(), True, "the person recorded (pseudonym)"),
    ("split", pa.string(), False, "train, validation or test, by person"),
    ("position", pa.int32(), False, "order of the press in its action, from 0 (modifier presses included)"),
    ("key_class", pa.string(), False, "letter, digit, space, punctuation, modifier, backspace, enter, navigation, "
                                      "function, other; redacted where the key's character was redacted"),
    ("key", pa.string(), True, "the key (a character as typed, or a name: enter, shift, f5); null where its "
                               "character lies in a redacted span or was deleted from a redacted run"),
    ("prev_key", pa.string(), True, "key of the previous press in the action (null: first, or masked)"),
    ("modifiers", pa.string(), True, "modifiers held when the key went down, e.g. `ctrl+shift` (null: none)"),
    ("hold_ms", pa.float64(), True, "key down to key up, ms (null: the release was not recorded)"),
    ("dd_ms", pa.float64(), True, "down-down: from the previous press's down, ms (null at position 0)"),
    ("ud_ms", pa.float64(), True, "up-down: from the previous press's up, ms; negative when they overlap"),
    ("rollover", pa.bool_(), False, "the next press of the action went down before this key came up"),
)

POINTER_COLUMNS: tuple[_Column, ...] = (
    ("action_id", pa.string(), False, "the action the path ends in (the click or drag approached, the drag, "
                                      "the scroll)"),
    ("person_id", pa.string(), True, "the person recorded (pseudonym)"),
    ("split", pa.string(), False, "train, validation or test, by person"),
    ("path_kind", pa.string(), False, "approach (moves before a press, at most 2 s, the press last), drag "
                                      "(down, moves, up) or scroll (each scroll step)"),
    ("sample", pa.int32(), False, "order of the sample in its path, from 0"),
    ("t_ms", pa.float64(), False, "time since the path's first sample, ms"),
    ("x", pa.int32(), False, "pointer position, screen pixels"),
    ("y", pa.int32(), False, "pointer position, screen pixels"),
    ("screen_width", pa.int32(), True, "screen size in pixels, to normalise x (null: not recorded)"),
    ("screen_height", pa.int32(), True, "screen size in pixels, to normalise y (null: not recorded)"),
)

_NORMALISED = "normalised to the window's client area, 0..1"
OBSERVATION_COLUMNS: tuple[_Column, ...] = (
    ("action_id", pa.string(), False, "the action this observation was taken for (the actions table's id)"),
    ("episode_id", pa.string(), False, "the action's episode"),
    ("person_id", pa.string(), True, "the person recorded (pseudonym)"),
    ("split", pa.string(), False, "train, validation or test, by person (the action's)"),
    ("seq_index", pa.int32(), False, "the action's position in its episode"),
    ("trigger", pa.string(), False, "what took it: button_down, typing_start, hotkey, scroll_start"),
    ("x_screen", pa.float64(), True, "pointer actions: x of the action normalised to the screen, 0..1 "
                                     "(null for keyboard actions)"),
    ("y_screen", pa.float64(), True, "pointer actions: y normalised to the screen, 0..1"),
    ("x_window", pa.float64(), True, "pointer actions: x " + _NORMALISED + " (the frame's own coordinates)"),
    ("y_window", pa.float64(), True, "pointer actions: y " + _NORMALISED),
    ("screen_width", pa.int32(), False, "screen size in pixels"),
    ("screen_height", pa.int32(), False, "screen size in pixels"),
    ("window_x", pa.float64(), False, "left edge of the window's client area, normalised to the screen"),
    ("window_y", pa.float64(), False, "top edge of the window's client area, normalised to the screen"),
    ("window_width", pa.int32(), False, "the window's client area in screen pixels"),
    ("window_height", pa.int32(), False, "the window's client area in screen pixels"),
    ("dpi", pa.float64(), True, "dots per inch of the screen (null: not known)"),
    ("frame", pa.string(), True, "the frame of the window just before the action, a PNG file relative to the "
                                 "dataset folder (`frames/<episode_id>/<seq_index>.png`), with every text the "
                                 "redactor flags blacked out; null: no frame taken, or one OCR could not check"),
    ("frame_width", pa.int32(), True, "the frame's size in pixels (the window, downscaled)"),
    ("frame_height", pa.int32(), True, "the frame's size in pixels"),
    ("masked_regions", pa.int32(), True, "boxes blacked out in the frame (password fields, secrets and personal "
                                         "data read by OCR)"),
    ("element_role", pa.string(), True, "the UI element under the pointer at a click (AT-SPI role, e.g. "
                                        "`push button`); null: none known"),
    ("element_name", pa.string(), True, "its accessible name, with secrets and personal data replaced by "
                                        "placeholders; null for a protected element (password field)"),
    ("element_states", pa.list_(pa.field("item", pa.string())), True, "its AT-SPI states"),
    ("element_ancestors", pa.list_(pa.field("item", pa.string())), True, "its ancestors' roles, nearest first"),
    ("element_protected", pa.bool_(), True, "a password field or protected element (name withheld, box black)"),
    ("element_x", pa.float64(), True, "the element's left edge " + _NORMALISED),
    ("element_y", pa.float64(), True, "the element's top edge " + _NORMALISED),
    ("element_width", pa.float64(), True, "the element's width " + _NORMALISED),
    ("element_height", pa.float64(), True, "the element's height " + _NORMALISED),
)

# A release (the default build) keeps no clock: what a time says about a person is reduced to the day and
# to durations inside the episode, re-derived from the anonymised timings (see _release.py).
_RELEASE_DROPPED = ("t_start_mono_ns", "t_end_mono_ns", "t_start_wall_ns", "t_end_wall_ns", "event_seq_first",
                    "event_seq_last", "event_seqs")
_DAY: _Column = ("day", pa.string(), True, "UTC day of the episode, YYYY-MM-DD (null unless at least 5 "
                                           "people recorded on each day shown for this person)")
RELEASE_ACTION_COLUMNS: tuple[_Column, ...] = tuple(c for c in ACTION_COLUMNS if c[0] not in _RELEASE_DROPPED) + (
    _DAY,
    ("t_start_ms", pa.float64(), False, "start, ms since the episode's start (re-derived from anonymised timings, "
                                        "pauses between actions rounded to 100 ms)"),
    ("t_end_ms", pa.float64(), False, "end, ms since the episode's start (its anonymised duration after the start)"),
    ("n_events", pa.int64(), False, "how many raw events formed the action"),
)
RELEASE_EPISODE_COLUMNS: tuple[_Column, ...] = tuple(c for c in EPISODE_COLUMNS if c[0] not in _RELEASE_DROPPED) + (
    _DAY,
    ("duration_s", pa.float64(), False, "the episode's actions from first start to last end, rounded to 10 s"),
)


def _schema(columns: tuple[_Column, ...]) -> pa.Schema:
    return pa.schema([pa.field(name, typ, nullable=nullable, metadata={"description": doc})
                      for name, typ, nullable, doc in columns])


ACTION_SCHEMA = _schema(ACTION_COLUMNS)
EPISODE_SCHEMA = _schema(EPISODE_COLUMNS)
KEYSTROKE_SCHEMA = _schema(KEYSTROKE_COLUMNS)
POINTER_SCHEMA = _schema(POINTER_COLUMNS)
OBSERVATION_SCHEMA = _schema(OBSERVATION_COLUMNS)
RELEASE_ACTION_SCHEMA = _schema(RELEASE_ACTION_COLUMNS)
RELEASE_EPISODE_SCHEMA = _schema(RELEASE_EPISODE_COLUMNS)

# The tables of a dataset, in the order the card lists them; actions is the default config.
TABLES: tuple[str, ...] = ("actions", "episodes", "keystrokes", "pointer")
# Written only by a build given observations (a dataset of actions alone has no such files).
OPTIONAL_TABLES: tuple[str, ...] = ("observations",)


def schemas(mode: str) -> dict[str, tuple[tuple[_Column, ...], pa.Schema]]:
    """Each table's columns and schema in a build of ``mode`` (release or internal)."""
    release = mode == "release"
    return {
        "actions": (RELEASE_ACTION_COLUMNS, RELEASE_ACTION_SCHEMA) if release else (ACTION_COLUMNS, ACTION_SCHEMA),
        "episodes": (RELEASE_EPISODE_COLUMNS, RELEASE_EPISODE_SCHEMA) if release
        else (EPISODE_COLUMNS, EPISODE_SCHEMA),
        "keystrokes": (KEYSTROKE_COLUMNS, KEYSTROKE_SCHEMA),
        "pointer": (POINTER_COLUMNS, POINTER_SCHEMA),
        "observations": (OBSERVATION_COLUMNS, OBSERVATION_SCHEMA),
    }
