"""``build_dataset``: events in, a dataset folder out (actions, episodes, keystrokes, pointer, statistics, card).

Stages, each a step of the progress bar: prepare (sort, episodes), reduce
(actions, key presses, pointer paths), privacy (redaction, pseudonyms, split),
release (anonymised timings, days instead of clocks: ``_release.py``; skipped
by an internal build), write (``_write.py``: the Hugging Face layout).

Privacy happens here, before anything is written: every typed text goes
through the ``Redactor`` (placeholders such as ``<EMAIL>``, counted in
``stats.json``), every window title through ``Redactor.redact_title`` with the
devices' hostnames as known identifiers, and session, device and person ids
become keyed-HMAC pseudonyms. Without a ``Pseudonymizer`` a fresh random key
is used, so such a build cannot be linked to the store or to another build.

The split is by person (by device when the person is unknown): a stable hash
of the pseudonym picks train, validation or test, so one person's typing
rhythm never sits on both sides of an evaluation.

Writing is atomic (``_write.py``), so a crash leaves either no dataset or a
complete one, never half of one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import hashlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Protocol

import polars as pl
import pyarrow as pa
from rich.progress import Progress

from .._errors import DeskcorderError
from .. import __version__
from ._episodes import episode_id, episodes_frame, prepare
from ._keystrokes import keystrokes_frame
from ._observations import ObservedPart, observation_table, observe_actions
from ._options import BuildOptions
from ._paths import pointer_frame
from ._reduce import reduce_actions
from ._release import RELEASE_MIN_PEOPLE, release_tables
from ._schema import ACTION_SCHEMA, EPISODE_SCHEMA
from ._trajectories import trajectory_files
from ._typed import redact_runs
from ._write import SPLIT_NAMES, write_dataset

if TYPE_CHECKING:
    from ..observations import Observation
    from ..privacy import FrameRedactor, Span

__all__ = ["DatasetError", "DatasetStats", "build_dataset", "SPLITS"]

# (name, share of people): validation and test are small but never empty once there are >= 10 people.
SPLITS: tuple[tuple[str, float], ...] = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
assert tuple(name for name, _ in SPLITS) == SPLIT_NAMES  # the files written per split


class DatasetError(DeskcorderError, RuntimeError):
    """The dataset cannot be built as asked; the message says what to change."""


class _Redactor(Protocol):
    def find_spans(self, text: str, *, app_class: str | None = None, window_title: str | None = None,
                   known_identifiers: Iterable[str] = ()) -> list[Span]: ...

    def redact_title(self, title: str, *, known_identifiers: Iterable[str] = ()) -> tuple[str, dict[str, int]]: ...


class _Pseudonymizer(Protocol):
    key_id: str

    def pseudonym(self, kind: str, value: str) -> str: ...


@dataclasses.dataclass(frozen=True)
class DatasetStats:
    """What ``stats.json`` holds (``as_json``); the CLI and the demo print it."""

    events: int
    sessions: int
    episodes: int
    actions: int
    persons: int
    actions_by_kind: dict[str, int]
    apps: dict[str, dict[str, Any]]  # app_class -> {"actions", "episodes", "duration_s", "persons"}
    splits: dict[str, dict[str, int]]  # split -> {"persons", and rows of each table: "actions", "episodes", ...}
    redactions: dict[str, int]  # placeholder kind -> spans replaced (typed text and titles)
    duration_s: float  # sum of episode durations
    first_event_utc: str | None  # a release says only the day
    last_event_utc: str | None
    duplicates_dropped: int
    pseudonym_key_id: str
    options: dict[str, Any]
    keystrokes: int = 0  # rows of the keystrokes table
    pointer_samples: int = 0  # rows of the pointer table
    mode: str = "release"  # release (anonymised, no clock finer than the day) or internal
    deskcorder_version: str = __version__
    # A build given observations (_observations.py): rows, frames and elements that reached the dataset,
    # boxes masked in its frames, frames left out (OCR could not check them) by reason; empty otherwise.
    observations: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_dataset(events: pa.Table, out: Path | str, options: BuildOptions = BuildOptions(), *,
                  redactor: _Redactor | None = None, pseudonymizer: _Pseudonymizer | None = None,
                  device_to_employee: Mapping[str, str] | None = None, known_identifiers: Iterable[str] = (),
                  provenance: Mapping[str, Any] | None = None, overwrite: bool = False,
                  progress: Progress | None = None, observations: Iterable[Observation] | None = None,
                  frame_redactor: FrameRedactor | None = None) -> DatasetStats:
    """Build a dataset from ``events`` (EVENT_SCHEMA columns, ``device_id`` optional) into the folder ``out``.

    ``observations`` (``deskcorder.observations``) add the ``observations`` table and its masked frames;
    ``frame_redactor`` (default: a ``privacy.FrameRedactor`` over ``redactor``) checks every frame.

    ``redactor`` defaults to ``deskcorder.privacy.Redactor()``; ``device_to_employee`` maps device ids to
    employee ids for ``person_id`` and the split; ``known_identifiers`` (hostnames, logins) are scrubbed
    from window titles; ``provenance`` (policy and consent versions, who built it) goes to the card.
    """
    out = Path(out)
    redactor, pseudonymizer, known, step = _begin(events, out, overwrite, redactor, pseudonymizer,
                                                  known_identifiers, progress, "sorting events into episodes")
    observed = None if observations is None else list(observations)
    part = _compute(events, options, redactor, known, step, observed,
                    _frame_redactor(frame_redactor, redactor, observed))
    step("redacting and pseudonymising")
    stats = _finish([part], out, options, pseudonymizer=pseudonymizer, redactor=redactor,
                    device_to_employee=device_to_employee or {}, known=known, provenance=provenance or {},
                    overwrite=overwrite, step=step)
    step("done")
    return stats


def _begin(events: pa.Table, out: Path, overwrite: bool, redactor: _Redactor | None,
           pseudonymizer: _Pseudonymizer | None, known_identifiers: Iterable[str], progress: Progress | None,
           first_step: str) -> tuple[_Redactor, _Pseudonymizer, tuple[str, ...], Callable[[str], None]]:
    """What every build checks and sets up first: the output folder, some events, the privacy defaults,
    and ``step``, which advances the progress bar (5 steps) to the stage it names."""
    from ..privacy import Pseudonymizer, Redactor

    _check_out(out, overwrite)
    if events.num_rows == 0:
        raise DatasetError("there are no events to build a dataset from (nothing recorded yet, or every "
                           "event was filtered out)")
    task = progress.add_task(first_step, total=5) if progress is not None else None

    def step(description: str) -> None:
        if progress is not None and task is not None:
            progress.update(task, description=description, advance=1)

    return (redactor if redactor is not None else Redactor(),
            pseudonymizer if pseudonymizer is not None else Pseudonymizer.generate(),
            tuple(k for k in known_identifiers if k), step)


def _frame_redactor(given: FrameRedactor | None, redactor: _Redactor,
                    observations: list[Observation] | None) -> FrameRedactor | None:
    if given is not None or observations is None:
        return given
    from ..privacy import FrameRedactor, Redactor

    return FrameRedactor(redactor if isinstance(redactor, Redactor) else None)


@dataclasses.dataclass(frozen=True)
class _Part:
    """What ``_compute`` makes of a group of whole sessions; ``_finish`` joins parts in session order.

    Everything here is per session (episodes, actions, typed-text redaction), so the parts of a build
    split by session add up to the build of the whole. Window titles and ids are left to ``_finish``:
    titles are redacted (and counted) once per distinct title across the whole build, and pseudonyms
    and the split need the key and the device owners.
    """

    actions: pl.DataFrame  # episode_index + ACTION_SCHEMA columns but person_id and split; texts redacted
    episodes: pl.DataFrame  # EPISODE_SCHEMA columns but person_id and split; ids raw
    keystrokes: pl.DataFrame  # session_id, device_id, episode_index, seq_index + the press columns
    pointer: pl.DataFrame  # session_id, device_id, episode_index, seq_index + the sample columns
    events: int
    first_wall_ns: int | None
    last_wall_ns: int | None
    duplicates_dropped: int
    redactions: dict[str, int]  # typed-text spans only
    observed: ObservedPart | None = None  # when the build was given observations


_PRIVACY_COLUMNS = ("person_id", "split")  # added by _protect, on the driver


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cycle collector off while a stage runs: the stages hold millions of small Python objects
    (column lists for the reducers and the redactor) and make no cycles worth collecting, but each
    collection would walk all of them again (10-15 % of a build's CPU). Restored as it was, even on error."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_collector_paused()
def _compute(events: pa.Table, options: BuildOptions, redactor: _Redactor, known: tuple[str, ...],
             step: Callable[[str], None] = lambda _: None, observations: list[Observation] | None = None,
             frame_redactor: FrameRedactor | None = None) -> _Part:
    """Episodes, actions, keystrokes, pointer paths and typed-text redaction for ``events`` (whole sessions,
    in any order); with ``observations`` (of those sessions), their rows and masked frames too."""
    try:
        prepared = prepare(events, options)
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc
    step("reducing events to actions")
    held_mods: list[str] = []
    actions = reduce_actions(prepared, options, held_mods)
    per_episode = actions.group_by("episode").agg(n_actions=pl.len().cast(pl.Int64))
    episodes = episodes_frame(prepared, per_episode)
    typed = redact_runs(redactor, actions["kind"].to_list(), actions["text"].to_list(),
                        actions["keys"].to_list(), actions["episode"].to_list(), actions["app_class"].to_list(),
                        actions["window_title"].to_list(), known)
    redactions = typed.counts
    keystrokes = keystrokes_frame(actions, prepared.frame, held_mods, typed.spans)
    pointer = pointer_frame(prepared, actions)
    actions = actions.with_columns(pl.Series("text", typed.texts, dtype=pl.String))
    observed = None
    if observations is not None and frame_redactor is not None:
        observed = observe_actions(actions, observations, frame_redactor, known)
    wall = prepared.frame["t_wall_ns"]
    return _Part(actions=actions.select("episode_index",
                                        *(n for n in ACTION_SCHEMA.names if n not in _PRIVACY_COLUMNS)),
                 episodes=episodes.select(n for n in EPISODE_SCHEMA.names if n not in _PRIVACY_COLUMNS),
                 keystrokes=keystrokes, pointer=pointer,
                 events=prepared.n_events, first_wall_ns=wall.min(), last_wall_ns=wall.max(),  # type: ignore[arg-type]
                 duplicates_dropped=prepared.duplicates_dropped, redactions=dict(redactions), observed=observed)


@_collector_paused()
def _finish(parts: list[_Part], out: Path, options: BuildOptions, *, pseudonymizer: _Pseudonymizer,
            redactor: _Redactor, device_to_employee: Mapping[str, str], known: tuple[str, ...],
            provenance: Mapping[str, Any], overwrite: bool,
            step: Callable[[str], None] = lambda _: None) -> DatasetStats:
    """Join ``parts`` (given in session order), protect titles and ids, and write the folder.

    The same code for one part (``build_dataset``) and many (``build_dataset_distributed``), so both
    write the same bytes.
    """
    def joined(name: str) -> pl.DataFrame:
        return pl.concat([getattr(p, name) for p in parts], how="vertical", rechunk=True)

    actions, episodes = joined("actions"), joined("episodes")
    redactions: Counter[str] = Counter()
    for p in parts:
        redactions.update(p.redactions)
    observed = [p.observed for p in parts if p.observed is not None]
    for o in observed:
        redactions.update(o.redactions)
    raw_keys = actions.select("session_id", "episode_index", "seq_index")
    actions, episodes, keystrokes, pointer = _protect(actions, episodes, joined("keystrokes"), joined("pointer"),
                                                      redactor, pseudonymizer, device_to_employee, known,
                                                      redactions)
    # The observations' raw (session, episode, position) keys -> the action ids just made (same row order).
    raw_keys = raw_keys.with_columns(actions.select("action_id", "episode_id"))
    tables = {"actions": actions, "episodes": episodes, "keystrokes": keystrokes, "pointer": pointer}
    if options.mode == "release":
        step("anonymising timings")
        tables = release_tables(tables, seed=pseudonymizer.pseudonym("seed", "dynamics").encode(),
                                min_people=RELEASE_MIN_PEOPLE)
    frames: dict[str, bytes] = {}
    summary: dict[str, Any] = {}
    if len(observed) == len(parts) and parts:
        tables["observations"], frames, summary = observation_table(observed, raw_keys, tables["actions"])
    walls = [w for p in parts for w in (p.first_wall_ns, p.last_wall_ns) if w is not None]
    stats = _stats(sum(p.events for p in parts), min(walls, default=None), max(walls, default=None), tables,
                   redactions, sum(p.duplicates_dropped for p in parts), pseudonymizer.key_id, options)
    stats = dataclasses.replace(stats, observations=summary)
    if "trajectories" in options.formats:
        frames.update(trajectory_files(tables))
    step("writing files")
    write_dataset(out, tables, stats, options, provenance, overwrite, files=frames)
    return stats


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} is a file, not a folder; pick another --out")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DatasetError(f"{out} already exists and is not empty; pick another --out or pass --overwrite")


# -- privacy -----------------------------------------------------------------------------------

def _protect(actions: pl.DataFrame, episodes: pl.DataFrame, keystrokes: pl.DataFrame, pointer: pl.DataFrame,
             redactor: _Redactor, pseudonymizer: _Pseudonymizer, device_to_employee: Mapping[str, str],
             known: tuple[str, ...], redactions: Counter[str]) -> tuple[pl.DataFrame, ...]:
    """Titles redacted, ids pseudonymised, person and split added; the press and sample tables get the
    action id of their action (``<episode_id>-<seq_index:05d>``, as the actions table has it)."""
    titles: dict[str, str] = {}

    def title(value: str | None) -> str | None:
        if value is None:
            return None
        if value not in titles:
            clean, counts = redactor.redact_title(value, known_identifiers=known)
            titles[value] = clean
            redactions.update(counts)
        return titles[value]

    sessions = {s: pseudonymizer.pseudonym("session", s)
                for s in pl.concat([actions["session_id"], episodes["session_id"]]).unique().to_list()}
    devices = {d: pseudonymizer.pseudonym("device", d)
               for d in pl.concat([actions["device_id"], episodes["device_id"]]).drop_nulls().unique().to_list()}
    persons = {d: pseudonymizer.pseudonym("person", device_to_employee[d]) for d in devices
               if d in device_to_employee}
    # The split follows the person, or the device when its owner is unknown (a device id is never null
    # once stored; events passed without one all share the "unknown" split). ``_who`` is that same key,
    # for the release step, which models timings across people (and drops it).
    who = {d: persons.get(d) or devices[d] for d in devices}
    splits = {d: _split(w) for d, w in who.items()}

    def protect(df: pl.DataFrame) -> pl.DataFrame:
        device = df["device_id"]
        columns = dict(
            session_id=df["session_id"].replace_strict(sessions, return_dtype=pl.String),
            device_id=device.replace_strict(devices, default=None, return_dtype=pl.String),
            person_id=device.replace_strict(persons, default=None, return_dtype=pl.String),
            split=device.replace_strict(splits, default=_split("unknown"), return_dtype=pl.String),
            _who=device.replace_strict(who, default="unknown", return_dtype=pl.String),
        )
        if "window_title" in df.columns:
            # Each distinct title once (the redactor is the cost, and a Python list of every row's title would
            # be the whole table again); counts are per distinct title either way.
            raw = df["window_title"]
            clean = {t: title(t) for t in raw.drop_nulls().unique().to_list()}
            columns["window_title"] = raw.replace_strict(clean, default=None, return_dtype=pl.String)
        return df.with_columns(**columns).with_columns(episode_id())

    def action_id(df: pl.DataFrame) -> pl.DataFrame:
        return protect(df).with_columns(action_id=pl.format("{}-{}", pl.col("episode_id"),
                                                            pl.col("seq_index").cast(pl.String).str.zfill(5)))

    return action_id(actions), protect(episodes), action_id(keystrokes), action_id(pointer)


def _split(pseudonym: str) -> str:
    """Which split a person's data goes to: a stable function of their pseudonym."""
    point = int.from_bytes(hashlib.sha256(pseudonym.encode()).digest()[:8], "big") / 2**64
    edge = 0.0
    for name, share in SPLITS:
        edge += share
        if point < edge:
            return name
    return SPLITS[-1][0]


# -- statistics and files ----------------------------------------------------------------------

def _utc(ns: int | None, mode: str) -> str | None:
    if ns is None:
        return None
    at = dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc)
    return at.date().isoformat() if mode == "release" else at.isoformat()


def _stats(n_events: int, first_wall_ns: int | None, last_wall_ns: int | None, tables: dict[str, pl.DataFrame],
           redactions: Counter[str], duplicates: int, key_id: str, options: BuildOptions) -> DatasetStats:
    """Figures over the whole dataset, per application and per split: never per person."""
    actions, episodes = tables["actions"], tables["episodes"]
    if options.mode == "release":
        duration_ns = (episodes["duration_s"] * 1e9).cast(pl.Int64)
    else:
        duration_ns = episodes["t_end_mono_ns"] - episodes["t_start_mono_ns"]
    apps: dict[str, dict[str, Any]] = {}
    # persons: how many people an application's figures cover (the admin console shows them only for >= 5).
    per_app_episodes = episodes.with_columns(d=duration_ns).group_by("app_class").agg(
        episodes=pl.len(), duration_ns=pl.col("d").sum(), persons=pl.col("person_id").drop_nulls().n_unique())
    per_app_actions = dict(actions.group_by("app_class").agg(n=pl.len()).iter_rows())
    for app, n_episodes, d, persons in per_app_episodes.sort("app_class", nulls_last=True).iter_rows():
        apps[app or "(unknown)"] = {"episodes": n_episodes, "actions": per_app_actions.get(app, 0),
                                    "duration_s": round(d / 1e9, 3), "persons": persons}
    splits = {}
    for name, _ in SPLITS:
        splits[name] = {"persons": episodes.filter(pl.col("split") == name)["person_id"].drop_nulls().n_unique(),
                        **{table: df.filter(pl.col("split") == name).height
                           for table, df in tables.items()}}
    by_kind = dict(sorted(actions.group_by("kind").agg(n=pl.len()).iter_rows()))
    return DatasetStats(
        events=n_events, sessions=episodes["session_id"].n_unique(), episodes=episodes.height,
        actions=actions.height, persons=episodes["person_id"].drop_nulls().n_unique(),
        actions_by_kind=by_kind, apps=apps, splits=splits, redactions=dict(sorted(redactions.items())),
        duration_s=round(float(duration_ns.sum()) / 1e9, 3),
        first_event_utc=_utc(first_wall_ns, options.mode), last_event_utc=_utc(last_wall_ns, options.mode),
        duplicates_dropped=duplicates, pseudonym_key_id=key_id, options=options.to_dict(),
        keystrokes=tables["keystrokes"].height, pointer_samples=tables["pointer"].height, mode=options.mode)
