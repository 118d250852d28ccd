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
* **Who worked when.** No wall-clock time finer than the UTC ``day``, and the
  day only where at least ``RELEASE_MIN_PEOPLE`` people recorded that day, so
  a roster of who worked when matches every day to at least that many
  people (tests/test_dataset_release.py joins one).

Pseudonyms of a release come from a fresh key unless a linkable build was
asked for (``build_from_store``); statistics are over everyone, never per
person.
"""

from __future__ import annotations

from typing import Mapping

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

    keystrokes = anonymised(tables["keystrokes"], anonymise_keystrokes)
    pointer = anonymised(tables["pointer"], anonymise_pointer)
    episodes = _days(tables["episodes"], min_people)
    actions = _action_times(tables["actions"], episodes, keystrokes, pointer)
    ends = actions.group_by("episode_id").agg(end_ms=pl.col("t_end_ms").max())
    episodes = episodes.join(ends, on="episode_id", how="left", maintain_order="left").with_columns(
        duration_s=((pl.col("end_ms").fill_null(0.0) / 1000 / _EPISODE_ROUND_S).round() * _EPISODE_ROUND_S))
    actions = actions.join(episodes.select("episode_id", "day"), on="episode_id", how="left", maintain_order="left")
    return {"actions": actions, "episodes": episodes, "keystrokes": keystrokes, "pointer": pointer}


def _days(episodes: pl.DataFrame, min_people: int) -> pl.DataFrame:
    day = pl.from_epoch(pl.col("t_start_wall_ns"), time_unit="ns").dt.date().cast(pl.String)
    episodes = episodes.with_columns(day=day)
    crowded = episodes.group_by("day").agg(people=pl.col("_who").n_unique())
    crowded = crowded.filter(pl.col("people") >= min_people)["day"]
    return episodes.with_columns(day=pl.when(pl.col("day").is_in(crowded.implode())).then(pl.col("day")))


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
