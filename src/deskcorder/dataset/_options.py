"""``BuildOptions``: the thresholds that decide how raw events become episodes and actions."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["BuildOptions", "FORMATS", "MODES"]

# parquet and jsonl: the tables; trajectories: the AgentNet-style export beside them (_trajectories.py).
FORMATS: tuple[str, ...] = ("parquet", "jsonl", "trajectories")
_TABLE_FORMATS = ("parquet", "jsonl")
# release: anonymised timings, no clock finer than the day, fresh pseudonyms (the default; see _release.py);
# internal: raw timings and the store's stable pseudonyms, for work inside the organisation (audited).
MODES: tuple[str, ...] = ("release", "internal")


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """How to cut sessions into episodes and merge events into actions (times in seconds, distances in pixels)."""

    idle_gap_s: float = 30.0  # a longer pause between two events starts a new episode
    drag_threshold_px: int = 5  # a press released farther than this from where it went down is a drag
    double_click_s: float = 0.4  # max time between the two presses of a double click
    double_click_px: int = 4  # max distance between the two presses of a double click
    scroll_merge_s: float = 0.5  # max pause between two scroll events merged into one scroll action
    type_merge_s: float = 2.0  # max pause inside one typed run
    formats: tuple[str, ...] = _TABLE_FORMATS  # which files to write (trajectories alone: parquet tables too)
    mode: str = "release"  # one of MODES
    linkable: bool = False  # release with the store's pseudonyms, so two releases can be joined (audited)

    def __post_init__(self) -> None:
        for name in ("idle_gap_s", "double_click_s", "scroll_merge_s", "type_merge_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"BuildOptions.{name} must be a positive number of seconds, not {value!r}")
        for name in ("drag_threshold_px", "double_click_px"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"BuildOptions.{name} must be a whole number of pixels >= 0, not {value!r}")
        formats = (self.formats,) if isinstance(self.formats, str) else tuple(self.formats)
        unknown = [f for f in formats if f not in FORMATS]
        if unknown or not formats or len(set(formats)) != len(formats):
            raise ValueError(f"BuildOptions.formats must name each of {', '.join(FORMATS)} at most once "
                             f"(at least one), not {self.formats!r}")
        if not any(f in _TABLE_FORMATS for f in formats):
            formats = ("parquet", *formats)  # the trajectories name frames and rows the tables describe
        object.__setattr__(self, "formats", formats)
        if self.mode not in MODES:
            raise ValueError(f"BuildOptions.mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not isinstance(self.linkable, bool):
            raise ValueError(f"BuildOptions.linkable must be True or False, not {self.linkable!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}
