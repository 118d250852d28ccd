"""``build_dataset_streaming``: the build read and reduced one group of whole sessions at a time.

A whole-table build holds every raw event of the store at once (the Arrow
table ``read_events`` returns, then ``prepare``'s sorted frame and the
reducers' column lists). Sessions are independent for everything
``_build._compute`` does (episodes, actions, key presses, pointer paths, typed
text redaction: see ``_distributed.py``), so here the events come in as an
iterator of tables of whole sessions, in session order; each group is
reduced and dropped before the next is read. What is kept across groups is
the reduced ``_Part`` of each (actions, episodes, key presses, pointer
samples), which ``_build._finish`` joins and writes exactly as the
whole-table build and the Dask build do, so the files are the same bytes.

``_finish`` (titles, pseudonyms, the release's anonymisation, which models
timings across all people, the statistics and the write) still runs on the
joined reduced tables: those are what is left, per event, of the whole store.

``BuildProgress`` reports events done, the rate and the time left: a Rich bar
on a terminal, a plain line every ``every_s`` seconds otherwise (a log file,
a CI job), so a long build never sits silent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

from ._build import DatasetError, DatasetStats, _begin, _compute, _finish, _frame_redactor, _Pseudonymizer, _Redactor
from ._options import BuildOptions

if TYPE_CHECKING:
    from ..observations import Observation
    from ..privacy import FrameRedactor

__all__ = ["DEFAULT_GROUP_EVENTS", "BuildProgress", "build_dataset_streaming", "session_groups"]

# Events per group: peak memory follows the largest group (or the largest session, which is never split).
# A million events is ~0.3-1 GB of working state in the reducers, and still a few seconds of work, so the
# progress moves often.
DEFAULT_GROUP_EVENTS = 1_000_000


def session_groups(sizes: Sequence[tuple[str, int]], max_events: int) -> list[list[str]]:
    """Session ids, sorted, cut into consecutive groups of at most ``max_events`` events (a bigger session
    is a group of its own). ``sizes`` is (session_id, events) per session."""
    if max_events < 1:
        raise DatasetError(f"a session group must hold at least 1 event, not {max_events}")
    groups: list[list[str]] = []
    held = 0
    for session, n in sorted(sizes):
        if not groups or held + n > max_events:
            groups.append([])
            held = 0
        groups[-1].append(session)
        held += n
    return groups


class _RateColumn(ProgressColumn):
    """Events per second (Rich has a byte rate, not a count rate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} events/s", style="progress.data.speed")


class BuildProgress:
    """Events built so far, against the total, with the rate and the time left.

    On a terminal, a Rich bar on ``progress`` (its columns: ``BuildProgress.columns()``); elsewhere one line
    on ``console`` at most every ``every_s`` seconds, and at the end.
    """

    def __init__(self, total_events: int, *, progress: Progress | None = None, console: Console | None = None,
                 every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done = total_events, 0
        self._progress, self._console, self._every, self._clock = progress, console, every_s, clock
        self._start = self._last = clock()
        self._task = progress.add_task("building", total=total_events) if progress is not None else None

    @staticmethod
    def columns() -> tuple[ProgressColumn, ...]:
        return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())

    def stage(self, description: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)
        elif self._console is not None:
            self._console.print(f"dataset build: {description}", highlight=False)

    def advance(self, events: int, description: str | None = None) -> None:
        self.done += events
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=events, **({"description": description} if description else {}))
            return
        now = self._clock()
        if self._console is not None and (now - self._last >= self._every or self.done >= self.total):
            self._last = now
            self._console.print(self.line(now), highlight=False)

    def line(self, now: float) -> str:
        spent = max(now - self._start, 1e-9)
        rate = self.done / spent
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = "unknown" if left == float("inf") else f"{left:.0f} s"
        return (f"dataset build: {self.done:,} of {self.total:,} events ({100 * self.done / max(self.total, 1):.0f} %),"
                f" {rate:,.0f} events/s, {spent:.0f} s spent, about {eta} left")


def build_dataset_streaming(groups: Iterable[pa.Table], out: Path | str, options: BuildOptions = BuildOptions(), *,
                            redactor: _Redactor | None = None, pseudonymizer: _Pseudonymizer | None = None,
                            device_to_employee: Mapping[str, str] | None = None,
                            known_identifiers: Iterable[str] = (), provenance: Mapping[str, Any] | None = None,
                            overwrite: bool = False, progress: Progress | None = None,
                            report: BuildProgress | None = None,
                            observations: Iterable[Observation] | None = None,
                            frame_redactor: FrameRedactor | None = None) -> DatasetStats:
    """``build_dataset`` over ``groups``: tables of whole sessions, each session in one group, groups in session
    order (``session_groups``); the same files as ``build_dataset`` on their concatenation.

    Each group is read (the iterator's next table), reduced, and let go before the next; ``report`` counts it.
    """
    out = Path(out)
    tables: Iterator[pa.Table] = (g for g in groups if g.num_rows)
    first = next(tables, None)
    if first is None:
        first = pa.table({})  # _begin says there is nothing to build
    redactor, pseudonymizer, known, step = _begin(first, out, overwrite, redactor, pseudonymizer,
                                                  known_identifiers, progress, "sorting events into episodes")
    observed = None if observations is None else list(observations)
    frames = _frame_redactor(frame_redactor, redactor, observed)
    by_session = _ObservationRouter(observed)
    parts = []
    group: pa.Table | None = first
    while group is not None:
        parts.append(_compute(group, options, redactor, known, observations=by_session.take(group),
                              frame_redactor=frames))
        if report is not None:
            report.advance(group.num_rows, "reading and reducing events")
        group = None  # let the raw events go before the next group is read
        group = next(tables, None)
    if by_session.left:
        # The whole-table build counts them as matching no action; here the first group is built before
        # it is known that they match none, so they are refused rather than silently dropped.
        raise DatasetError(f"{len(by_session.left)} observations belong to no session of this build; pass only "
                           "those of its sessions (build_from_store reads only those)")
    step("reducing events to actions")
    step("redacting and pseudonymising")
    if report is not None:
        report.stage("redacting, pseudonymising and writing")
    stats = _finish(parts, out, options, pseudonymizer=pseudonymizer, redactor=redactor,
                    device_to_employee=device_to_employee or {}, known=known, provenance=provenance or {},
                    overwrite=overwrite, step=step)
    step("done")
    if report is not None:
        report.stage("done")
    return stats


class _ObservationRouter:
    """Hands each group the observations of its sessions, in their given order (as the Dask build does);
    those of no group built are ``left``."""

    def __init__(self, observations: list[Observation] | None) -> None:
        self.enabled = observations is not None
        self._by: dict[str, list[tuple[int, Observation]]] = {}
        for i, obs in enumerate(observations or ()):
            self._by.setdefault(obs.session_id, []).append((i, obs))

    def take(self, group: pa.Table) -> list[Observation] | None:
        if not self.enabled:
            return None
        mine = [pair for s in group.column("session_id").unique().to_pylist() for pair in self._by.pop(s, ())]
        return [obs for _, obs in sorted(mine, key=lambda pair: pair[0])]

    @property
    def left(self) -> list[Observation]:
        return [obs for pairs in self._by.values() for _, obs in pairs]
