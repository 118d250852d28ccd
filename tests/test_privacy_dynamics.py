"""Released keystroke and pointer timings: re-identification near chance, population statistics kept.

The attacks are those of benchmarks/keystroke_reid.py on a subsample of the
CMU keystroke benchmark (51 typists; the first 100 of each one's 400
repetitions, fewer trees) and on synthetic pointer people; the benchmark
prints the full table.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from deskcorder.privacy import anonymise_keystrokes, anonymise_pointer

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("keystroke_reid_bench", ROOT / "benchmarks" / "keystroke_reid.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

SEED = bytes(range(32))
OTHER_SEED = bytes(range(100, 132))
REPS, TREES = 100, 40
CHANCE = 1 / 51


@pytest.fixture(scope="module")
def cmu():
    if not bench.DATA.exists():
        pytest.skip(f"CMU keystroke data not found at {bench.DATA}")
    return bench.cmu_frame(bench.load_cmu(bench.DATA, REPS))


@pytest.fixture(scope="module")
def cmu_attacks(cmu):
    modes = bench.keystroke_modes(SEED)
    chosen = {name: modes[name] for name in ("raw", "kloak 100 ms", "population")}
    return {row["mode"]: row for row in bench.attack_table(cmu, chosen, reps=REPS, trees=TREES)}


def test_the_attacks_identify_raw_cmu_typists(cmu_attacks):
    # Without this the release figures below would prove nothing: the harness must see people when they are there.
    raw = cmu_attacks["raw"]
    assert raw["eer_released"] < 0.15  # 0.118 at 100 reps (0.096 at the paper's 400)
    assert raw["ident_released"] > 0.6  # ~0.77 at 100 reps, 40 trees; chance is 0.02


def test_kloak_style_random_delay_leaves_typists_identifiable(cmu_attacks):
    kloak = cmu_attacks["kloak 100 ms"]
    assert kloak["eer_released"] < 0.3
    assert kloak["ident_released"] > 10 * CHANCE


def test_released_cmu_typing_is_near_chance_for_both_attackers(cmu_attacks):
    released = cmu_attacks["population"]
    assert released["eer_released"] >= 0.45  # attacker enrols on released typing
    assert released["eer_raw_enrol"] >= 0.45  # attacker enrols on raw typing of known people
    assert released["ident_released"] <= 2 * CHANCE
    assert released["ident_raw_enrol"] <= 2 * CHANCE


def test_released_cmu_typing_keeps_timing_distributions_and_digraph_means(cmu_attacks):
    released = cmu_attacks["population"]
    assert released["ks_hold"] <= 0.05
    assert released["ks_dd"] <= 0.05
    assert released["ks_ud"] <= 0.05
    assert released["max_mean_err_ms"] <= 5.0


def test_released_typing_keeps_the_tempo_shared_within_a_repetition(cmu):
    # A typing model learns that a slow repetition is slow throughout; draws independent per key would lose that.
    def tempo_corr(frame):
        _, _, x = bench.features(frame)
        z = np.log(x[:, :11])
        z = (z - z.mean(0)) / z.std(0)
        return np.mean([np.corrcoef(z[:, i], z[:, i + 3])[0, 1] for i in range(8)])

    raw, released = tempo_corr(cmu), tempo_corr(anonymise_keystrokes(cmu, seed=SEED))
    assert raw > 0.3
    assert abs(released - raw) < 0.1


def _frame(rows: list[tuple]) -> pl.DataFrame:
    """Key presses (person, action, key, class, hold, dd) -> the keystrokes frame with derived columns."""
    df = pl.DataFrame(rows, schema=["person_id", "action_id", "key", "key_class", "hold_ms", "dd_ms"], orient="row")
    df = df.with_columns(pl.int_range(pl.len()).over("action_id").cast(pl.Int32).alias("position"))
    return df.with_columns(
        pl.col("key").shift(1).over("action_id").alias("prev_key"),
        pl.when(pl.col("position") == 0).then(None).otherwise(pl.col("dd_ms")).alias("dd_ms"),
    ).with_columns(
        (pl.col("dd_ms") - pl.col("hold_ms").shift(1).over("action_id")).alias("ud_ms"),
        (pl.col("dd_ms").shift(-1).over("action_id") < pl.col("hold_ms")).fill_null(False).alias("rollover"),
    )


def _typing(people: int, actions: int, rng: np.random.Generator, word: str = "hello", dd: float = 150.0,
            prefix: str = "p") -> list[tuple]:
    rows = []
    for p in range(people):
        speed = rng.uniform(0.7, 1.4)
        for a in range(actions):
            for k in word:
                rows.append((f"{prefix}{p}", f"{prefix}{p}-{word}-{a}", k, "letter",
                             float(90 * speed * rng.lognormal(0, 0.2)), float(dd * speed * rng.lognormal(0, 0.3))))
    return rows


def test_release_keeps_rows_order_columns_and_nulls_and_ud_rollover_are_consistent():
    rng = np.random.default_rng(1)
    df = _frame(_typing(8, 30, rng)).with_columns(pl.lit("kept").alias("episode_id"))
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("hold_ms"))
                         .alias("hold_ms"))  # a key-up that was never seen
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=3)
    out = anonymise_keystrokes(shuffled, seed=SEED)
    assert out.columns == shuffled.columns and out.dtypes == shuffled.dtypes
    keep = [c for c in shuffled.columns if c not in ("hold_ms", "dd_ms", "ud_ms", "rollover")]
    assert out.select(keep).equals(shuffled.select(keep))
    for col in ("hold_ms", "dd_ms"):
        assert out[col].is_null().to_list() == shuffled[col].is_null().to_list()
    assert not out["hold_ms"].equals(shuffled["hold_ms"])
    ordered = out.sort(["action_id", "position"])
    ud = ordered.select(pl.col("dd_ms") - pl.col("hold_ms").shift(1).over("action_id")).to_series()
    assert ordered["ud_ms"].round(1).equals(ud.round(1).alias("ud_ms"))
    nxt = ordered.select((pl.col("dd_ms").shift(-1).over("action_id") < pl.col("hold_ms")).fill_null(False))
    assert ordered["rollover"].to_list() == nxt.to_series().to_list()
    assert (ordered["hold_ms"].drop_nulls() > 0).all() and (ordered["dd_ms"].drop_nulls() > 0).all()


def test_draws_repeat_for_a_seed_whatever_the_row_order_and_change_with_the_seed():
    rng = np.random.default_rng(2)
    df = _frame(_typing(8, 20, rng))
    a = anonymise_keystrokes(df, seed=SEED)
    b = anonymise_keystrokes(df.reverse(), seed=SEED).reverse()
    c = anonymise_keystrokes(df, seed=OTHER_SEED)
    assert a.equals(b)
    assert not a["hold_ms"].equals(c["hold_ms"])


def test_a_digraph_typed_by_fewer_than_min_people_is_drawn_from_its_key_class():
    rng = np.random.default_rng(3)
    # 4 people have a distinctive 900 ms "qz"; 10 others type ordinary letters at ~150 ms.
    rare = _typing(4, 40, rng, word="qz", dd=900.0, prefix="r")
    df = _frame(_typing(10, 40, rng) + rare)

    def qz_dd(frame):
        return frame.filter((pl.col("prev_key") == "q") & (pl.col("key") == "z"))["dd_ms"].median()

    assert qz_dd(df) > 600
    assert qz_dd(anonymise_keystrokes(df, seed=SEED, min_people=5)) < 300  # four people are not a population
    assert qz_dd(anonymise_keystrokes(df, seed=SEED, min_people=4)) > 600


def test_masked_keys_get_the_timings_of_their_key_class_not_of_the_hidden_keys():
    rng = np.random.default_rng(4)
    # Everybody types "qz" slowly, but inside a redacted span the keys are unknown: its timing must not tell.
    df = _frame(_typing(10, 40, rng) + _typing(10, 40, rng, word="qz", dd=900.0, prefix="s"))
    masked = df.with_columns(
        pl.when(pl.col("key").is_in(["q", "z"])).then(None).otherwise(pl.col("key")).alias("key"),
        pl.when(pl.col("prev_key").is_in(["q", "z"])).then(None).otherwise(pl.col("prev_key")).alias("prev_key"))
    out = anonymise_keystrokes(masked, seed=SEED)
    hidden = out.filter(pl.col("key").is_null() & pl.col("dd_ms").is_not_null())["dd_ms"]
    shown = out.filter(pl.col("key").is_not_null() & pl.col("dd_ms").is_not_null())["dd_ms"]
    assert abs(np.log(hidden.median() / shown.median())) < 0.25


def test_one_person_alone_gets_the_fixed_prior_not_their_own_rhythm():
    rng = np.random.default_rng(5)
    slow = _frame([(p, a, k, c, h * 5, d * 5) for p, a, k, c, h, d in _typing(1, 60, rng)])
    out = anonymise_keystrokes(slow, seed=SEED)
    assert slow["hold_ms"].median() > 350
    assert out["hold_ms"].median() == pytest.approx(100.0, rel=0.2)  # HOLD_PRIOR's median


def test_noise_mode_still_releases_no_identity_and_is_reproducible(cmu):
    released = anonymise_keystrokes(cmu, seed=SEED, epsilon=1.0)
    assert released.equals(anonymise_keystrokes(cmu, seed=SEED, epsilon=1.0))  # same seed, same release
    feats = bench.features(released)
    assert bench.scaled_manhattan_eer(feats, feats, REPS // 2) >= 0.45


def test_bad_frames_and_seeds_are_refused_with_the_fix_named():
    df = _frame(_typing(5, 2, np.random.default_rng(6)))
    with pytest.raises(ValueError, match="missing column.*rollover"):
        anonymise_keystrokes(df.drop("rollover"), seed=SEED)
    with pytest.raises(ValueError, match="16 random bytes"):
        anonymise_keystrokes(df, seed=b"short")
    with pytest.raises(ValueError, match="min_people"):
        anonymise_keystrokes(df, seed=SEED, min_people=1)
    assert anonymise_keystrokes(df.clear(), seed=SEED).height == 0


# -- pointer ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pointer_paths():
    return bench.synthetic_paths(20, 60)


def test_released_paths_keep_action_kind_endpoints_and_start_at_zero_at_60_hz(pointer_paths):
    scroll = pl.DataFrame({"person_id": "u00", "action_id": "scroll-1", "path_kind": "scroll",
                           "sample": np.arange(3, dtype=np.int32), "t_ms": [0.0, 16.7, 33.3],
                           "x": np.array([5, 5, 5], np.int32), "y": np.array([9, 9, 9], np.int32), "path_index": 0})
    raw = pl.concat([pointer_paths, scroll])
    out = anonymise_pointer(raw, seed=SEED)
    assert out.columns == raw.columns and out.dtypes == raw.dtypes

    def ends(frame):
        return frame.sort(["action_id", "sample"]).group_by(["action_id", "path_kind"]).agg(
            pl.col("x").first().alias("x0"), pl.col("y").first().alias("y0"), pl.col("x").last().alias("x1"),
            pl.col("y").last().alias("y1"), pl.col("person_id").first(), pl.col("path_index").first(),
        ).sort("action_id")

    assert ends(out).equals(ends(raw))
    steps = out.sort(["action_id", "sample"]).group_by("action_id").agg(
        pl.col("t_ms").first().alias("t0"), pl.col("t_ms").diff().drop_nulls().alias("dt"),
        (pl.col("sample") == pl.int_range(pl.len())).all().alias("dense"))
    assert (steps["t0"] == 0).all() and steps["dense"].all()
    dt = steps["dt"].explode().drop_nulls()
    assert dt.min() > 0 and dt.max() <= 1000 / 60 + 1e-6
    assert out.filter(pl.col("path_kind") == "scroll")[["x", "y"]].unique().height == 1


def test_released_paths_keep_the_population_duration_for_a_distance(pointer_paths):
    from scipy.stats import ks_2samp

    raw_f, rel_f = bench.path_features(pointer_paths), bench.path_features(anonymise_pointer(pointer_paths,
                                                                                            seed=SEED))
    assert ks_2samp(raw_f[2][:, 0], rel_f[2][:, 0]).statistic < 0.1  # durations
    # Fitts-like: longer moves take longer in the release too.
    slope = np.polyfit(rel_f[2][:, 1], rel_f[2][:, 0], 1)[0]
    assert slope == pytest.approx(np.polyfit(raw_f[2][:, 1], raw_f[2][:, 0], 1)[0], rel=0.35)


def test_synthetic_pointer_people_are_identifiable_raw_and_near_chance_released():
    rows = bench.pointer_table(people=20, paths_per_person=60, trees=TREES)
    by = {r["mode"]: r for r in rows if "mode" in r}
    chance = rows[-1]["chance"]
    assert by["raw"]["ident_path"] > 0.6
    assert by["population"]["ident_path"] <= 2 * chance
    assert by["population, raw enrol"]["ident_path"] <= 2 * chance


def test_a_pointer_frame_missing_a_column_is_refused():
    with pytest.raises(ValueError, match="missing column.*t_ms"):
        anonymise_pointer(pl.DataFrame({"person_id": ["a"], "action_id": ["b"], "path_kind": ["drag"],
                                        "sample": [0], "x": [1], "y": [1]}), seed=SEED)
