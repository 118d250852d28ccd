"""A release build: nothing in it times a person more finely than the population does.

The default build is a release. Three things would identify or judge people
if they were kept as recorded, and each is replaced:

* **Typing and pointer rhythm.** Hold and flight times and pointer paths
  identify people like a fingerprint (on the CMU benchmark a random forest
  names the typist 81% of the time). They go through
  ``deskcorder.privacy.anonymise_keystrokes``/``anonymise_pointer``: draws from
  a model of at least ``RELEASE_MIN_PEOPLE`` people, seeded from the build's
  pseudonym key (so a rebuild with the same key gives the same bytes, and a
  local and a Dask build agree).
* **Times that leak around those draws.** A typing run's first and last key
  times give its duration, and so the typist's speed, whatever the keystrokes
  table says; ``event_seqs`` gaps count the moves between clicks. So an
  action's ``t_start_ms``/``t_end_ms`` are re-derived, per episode: its
  duration from the anonymised timings (sum of its presses' dd_ms; the last
  sample of its drag or scroll path; a click's duration rounded to 100 ms),
  the pause before the next action rounded to 100 ms; ``event_seqs`` become a
  count (``n_events``). Episodes keep a duration rounded to 10 s.
* **Who worked when.** No wall-clock time finer than the UTC ``day``. A day
  per episode is not enough: one person's episodes share a pseudonym, so a
  roster of who worked when is matched against the *set* of days a pseudonym
  shows, and few people work exactly Monday, Wednesday and Thursday even if
  each of those days was crowded. So each person shows only a set of days
  that at least ``RELEASE_MIN_PEOPLE`` people recorded on every one of
  (``_days``); the other days of their episodes are null. Recording implies
  working, so the roster then matches each pseudonym to at least that many
  people (tests/test_dataset_release.py joins one).
* **Figures of a few people.** A validation or test split of fewer than
  ``RELEASE_MIN_PEOPLE`` people would be a figure of those people in
  ``stats.json`` (a split of one is that person's action count); such a
  split joins train (``_splits``), so a small build, the demo's one person
  included, is all train.

Pseudonyms of a release come from a fresh key unless a linkable build was
asked for (``build_from_store``); statistics are over everyone, never per
person.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import polars as pl

__all__ = ["RELEASE_MIN_PEOPLE", "release_tables"]

RELEASE_MIN_PEOPLE = 5
_ROUND_MS = 100.0
_EPISODE_ROUND_S = 10.0
_KEYBOARD = ("type", "hotkey", "key")


def release_tables(tables: Mapping[str, pl.DataFrame], *, seed: bytes,
                   min_people: int = RELEASE_MIN_PEOPLE) -> dict[str, pl.DataFrame]:
    """The four protected tables (internal columns, with ``_who``: person or device pseudonym) as released."""
    from ..privacy import anonymise_keystrokes, anonymise_pointer

    def anonymised(df: pl.DataFrame, function) -> pl.DataFrame:  # type: ignore[no-untyped-def]
        if df.height == 0:
            return df
        # The model pools people; a device whose owner is unknown is a person of its own.
        out = function(df.with_columns(person_id=pl.col("_who")), seed=seed, min_people=min_people)
        return out.with_columns(person_id=df["person_id"]) if out.height == df.height else \
            out.drop("person_id").join(df.select("action_id", "person_id").unique("action_id", keep="first"),
                                       on="action_id", how="left", maintain_order="left")

    tables = _splits(tables, min_people)
    keystrokes = anonymised(tables["keystrokes"], anonymise_keystrokes)
    pointer = anonymised(tables["pointer"], anonymise_pointer)
    episodes = _days(tables["episodes"], min_people)
    actions = _action_times(tables["actions"], episodes, keystrokes, pointer)
    ends = actions.group_by("episode_id").agg(end_ms=pl.col("t_end_ms").max())
    episodes = episodes.join(ends, on="episode_id", how="left", maintain_order="left").with_columns(
        duration_s=((pl.col("end_ms").fill_null(0.0) / 1000 / _EPISODE_ROUND_S).round() * _EPISODE_ROUND_S))
    actions = actions.join(episodes.select("episode_id", "day"), on="episode_id", how="left", maintain_order="left")
    return {"actions": actions, "episodes": episodes, "keystrokes": keystrokes, "pointer": pointer}


def _splits(tables: Mapping[str, pl.DataFrame], min_people: int) -> dict[str, pl.DataFrame]:
    """Validation and test splits of fewer than ``min_people`` people moved to train."""
    episodes = tables["episodes"]
    people = dict(episodes.group_by("split").agg(n=pl.col("_who").n_unique()).iter_rows())
    small = [s for s, n in people.items() if s != "train" and n < min_people]
    if not small:
        return dict(tables)
    return {name: df.with_columns(split=pl.when(pl.col("split").is_in(small)).then(pl.lit("train"))
                                  .otherwise(pl.col("split")))
            for name, df in tables.items()}


def _days(episodes: pl.DataFrame, min_people: int) -> pl.DataFrame:
    """The ``day`` column: each person's days kept only as a set that ``min_people`` people all recorded on.

    For a person with days d1..dm, drop days (those the fewest people recorded first) until at least
    ``min_people`` people recorded on every day left. With the days in that order, a person q covers
    what is left after the first j are dropped when j >= L_q, the position of the last day q did not
    record (0 if q recorded them all); so the number of days to drop is the ``min_people``-th smallest
    L_q, found in one pass over everyone, not by trying sets.
    """
    day = pl.from_epoch(pl.col("t_start_wall_ns"), time_unit="ns").dt.date().cast(pl.String)
    episodes = episodes.with_columns(day=day)
    pairs = episodes.select("_who", "day").unique()
    who = sorted(pairs["_who"].unique().to_list())
    days = sorted(pairs["day"].unique().to_list())
    if len(who) < min_people:
        return episodes.with_columns(day=pl.lit(None, dtype=pl.String))
    row, col = {w: i for i, w in enumerate(who)}, {d: j for j, d in enumerate(days)}
    recorded = np.zeros((len(who), len(days)), dtype=bool)
    recorded[[row[w] for w in pairs["_who"]], [col[d] for d in pairs["day"]]] = True
    crowd = recorded.sum(axis=0)
    shown: list[tuple[str, str]] = []
    for i, w in enumerate(who):
        mine = np.flatnonzero(recorded[i])
        order = mine[np.lexsort((mine, crowd[mine]))]  # rarest day first, then by date
        lacking = ~recorded[:, order]  # people x my days in that order
        last_missing = np.where(lacking.any(axis=1), len(order) - np.argmax(lacking[:, ::-1], axis=1), 0)
        drop = int(np.partition(last_missing, min_people - 1)[min_people - 1])
        shown += [(w, days[j]) for j in order[drop:]]
    keep = pl.DataFrame(shown, schema={"_who": pl.String, "day": pl.String}, orient="row") \
        .with_columns(_shown=pl.lit(True))
    episodes = episodes.join(keep, on=["_who", "day"], how="left", maintain_order="left")
    return episodes.with_columns(day=pl.when(pl.col("_shown")).then(pl.col("day"))).drop("_shown")


def _rounded(ns: pl.Expr) -> pl.Expr:
    return (ns / 1e6 / _ROUND_MS).round() * _ROUND_MS


def _action_times(actions: pl.DataFrame, episodes: pl.DataFrame, keystrokes: pl.DataFrame,
                  pointer: pl.DataFrame) -> pl.DataFrame:
    typed = keystrokes.group_by("action_id").agg(typed_ms=pl.col("dd_ms").fill_null(0.0).sum())
    paths = pointer.filter(pl.col("path_kind") != "approach").group_by("action_id").agg(path_ms=pl.col("t_ms").max())
    start = episodes.select("episode_id", episode_t0="t_start_mono_ns")
    actions = (actions.join(typed, on="action_id", how="left", maintain_order="left")
               .join(paths, on="action_id", how="left", maintain_order="left")
               .join(start, on="episode_id", how="left", maintain_order="left"))
    kind = pl.col("kind")
    duration = (pl.when(kind.is_in(_KEYBOARD)).then(pl.col("typed_ms").fill_null(0.0))
                .when(kind.is_in(("drag", "scroll")) & pl.col("path_ms").is_not_null()).then(pl.col("path_ms"))
                .otherwise(_rounded(pl.col("t_end_mono_ns") - pl.col("t_start_mono_ns"))))
    by_episode = "episode_id"
    gap = _rounded(pl.col("t_start_mono_ns").shift(-1).over(by_episode) - pl.col("t_end_mono_ns")) \
        .clip(lower_bound=0.0).fill_null(0.0)
    actions = actions.with_columns(duration_ms=duration, gap_ms=gap,
                                   first_ms=_rounded(pl.col("t_start_mono_ns").first().over(by_episode)
                                                     - pl.col("episode_t0")))
    step = pl.col("duration_ms") + pl.col("gap_ms")
    actions = actions.with_columns(t_start_ms=pl.col("first_ms") + step.cum_sum().over(by_episode) - step)
    return actions.with_columns(t_end_ms=pl.col("t_start_ms") + pl.col("duration_ms"),
                                n_events=pl.col("event_seqs").list.len().cast(pl.Int64))
