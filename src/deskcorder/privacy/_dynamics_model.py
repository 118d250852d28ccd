"""Population models of timings: per-group log-time histograms, a Gaussian copula, seeded draws.

The building blocks of `anonymise_keystrokes` and `anonymise_pointer` (see
``_dynamics.py`` for the method and its measurements). Everything here is
vectorised numpy: a group is a row of a ``(groups, BINS)`` table, never a
Python loop over rows.

* `fit_tables` counts log-times into fixed bins per group (optionally with
  Laplace noise on the counts, each person's weight in a group capped) and
  turns the counts into cumulative distributions. Bins are global and fixed
  (1 ms to 60 s, 4.4 % wide), so a table is a population histogram and
  nothing else: no row, person or raw value is kept.
* `to_normal_scores` maps a time to its normal score under its group's
  distribution (to fit the copula); `draw_stratified` turns drawn scores into
  ranks within their group and reads the times back from the group's table.
* `row_uniforms` derives reproducible uniforms from a keyed hash of
  (seed, action id, position, stream): the same build key and the same action
  give the same draws whatever the row order or the partitioning of a build.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import polars as pl

__all__ = ["BINS", "LOG_EDGES", "eligible_groups", "fit_tables", "from_probabilities", "normal_pairs", "prior_table",
           "row_uniforms", "draw_stratified", "to_normal_scores"]

LOG_LO, LOG_HI = math.log(1.0), math.log(60_000.0)  # ms; typing runs and pointer paths end long before a minute
BINS = 256
LOG_EDGES = np.linspace(LOG_LO, LOG_HI, BINS + 1)
_WIDTH = (LOG_HI - LOG_LO) / BINS
DP_MERGE = 8  # with noise, counts are kept per 8 fine bins (35 % wide)
DP_SUPPORT_MS = (5.0, 5_000.0)  # with noise, the range a key timing is assumed to lie in
# Normal CDF on a fine grid (math.erf once per point, at import): p -> z by interpolation, no scipy at run time.
_Z_FINE = np.linspace(-6.0, 6.0, 4801)
_P_FINE = np.array([0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) for z in _Z_FINE])


def eligible_groups(frame: pl.DataFrame, levels: list[list[str]], *, min_people: int,
                    min_rows: int) -> tuple[np.ndarray, list[np.ndarray], int]:
    """Per row, the id of the first level's group seen from >= `min_people` people and >= `min_rows` rows.

    `frame` holds ``person_id`` and the level columns (null = no group at that
    level for this row). Ids are dense ints over all levels; -1 means no level
    qualifies (the caller's fixed prior applies). Also returned: each row's
    group at every level (what the group is fitted from) and the number of groups.
    """
    n = frame.height
    out = np.full(n, -1, dtype=np.int64)
    per_level: list[np.ndarray] = []
    next_id = 0
    for cols in levels:
        keyed = frame.select([pl.col("person_id"), *[pl.col(c) for c in cols]]).with_row_index("_row")
        keyed = keyed.drop_nulls(cols)
        if keyed.height == 0:
            continue
        level = np.full(n, -1, dtype=np.int64)
        per_level.append(level)
        stats = keyed.group_by(cols).agg(pl.col("person_id").n_unique().alias("_people"), pl.len().alias("_rows"))
        stats = stats.filter((pl.col("_people") >= min_people) & (pl.col("_rows") >= min_rows))
        if stats.height == 0:
            continue
        # Sorted, so group ids (and the noise drawn per group with `epsilon`) do not follow
        # group_by's order, which changes from run to run.
        stats = stats.sort(cols).with_row_index("_gid").with_columns(pl.col("_gid").cast(pl.Int64) + next_id)
        next_id += stats.height
        hit = keyed.join(stats.select([*cols, "_gid"]), on=cols, how="inner")
        rows, gids = hit["_row"].to_numpy(), hit["_gid"].to_numpy()
        level[rows] = gids
        free = out[rows] < 0
        out[rows[free]] = gids[free]
    return out, per_level, next_id


def _bin_of(log_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = (np.clip(log_t, LOG_LO, LOG_HI - 1e-9) - LOG_LO) / _WIDTH
    b = np.floor(pos).astype(np.int64)
    return b, pos - b


def fit_tables(values_ms: np.ndarray, fit_groups: list[np.ndarray], people: np.ndarray, n_groups: int, *,
               epsilon: float | None, person_cap: float, rng: np.random.Generator,
               support_ms: tuple[float, float] = DP_SUPPORT_MS) -> np.ndarray:
    """Cumulative log-time distribution per group: ``(n_groups, BINS + 1)``, rows from 0 to 1.

    `fit_groups` are, per level, each row's group id at that level (-1 none):
    a group is fitted from every row it contains, whichever level the row is
    finally drawn from. With `epsilon`, each person's weight in a group is
    capped at `person_cap` rows (so removing a person changes a group's counts
    by at most `person_cap` in L1) and Laplace(person_cap / epsilon) noise is
    added to every bin of `support_ms` (values outside it count at its edge,
    and bins outside it stay empty: a range fixed in advance, not read from the
    data): epsilon-DP per group; a person in k groups has k*epsilon.
    """
    counts = np.zeros(n_groups * BINS)
    ok = ~np.isnan(values_ms)
    kept = values_ms[ok] if epsilon is None else np.clip(values_ms[ok], *support_ms)
    b, _ = _bin_of(np.log(np.maximum(kept, 0.5)))
    for gid in fit_groups:
        g = gid[ok]
        sel = g >= 0
        if not sel.any():
            continue
        weight = np.ones(int(sel.sum()))
        if epsilon is not None:
            # Per (group, person) row count -> weight min(1, cap / count): a person's total weight <= cap.
            key = g[sel] * (int(people.max()) + 1) + people[ok][sel]
            _, inverse, per = np.unique(key, return_inverse=True, return_counts=True)
            weight = np.minimum(1.0, person_cap / per[inverse])
        counts += np.bincount(g[sel] * BINS + b[sel], weights=weight, minlength=n_groups * BINS)
    counts = counts.reshape(n_groups, BINS)
    if epsilon is not None:
        # Noise on coarse bins (DP_MERGE fine bins each: fewer bins, less noise mass), then post-processing,
        # which costs no privacy: bins under 3 noise scales are zeroed, so empty tails do not fill with noise.
        scale = person_cap / epsilon
        coarse = counts.reshape(n_groups, BINS // DP_MERGE, DP_MERGE).sum(axis=2)
        lo, hi = (_bin_of(np.log(np.array(support_ms)))[0] // DP_MERGE)
        inside = (np.arange(BINS // DP_MERGE) >= lo) & (np.arange(BINS // DP_MERGE) <= hi)
        coarse = coarse + rng.laplace(0.0, scale, coarse.shape) * inside
        coarse = np.where(coarse >= 3.0 * scale, coarse, 0.0)
        counts = np.repeat(coarse / DP_MERGE, DP_MERGE, axis=1)
    totals = counts.sum(axis=1, keepdims=True)
    cdf = np.concatenate([np.zeros((n_groups, 1)), np.cumsum(counts, axis=1)], axis=1)
    empty = totals[:, 0] <= 0  # all noise clipped away: a flat (uninformative) table, never a division by 0
    cdf[empty] = np.linspace(0.0, 1.0, BINS + 1)
    totals[empty] = 1.0
    return cdf / np.where(empty[:, None], 1.0, totals)


def prior_table(median_ms: float, sigma: float) -> np.ndarray:
    """A fixed log-normal as a table row: for rows no fitted group covers (fewer than min_people people)."""
    z = (LOG_EDGES - math.log(median_ms)) / sigma
    cdf = np.interp(z, _Z_FINE, _P_FINE)
    return (cdf - cdf[0]) / (cdf[-1] - cdf[0])


def to_normal_scores(values_ms: np.ndarray, groups: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Normal score of each value under its group's distribution (nan where the value or the group is missing)."""
    z = np.full(values_ms.shape, np.nan)
    ok = ~np.isnan(values_ms) & (groups >= 0)
    b, frac = _bin_of(np.log(np.maximum(values_ms[ok], 0.5)))
    g = groups[ok]
    p = cdf[g, b] + frac * (cdf[g, b + 1] - cdf[g, b])
    z[ok] = np.interp(np.clip(p, 1e-6, 1 - 1e-6), _P_FINE, _Z_FINE)
    return z


def draw_stratified(z: np.ndarray, groups: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Times (ms) at probabilities ``(rank + 0.5) / n``: each draw's rank among its group's draws (nan: group -1).

    Rank-preserving, so the copula's dependence survives (its rank
    correlations exactly), while each group's released sample becomes a
    stratified sample of its fitted distribution instead of an i.i.d. one:
    with heavy-tailed flights an i.i.d. sample's mean wanders by several ms
    per digraph (up to 9 ms on 100 CMU repetitions), a stratified one's by the
    binning only (0.2 ms). Ranks depend only on the draws, which do not depend
    on the person.
    """
    out = np.full(z.shape, np.nan)
    rows = np.flatnonzero(groups >= 0)
    # One argsort on (group, z) packed in a float (|z| < 30 always): faster than lexsort, and the sorted
    # queries make the table look-up below cache-friendly.
    order = rows[np.argsort(groups[rows] * 64.0 + np.clip(z[rows], -30.0, 30.0), kind="stable")]
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, g.size])
    rank = np.arange(g.size) - np.repeat(starts, sizes)
    out[order] = from_probabilities((rank + 0.5) / np.repeat(sizes, sizes), g, cdf)
    return out


def from_probabilities(p: np.ndarray, groups: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """The time (ms) at cumulative probability `p` in each row's group (the inverse of its table)."""
    # One global searchsorted: group g's cdf shifted by 2g keeps every row of the table in its own range.
    n_groups = cdf.shape[0]
    flat = (cdf + 2.0 * np.arange(n_groups)[:, None]).ravel()
    pos = np.searchsorted(flat, p + 2.0 * groups, side="left")
    i = np.clip(pos - groups * (BINS + 1), 1, BINS)
    lo, hi = cdf[groups, i - 1], cdf[groups, i]
    frac = np.where(hi > lo, (p - lo) / np.where(hi > lo, hi - lo, 1.0), 0.5)
    return np.exp(LOG_EDGES[i - 1] + np.clip(frac, 0.0, 1.0) * _WIDTH)


def row_uniforms(seed: bytes, action_ids: pl.Series, positions: np.ndarray | None, stream: int) -> np.ndarray:
    """Uniforms in (0, 1), one per row, from (seed, action id, position, stream) only.

    Positions None gives one value per action (shared by its rows). Polars'
    string hash is stable for one polars version, which is what one build
    needs; the build's seed enters through the hash seed and the mixing, so
    without it the draws cannot be recomputed.
    """
    digest = hashlib.blake2b(seed, digest_size=16, person=b"dc-dynamics").digest()
    s0, s1 = int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")
    h = action_ids.hash(seed=s0 % (2**63)).to_numpy().astype(np.uint64)
    with np.errstate(over="ignore"):
        x = h ^ np.uint64(s1) ^ np.uint64((stream * 0x9E3779B97F4A7C15) % 2**64)
        if positions is not None:
            x = x + (positions.astype(np.uint64) + np.uint64(1)) * np.uint64(0xBF58476D1CE4E5B9)
        for _ in range(2):  # splitmix64 finaliser, twice: adjacent positions give unrelated outputs
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            x = x ^ (x >> np.uint64(31))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def normal_pairs(seed: bytes, action_ids: pl.Series, positions: np.ndarray | None, stream: int) -> np.ndarray:
    """Standard normal draws (Box-Muller on two hashed uniform streams)."""
    u1 = row_uniforms(seed, action_ids, positions, 2 * stream)
    u2 = row_uniforms(seed, action_ids, positions, 2 * stream + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
