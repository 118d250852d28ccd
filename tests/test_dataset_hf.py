"""A built dataset is a Hugging Face dataset: ``datasets.load_dataset(folder)`` works with no other arguments.

Real ``datasets`` reads the card's YAML header, nothing is downloaded
(``HF_DATASETS_OFFLINE=1``, a temporary ``HF_HOME``), and the card's own
loading snippet is run as a reader would run it, from another folder.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deskcorder.dataset import TABLES, BuildOptions, build_from_store
from deskcorder.store import EventStore

from .helpers import TEST_ACTOR
from .roster_rig import PEOPLE, roster_store

datasets = pytest.importorskip("datasets")

SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module", autouse=True)
def offline_hf(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """No download, and a cache of this module's own, for this process and the snippet's."""
    home = tmp_path_factory.mktemp("hf_home")
    env = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(home),
           "HF_DATASETS_CACHE": str(home / "datasets")}
    saved = {k: os.environ.get(k) for k in env}
    config = (datasets.config.HF_DATASETS_OFFLINE, datasets.config.HF_DATASETS_CACHE)
    os.environ.update(env)
    # datasets read these at import: set its config too
    datasets.config.HF_DATASETS_OFFLINE, datasets.config.HF_DATASETS_CACHE = True, Path(env["HF_DATASETS_CACHE"])
    yield env
    datasets.config.HF_DATASETS_OFFLINE, datasets.config.HF_DATASETS_CACHE = config
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EventStore:
    store = roster_store(tmp_path_factory.mktemp("roster") / "data")
    yield store
    store.close()


@pytest.fixture(scope="module", params=["release", "internal"])
def built(request: pytest.FixtureRequest, store: EventStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / "ds"
    build_from_store(store, out, actor=TEST_ACTOR, purpose="hf test", options=BuildOptions(mode=request.param))
    return out


def _stats(folder: Path) -> dict:
    return json.loads((folder / "stats.json").read_text())


def test_every_table_loads_as_a_config_with_the_rows_stats_json_counts(built: Path) -> None:
    stats = _stats(built)
    assert all(stats[k] > 0 for k in ("actions", "episodes", "keystrokes", "pointer_samples"))
    default = datasets.load_dataset(str(built))
    for table in TABLES:
        loaded = datasets.load_dataset(str(built), table)
        expected = {s: v[table] for s, v in stats["splits"].items() if v[table]}
        assert {s: d.num_rows for s, d in loaded.items()} == expected, table
        if table == "actions":
            assert {s: d.num_rows for s, d in default.items()} == expected


def test_splits_hold_disjoint_people_and_each_person_is_in_the_same_split_in_every_table(built: Path) -> None:
    where: dict[str, dict[str, str]] = {}
    for table in TABLES:
        loaded = datasets.load_dataset(str(built), table)
        people = {s: set(d["person_id"]) for s, d in loaded.items()}
        assert all(None not in p for p in people.values())
        assert sum(len(p) for p in people.values()) == len(set().union(*people.values())) == len(PEOPLE)
        assert all(set(d["split"]) == {s} for s, d in loaded.items())
        where[table] = {person: s for s, p in people.items() for person in p}
    assert all(where[table] == where["episodes"] for table in TABLES), where


def test_the_cards_feature_types_are_the_parquet_files_types(built: Path) -> None:
    for table in TABLES:
        declared = datasets.load_dataset_builder(str(built), table).info
        assert declared.features is not None, f"{table}: the card's dataset_info was not read"
        for split in declared.splits:
            schema = pq.read_schema(built / f"data/{table}/{split}-00000.parquet").remove_metadata()
            assert declared.features == datasets.Features.from_arrow_schema(schema), (table, split)
        assert {s: i.num_examples for s, i in declared.splits.items()} == {
            s: v[table] for s, v in _stats(built)["splits"].items() if v[table]}


def _snippet(folder: Path) -> str:
    (code,) = re.findall(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.DOTALL)
    return code


def _run_snippet(folder: Path, cwd: Path, env: dict[str, str]) -> list[dict[str, int]]:
    cwd.mkdir(exist_ok=True)
    result = subprocess.run([sys.executable, "-c", _snippet(folder)], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return [ast.literal_eval(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_the_cards_snippet_loads_train_rows_of_a_demo_sized_build_from_any_folder(
        store: EventStore, tmp_path: Path, offline_hf: dict[str, str]) -> None:
    one = tmp_path / "demo-sized"  # the demo records one person
    build_from_store(store, one, actor=TEST_ACTOR, purpose="hf test", employee=PEOPLE[0])
    assert str(one.resolve()) in _snippet(one)
    actions, keystrokes = _run_snippet(one, tmp_path / "elsewhere", offline_hf)
    stats = _stats(one)
    assert actions == {"train": stats["actions"]} and actions["train"] > 0
    assert keystrokes == {"train": stats["keystrokes"]}


def test_the_cards_snippet_runs_on_a_full_build(built: Path, tmp_path: Path, offline_hf: dict[str, str]) -> None:
    actions, keystrokes = _run_snippet(built, tmp_path, offline_hf)
    stats = _stats(built)
    assert actions == {s: v["actions"] for s, v in stats["splits"].items() if v["actions"]}
    assert actions["train"] > 0 and sum(keystrokes.values()) == stats["keystrokes"]


def test_a_jsonl_only_build_loads_too(store: EventStore, tmp_path: Path) -> None:
    out = tmp_path / "jsonl"
    build_from_store(store, out, actor=TEST_ACTOR, purpose="hf test", options=BuildOptions(formats=("jsonl",)))
    stats = _stats(out)
    for table in TABLES:
        loaded = datasets.load_dataset(str(out), table)
        assert {s: d.num_rows for s, d in loaded.items()} == {
            s: v[table] for s, v in stats["splits"].items() if v[table]}, table
