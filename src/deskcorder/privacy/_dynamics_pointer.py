"""Pointer paths of a release: the target kept, the person's movement replaced by the population's.

Mouse dynamics identify people as typing does (the Balabit challenge; speed,
the timing of the velocity peak, curvature, tremor and overshoot are each
personal). What a cursor model needs from an approach is where it started,
where it ended (the target) and how long such a movement takes; what
identifies is *how* this person covered the distance. So a released path keeps:

* its two endpoints exactly (first and last sample: the target of a click, the
  start and end of a drag, the pointer of a scroll);
* a duration drawn from the population's durations for that path kind and
  that Fitts index of difficulty (log2(1 + distance / 20 px), 1-bit bins),
  fitted only from groups seen from >= min_people people, backing off to the
  kind, then to a fixed prior (`DURATION_PRIOR`);

and replaces everything else by a population model: samples at 60 Hz; progress
along the chord by the minimum-jerk profile (Flash & Hogan 1985: the bell
velocity curve averaged human reaching follows); a sideways bow
``A * L * sin(pi * tau)`` whose size A is drawn from the population's
distribution of (largest sideways deviation / chord length) and whose side is
a coin flip; and, on interior samples, jitter with the population's median
tremor (one number; less on moves under 50 px, none on a pointer that stayed
put). Draws are keyed on (seed, action id, path kind), like the keystroke
draws. Drag routes are therefore *not* kept in a release (a lasso becomes a
bow): the route of a drag is as personal as an approach's, and only the
internal build, which keeps raw paths, can promise it.

Measured on synthetic people (benchmarks/keystroke_reid.py; there is no
public pointer dataset here, so these people differ only in the ways we built
them to, which is weaker evidence than the keystroke figures). A random
forest names 1 of 20 people (chance 0.05) from one raw path 90 % of the time,
and from the mean of 10 paths 98 %. Released, the figures are 4.7 % and 2.5 %
(enrolled on released paths) and 4.6 % and 6.7 % (enrolled on raw ones).
Durations are drawn stratified within their group, as keystroke timings are.
Cost: 1.5 M input samples/s in one process (1 M samples, 25,000 paths).

Passthrough columns (screen size, episode...) must be constant within a path:
each released sample carries the value of its path's first sample.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from ._dynamics import check_arguments, seeded_rng
from ._dynamics_model import (
    draw_stratified,
    eligible_groups,
    fit_tables,
    normal_pairs,
    prior_table,
    row_uniforms,
)

__all__ = ["POINTER_COLUMNS", "anonymise_pointer"]

POINTER_COLUMNS = ("person_id", "action_id", "path_kind", "sample", "t_ms", "x", "y")
SAMPLE_MS = 1000.0 / 60.0
FITTS_WIDTH_PX = 20.0  # a nominal target width: only the binning of distances depends on it
MIN_PATHS_PER_GROUP = 20
DURATION_PRIOR = (400.0, 0.5)  # ms, log-sd: a typical pointing movement, used when nothing is fitted
BOW_PRIOR = (30.0, 1.0)  # per mille of the chord length
TREMOR_PRIOR_PX = 0.5
_PATH = ["action_id", "path_kind"]
# For 2-D jitter of sd s per axis, a sample's distance from its neighbours' midpoint is Rayleigh with
# scale s * sqrt(1.5); its median is that scale * sqrt(2 ln 2).
_MID_TO_SD = math.sqrt(1.5) * math.sqrt(2 * math.log(2))
# No back-off across kinds: a scroll's duration says nothing about an approach's. A kind too few people
# have is drawn from the fixed priors.
_LEVELS = [["path_kind", "_fitts"], ["path_kind"]]
# Jitter grows to the population's tremor over the first 50 px of distance: a pointer left still while
# the wheel turns stays still.
_STILL_PX = 50.0


def _path_table(df: pl.DataFrame) -> pl.DataFrame:
    """One row per path: endpoints, duration, raw sideways deviation and tremor (population inputs only)."""
    ordered = df.with_row_index("_orig").sort([*_PATH, "sample"])
    # A path's rows are contiguous once sorted, so which samples are interior is a mask, and the tremor
    # residual is computed over all rows at once instead of per group (the same arithmetic, faster).
    starts = ordered.select(((pl.col("action_id") != pl.col("action_id").shift(1))
                             | (pl.col("path_kind") != pl.col("path_kind").shift(1))).fill_null(True)).to_series()
    starts = starts.to_numpy()
    ends = np.r_[starts[1:], True] if starts.size else starts
    x0, y0 = pl.col("x").first().cast(pl.Float64), pl.col("y").first().cast(pl.Float64)
    x1, y1 = pl.col("x").last().cast(pl.Float64), pl.col("y").last().cast(pl.Float64)
    length = ((x1 - x0) ** 2 + (y1 - y0) ** 2).sqrt()
    # Signed distance of each sample from the chord, over the chord length (0 for a point-like path).
    cross = ((pl.col("x") - x0) * (y1 - y0) - (pl.col("y") - y0) * (x1 - x0)) / pl.max_horizontal(length, 1.0)
    # Tremor: a sample's distance from the midpoint of its neighbours (interior samples only).
    mid_x = pl.col("x").cast(pl.Float64) - (pl.col("x").shift(1) + pl.col("x").shift(-1)) / 2
    mid_y = pl.col("y").cast(pl.Float64) - (pl.col("y").shift(1) + pl.col("y").shift(-1)) / 2
    ordered = ordered.with_columns(_mid=pl.when(pl.Series(~starts & ~ends)).then((mid_x ** 2 + mid_y ** 2).sqrt()))
    return ordered.group_by(_PATH, maintain_order=True).agg(
        pl.col("_orig").min().alias("_first"),
        pl.col("person_id").first(),
        x0.alias("x0"), y0.alias("y0"), x1.alias("x1"), y1.alias("y1"), length.alias("length"),
        (pl.col("t_ms").max() - pl.col("t_ms").min()).alias("duration"),
        pl.len().alias("n"),
        (cross.abs().max() / pl.max_horizontal(length, 1.0)).alias("bow"),
        # Median, not RMS: the smooth movement's acceleration also shows in this residual, mostly on few samples.
        (pl.col("_mid").median() / _MID_TO_SD).alias("tremor"),
    ).sort("_first")


def _draw(paths: pl.DataFrame, values: np.ndarray, levels: list[list[str]], prior: tuple[float, float],
          z: np.ndarray, *, min_people: int, rng: np.random.Generator) -> np.ndarray:
    groups, per_level, n_groups = eligible_groups(paths, levels, min_people=min_people, min_rows=MIN_PATHS_PER_GROUP)
    tables = np.vstack([fit_tables(values, per_level, paths["_person"].to_numpy(), n_groups, epsilon=None,
                                   person_cap=1.0, rng=rng), prior_table(*prior)])
    drawn = np.where(groups >= 0, groups, n_groups)
    return draw_stratified(z, drawn, tables)


def _tremor(paths: pl.DataFrame, min_people: int) -> float:
    """The population's median tremor: one number, only if >= min_people people have paths long enough."""
    long = paths.filter((pl.col("n") >= 3) & pl.col("tremor").is_not_null())
    if long["person_id"].n_unique() < min_people:
        return TREMOR_PRIOR_PX
    return float(long["tremor"].median())


def anonymise_pointer(df: pl.DataFrame, *, seed: bytes, min_people: int = 5) -> pl.DataFrame:
    """Paths re-drawn from the population model; endpoints, action ids and path kinds kept (module docstring)."""
    check_arguments(df, POINTER_COLUMNS, "anonymise_pointer", seed, min_people)
    if df.height == 0:
        return df
    paths = _path_table(df).with_columns(
        (1.0 + pl.col("length") / FITTS_WIDTH_PX).log(2).floor().cast(pl.Int32).alias("_fitts"),
        pl.col("person_id").rank("dense").cast(pl.Int64).alias("_person"),
        (pl.col("action_id") + "\x1f" + pl.col("path_kind")).alias("_key"),
    )
    key = paths["_key"]
    rng = seeded_rng(bytes(seed), b"pointer-tables")
    common = {"min_people": min_people, "rng": rng}
    duration = _draw(paths, np.maximum(paths["duration"].to_numpy(), 1.0),
                     _LEVELS, DURATION_PRIOR,
                     normal_pairs(seed, key, None, 11), **common)
    bow = _draw(paths, np.maximum(paths["bow"].fill_null(0.0).to_numpy() * 1000.0, 1.0),
                _LEVELS, BOW_PRIOR,
                normal_pairs(seed, key, None, 12), **common) / 1000.0
    side = np.where(row_uniforms(seed, key, None, 13) < 0.5, -1.0, 1.0)
    single = paths["n"].to_numpy() == 1  # a lone sample stays a lone sample at t = 0
    duration = np.where(single, 0.0, np.round(duration, 1))
    n_new = np.where(single, 1, np.maximum(2, np.ceil(duration / SAMPLE_MS).astype(np.int64) + 1))

    path = np.repeat(np.arange(paths.height), n_new)
    starts = np.cumsum(n_new) - n_new
    sample = np.arange(path.size) - starts[path]
    last = sample == n_new[path] - 1
    t = np.where(last, duration[path], np.minimum(sample * SAMPLE_MS, duration[path]))
    tau = np.where(duration[path] > 0, t / np.maximum(duration[path], 1e-9), 0.0)
    progress = tau ** 3 * (10.0 - 15.0 * tau + 6.0 * tau ** 2)  # minimum jerk
    x0, y0, x1, y1 = (paths[c].to_numpy()[path] for c in ("x0", "y0", "x1", "y1"))
    length = paths["length"].to_numpy()[path]
    ux, uy = np.where(length > 0, (x1 - x0) / np.maximum(length, 1e-9), 0.0), np.where(
        length > 0, (y1 - y0) / np.maximum(length, 1e-9), 0.0)
    offset = side[path] * bow[path] * length * np.sin(math.pi * tau)
    interior = (sample > 0) & ~last
    tremor = _tremor(paths, min_people)
    sample_key = key.gather(path)
    amplitude = tremor * np.minimum(1.0, length / _STILL_PX) * interior
    jx = normal_pairs(seed, sample_key, sample, 14) * amplitude
    jy = normal_pairs(seed, sample_key, sample, 15) * amplitude
    x = np.rint(x0 + progress * (x1 - x0) - offset * uy + jx).astype(np.int32)
    y = np.rint(y0 + progress * (y1 - y0) + offset * ux + jy).astype(np.int32)

    # Endpoints exactly as recorded (rounding and jitter never move the target).
    x = np.where(sample == 0, x0, np.where(last, x1, x)).astype(np.int32)
    y = np.where(sample == 0, y0, np.where(last, y1, y)).astype(np.int32)
    drawn = pl.DataFrame({"_path": path, "sample": sample.astype(np.int32), "t_ms": t, "x": x, "y": y})
    passthrough = [c for c in df.columns if c not in ("sample", "t_ms", "x", "y")]
    firsts = df.with_row_index("_orig").join(paths.select(["_first"]).with_row_index("_path"),
                                             left_on="_orig", right_on="_first", how="inner")
    out = drawn.join(firsts.select(["_path", *passthrough]), on="_path", how="left", maintain_order="left")
    return out.select(df.columns).with_columns(
        pl.col("sample").cast(pl.Int32), pl.col("t_ms").cast(pl.Float64), pl.col("x").cast(pl.Int32),
        pl.col("y").cast(pl.Int32))
