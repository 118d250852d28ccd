"""Keystroke timings of a release: draws from a population model, so typing rhythm no longer names the typist.

Keystroke timing names people: on the CMU benchmark (Killourhy & Maxion 2009:
51 typists x 400 repetitions of one password) the scaled-Manhattan detector
reaches an equal-error rate of 0.096 and a random forest names the typist of
a repetition 81 % of the time (both reproduced by benchmarks/keystroke_reid.py).
Perturbing each person's own timings does not fix that, because the person's
rhythm survives the noise. Measured in the same run (EER enrolled on released
data / on raw; identification out of 51, chance 0.020):

    mode                       EER rel  EER raw  ident rel  ident raw  KS hold  KS dd  KS ud  worst mean
    raw                          0.096    0.096      0.813      0.813    0.000  0.000  0.000     0.0 ms
    kloak, 0-100 ms delay        0.147    0.161      0.534      0.401    0.171  0.038  0.067     2.8 ms
    50 ms quantisation           0.117    0.112      0.691      0.624    0.341  0.114  0.105     0.7 ms
    population model (this)      0.507    0.509      0.020      0.019    0.003  0.001  0.011     0.1 ms
    population + noise, eps 1    0.491    0.501      0.020      0.018    0.030  0.039  0.052   320.9 ms
    population + noise, eps 10   0.512    0.511      0.020      0.019    0.030  0.014  0.018    26.3 ms

So a release does not perturb a person's timings; it *replaces* them with
draws from a model of everyone, in which the person is not a variable:

* Margins: per group, the population histogram of log-times (256 fixed bins,
  1 ms-60 s, 4.4 % wide). Holds are grouped by key, then key class, then all
  keys; down-down flights by (previous key, key), then (previous class,
  class), then class, then all. A group is used only if >= `min_people`
  distinct people and >= `MIN_ROWS_PER_GROUP` presses are in it; otherwise
  the row backs off a level, and with no fitted level it is drawn from a fixed
  prior. Nonparametric because pooled timings are a mixture over people
  (heavy right tails, outliers up to 26 s in CMU) that one log-normal per
  group fits worse than the KS 0.05 and 5 ms targets allow.
* Joint structure: a Gaussian copula with four population numbers. Each
  action has tempo factors (one for holds, one for flights, correlated), and
  each flight's own part is correlated with the previous key's hold (what ud
  and rollover are made of). They are estimated from normal scores across
  all actions of all people. The tempo correlation of holds three keys apart
  is 0.45 raw and 0.47 released on CMU, and rollover is 6.3 % and 6.9 %.
* Draws: normal variates keyed on (seed, action id, position), so a build is
  reproducible and does not depend on row order, and nobody without the seed
  can recompute them. Within a group the draws are turned into ranks and
  read back as a stratified sample of the group's distribution
  (`_dynamics_model.draw_stratified`). I.i.d. draws let a digraph's mean
  drift by up to 9 ms on 100 CMU repetitions; stratified ones drift 0.1 ms.

Because the draws do not depend on the person, identification is at chance
by construction; the measurements check that the construction holds and
cost what it should. What is lost is each person's own rhythm, which is
what identifies them and so has to go; a model trained on the release
learns the population's rhythm per digraph. Keys masked by redaction
(``key`` null) are drawn from their class, so a password's timing does not
tell its keys either.

The noise variant (``epsilon``) caps each person's weight per group at
`DP_PERSON_CAP` presses and adds Laplace noise to coarser (35 %) histogram
bins of a fixed 5 ms-5 s range: epsilon-DP per group, and k*epsilon for a
person in k groups. With only 51 people the noise is about 2 % of a group's
mass per bin at eps 1, which moves per-digraph means by up to 320 ms (26 ms
at eps 10), so it is not the default; the error shrinks as 1/people.

Cost: 445,000 key presses/s in one process on a build-sized frame (1 M
presses, 200 people, ~1,500 digraphs), fitting included; vectorised numpy and
polars, with no loop over rows (benchmarks/keystroke_reid.py).

Contract
--------
``anonymise_keystrokes(df, seed=..., min_people=5)`` takes the ``keystrokes``
frame (person_id, action_id, position, key_class, key, prev_key, hold_ms,
dd_ms, ud_ms, rollover, anything else passes through) and returns the same
rows in the same order with hold_ms, dd_ms, ud_ms and rollover replaced.
Nulls stay where they were (dd/ud at position 0, a hold whose key-up was not
seen); ``ud = dd - previous hold`` and ``rollover = next dd < this hold``
hold exactly. Call it once on the whole table: the model is fitted from the
frame it is given, so a partition with fewer people falls back to coarser groups.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from ._dynamics_model import (
    draw_stratified,
    eligible_groups,
    fit_tables,
    normal_pairs,
    prior_table,
    to_normal_scores,
)

__all__ = ["KEYSTROKE_COLUMNS", "anonymise_keystrokes"]

KEYSTROKE_COLUMNS = ("person_id", "action_id", "position", "key_class", "key", "prev_key", "hold_ms", "dd_ms",
                     "ud_ms", "rollover")
# A group must also hold this many key presses: a handful of rows is a handful of someone's raw values.
MIN_ROWS_PER_GROUP = 20
# With epsilon: each person's weight in one group is capped at this many key presses.
DP_PERSON_CAP = 20.0
# Fixed priors (never fitted) for rows no group covers; typical adult typing (~200 ms per key, ~100 ms holds).
HOLD_PRIOR = (100.0, 0.35)
DD_PRIOR = (200.0, 0.6)
# Bounds on the fitted copula parameters: a degenerate estimate (one long action) must not make draws identical.
_MAX_RHO, _MAX_CORR = 0.9, 0.95
_START = "\x02"  # "no previous key": the first press of an action is its own context


def check_arguments(df: pl.DataFrame, columns: tuple[str, ...], what: str, seed: bytes, min_people: int) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}; the frame needs {', '.join(columns)}")
    if not isinstance(seed, (bytes, bytearray)) or len(seed) < 16:
        raise ValueError(f"{what}: seed must be at least 16 random bytes (the build's secret); a short or str "
                         "seed makes the draws guessable")
    if min_people < 2:
        raise ValueError(f"{what}: min_people must be >= 2: a model fitted from one person is that person's own "
                         "timing")


def seeded_rng(seed: bytes, what: bytes) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.blake2b(seed + what, digest_size=16).digest(), "little"))


def _in_action(action: np.ndarray, lag: int) -> np.ndarray:
    """Rows whose neighbour `lag` rows away (-1 previous, +1 next) is in the same action."""
    same = np.zeros(action.shape, dtype=bool)
    if lag < 0:
        same[1:] = action[1:] == action[:-1]
    else:
        same[:-1] = action[:-1] == action[1:]
    return same


def _shift(values: np.ndarray, lag: int, fill: float = np.nan) -> np.ndarray:
    out = np.full(values.shape, fill)
    if lag < 0:
        out[1:] = values[:-1]
    else:
        out[:-1] = values[1:]
    return out


def _copula(zh: np.ndarray, zd: np.ndarray, action: np.ndarray, has_prev: np.ndarray) -> tuple[float, ...]:
    """Population correlations of normal scores: (rho_hold, rho_dd, c, r).

    Model: z_hold = sqrt(rho_h) A_h + sqrt(1-rho_h) e_h, z_dd likewise, with
    per-action tempo factors corr(A_h, A_d) = c and corr(e_dd_i, e_hold_{i-1}) = r
    (the flight into a key against the hold of the key before it, which is
    what ud and rollover are made of). Estimated from sums per action, so it
    is one pass; they are 4 numbers over everyone, nothing per person.
    """
    oh, od = ~np.isnan(zh), ~np.isnan(zd)
    h, d = np.where(oh, zh, 0.0), np.where(od, zd, 0.0)
    n_actions = int(action.max()) + 1 if action.size else 0

    def within(z: np.ndarray, ok: np.ndarray) -> float:
        s = np.bincount(action, z, n_actions)
        sq = np.bincount(action, z * z, n_actions)
        n = np.bincount(action, ok.astype(float), n_actions)
        pairs = float((n * n - n).sum())
        return float((s * s - sq).sum() / pairs) if pairs > 0 else 0.0

    rho_h = float(np.clip(within(h, oh), 0.0, _MAX_RHO))
    rho_d = float(np.clip(within(d, od), 0.0, _MAX_RHO))
    prev_h = _shift(h, -1, 0.0) * has_prev
    prev_ok = _shift(oh.astype(float), -1, 0.0) * has_prev * od
    adj_n = float(prev_ok.sum())
    adj = float((prev_h * d).sum() / adj_n) if adj_n else 0.0
    sh, sd = np.bincount(action, h, n_actions), np.bincount(action, d, n_actions)
    nh = np.bincount(action, oh.astype(float), n_actions)
    nd = np.bincount(action, od.astype(float), n_actions)
    cross_n = float((nh * nd).sum()) - adj_n
    cross = float(((sh * sd).sum() - (prev_h * d).sum()) / cross_n) if cross_n > 0 else 0.0
    shared = np.sqrt(rho_h * rho_d)
    c = float(np.clip(cross / shared, -_MAX_CORR, _MAX_CORR)) if shared > 1e-6 else 0.0
    own = np.sqrt((1 - rho_h) * (1 - rho_d))
    r = float(np.clip((adj - shared * c) / own, -_MAX_CORR, _MAX_CORR)) if own > 1e-6 else 0.0
    return rho_h, rho_d, c, r


def _model(frame: pl.DataFrame, values: np.ndarray, levels: list[list[str]], prior: tuple[float, float], *,
           min_people: int, epsilon: float | None, people: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tables, group per row for drawing, True where the group was fitted rather than the prior)."""
    groups, per_level, n_groups = eligible_groups(frame, levels, min_people=min_people,
                                                  min_rows=MIN_ROWS_PER_GROUP)
    tables = fit_tables(values, per_level, people, n_groups, epsilon=epsilon, person_cap=DP_PERSON_CAP, rng=rng)
    tables = np.vstack([tables, prior_table(*prior)])
    fitted = groups >= 0
    return tables, np.where(fitted, groups, n_groups), fitted


def anonymise_keystrokes(df: pl.DataFrame, *, seed: bytes, min_people: int = 5,
                         epsilon: float | None = None) -> pl.DataFrame:
    """Hold and flight times drawn from a population model; see the module docstring.

    `epsilon` adds Laplace noise to the fitted histograms (see
    `_dynamics_model.fit_tables`); None (the release default) fits them exactly.
    """
    check_arguments(df, KEYSTROKE_COLUMNS, "anonymise_keystrokes", seed, min_people)
    if df.height == 0:
        return df
    work = df.select(KEYSTROKE_COLUMNS).with_row_index("_orig").sort(["action_id", "position"])
    first = pl.col("action_id") != pl.col("action_id").shift(1)
    first = first.fill_null(True)
    work = work.with_columns(
        pl.when(first).then(pl.lit(_START)).otherwise(pl.col("prev_key")).alias("_prev"),
        pl.when(first).then(pl.lit(_START)).otherwise(pl.col("key_class").shift(1)).alias("_pcls"),
        pl.lit("*").alias("_all"),
        pl.col("person_id").rank("dense").cast(pl.Int64).alias("_person"),
        pl.col("action_id").rank("dense").cast(pl.Int64).alias("_action"),
    )
    action = work["_action"].to_numpy() - 1
    people = work["_person"].to_numpy()
    hold = work["hold_ms"].cast(pl.Float64).fill_null(np.nan).to_numpy().copy()
    dd = work["dd_ms"].cast(pl.Float64).fill_null(np.nan).to_numpy().copy()
    has_prev = _in_action(action, -1)
    dd[~has_prev] = np.nan  # a first press has no flight into it, whatever the input said
    rng = seeded_rng(bytes(seed), b"keystroke-tables")
    common = {"min_people": min_people, "epsilon": epsilon, "people": people, "rng": rng}
    # Groups are counted in people by the dense person number: the same count, cheaper than strings.
    levels = work.select("_prev", "key", "_pcls", "key_class", "_all", person_id="_person")
    th, gh, fh = _model(levels, hold, [["key"], ["key_class"], ["_all"]], HOLD_PRIOR, **common)
    td, gd, fd = _model(levels, dd, [["_prev", "key"], ["_pcls", "key_class"], ["key_class"], ["_all"]],
                        DD_PRIOR, **common)
    zh = np.where(fh, to_normal_scores(hold, gh, th), np.nan)
    zd = np.where(fd, to_normal_scores(dd, gd, td), np.nan)
    rho_h, rho_d, c, r = _copula(zh, zd, action, has_prev)

    ids, pos = work["action_id"], work["position"].to_numpy()
    a_h = normal_pairs(seed, ids, None, 1)
    a_d = c * a_h + np.sqrt(1 - c * c) * normal_pairs(seed, ids, None, 2)
    e_h = normal_pairs(seed, ids, pos, 3)
    e_d = r * _shift(e_h, -1, 0.0) + np.sqrt(1 - r * r) * normal_pairs(seed, ids, pos, 4)
    z_hold = np.sqrt(rho_h) * a_h + np.sqrt(1 - rho_h) * e_h
    z_dd = np.sqrt(rho_d) * a_d + np.sqrt(1 - rho_d) * e_d
    # Only rows that get a value take part in the ranks (a first press has no flight).
    gh_drawn, gd_drawn = np.where(np.isnan(hold), -1, gh), np.where(np.isnan(dd), -1, gd)
    new_hold = draw_stratified(z_hold, gh_drawn, th)
    new_dd = draw_stratified(z_dd, gd_drawn, td)
    # 0.1 ms: finer than any capture clock, coarse enough that ud = dd - hold holds exactly after rounding.
    new_hold = np.where(np.isnan(hold), np.nan, np.round(new_hold, 1))
    new_dd = np.where(np.isnan(dd), np.nan, np.round(new_dd, 1))
    new_ud = np.round(new_dd - _shift(new_hold, -1), 1)
    next_dd = _shift(new_dd, +1)
    rollover = _in_action(action, +1) & (next_dd < new_hold)

    out = pl.DataFrame({
        "_orig": work["_orig"],
        "hold_ms": pl.Series(new_hold, nan_to_null=True),
        "dd_ms": pl.Series(new_dd, nan_to_null=True),
        "ud_ms": pl.Series(new_ud, nan_to_null=True),
        "rollover": rollover,
    }).sort("_orig")
    return df.with_columns(
        out["hold_ms"].cast(pl.Float64).alias("hold_ms"),
        out["dd_ms"].cast(pl.Float64).alias("dd_ms"),
        out["ud_ms"].cast(pl.Float64).alias("ud_ms"),
        out["rollover"].alias("rollover"),
    )
