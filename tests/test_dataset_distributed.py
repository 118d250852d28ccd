"""A dataset built on a real Dask cluster (2 worker processes) is the one-machine build, byte for byte."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from deskcorder.dataset import TABLES, DatasetError, build_dataset, build_dataset_distributed
from deskcorder.dataset._distributed import _session_groups
from deskcorder.events import columns_to_table, events_to_columns
from deskcorder.privacy import Pseudonymizer
from deskcorder.store import EventStore

from .test_dataset_output import _session, store  # noqa: F401  (store: a fixture used below)

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).parent.parent
_spec = importlib.util.spec_from_file_location("dataset_build_bench", ROOT / "benchmarks" / "dataset_build.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

FILES = ["README.md", *(f"data/{t}/{s}-00000.{f}" for t in sorted(TABLES) for s in ("test", "train", "validation")
                         for f in ("jsonl", "parquet")), "stats.json"]


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


def _sessions(sizes: list[int], seed: int) -> pa.Table:
    """Synthetic desk work (the benchmark's generator), one session per size, with distinct ids and devices."""
    tables = []
    for i, size in enumerate(sizes):
        t = bench.synthesise(size, 1, seed=seed + i)
        ids = pa.array([f"{seed:02d}{i:02d}" + uuid.UUID(int=seed * 1000 + i).hex] * t.num_rows)
        t = t.set_column(t.schema.get_field_index("session_id"), "session_id", ids)
        tables.append(t.append_column("device_id", pa.array([f"dev-{i % 5}"] * t.num_rows)))
    return pa.concat_tables(tables)


def _typed(device: str, title: str, text: str) -> pa.Table:
    t = columns_to_table(events_to_columns(_session(device, title, text)))
    return t.append_column("device_id", pa.array([device] * t.num_rows))


def _shuffled_with_repeats(table: pa.Table, seed: int) -> pa.Table:
    """Rows in random order, with 1% sent twice; a repeat's key differs, so which copy is kept shows."""
    rng = random.Random(seed)
    repeats = table.take(sorted(rng.sample(range(table.num_rows), table.num_rows // 100)))
    repeats = repeats.set_column(repeats.schema.get_field_index("key"), "key",
                                 pa.array(["repeat"] * repeats.num_rows))
    both = pa.concat_tables([table, repeats])
    order = list(range(both.num_rows))
    rng.shuffle(order)
    return both.take(order)


def _build_both(events: pa.Table, tmp_path: Path, client: distributed.Client, **kwargs: object) -> tuple:
    common = dict(pseudonymizer=Pseudonymizer.generate(), device_to_employee={"dev-0": "ana", "dev-1": "ana",
                                                                              "dev-2": "bo", "dev-ana": "ana"},
                  known_identifiers=["ws-042"], provenance={"built by": "test"})
    local = build_dataset(events, tmp_path / "local", **common)  # type: ignore[arg-type]
    dist = build_dataset_distributed(events, tmp_path / "dask", client=client, **common, **kwargs)  # type: ignore
    return local, dist


def _assert_same_files(a: Path, b: Path) -> None:
    def files(folder: Path) -> list[str]:
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    assert files(a) == FILES == files(b)
    for name in FILES:
        one, two = (a / name).read_bytes(), (b / name).read_bytes()
        if name == "README.md":  # the card's loading snippet names the folder it was written to
            one = one.replace(str(a.resolve()).encode(), b"<folder>")
            two = two.replace(str(b.resolve()).encode(), b"<folder>")
        assert one == two, f"{name} differs"


def test_a_dask_build_writes_the_same_bytes_as_a_local_build(tmp_path: Path, client: distributed.Client) -> None:
    sizes = [400, 9000, 150, 3000, 60, 2500, 700, 1200]  # very different sessions: groups cut by event count
    secrets = [_typed("dev-ana", "ana@ws-042: ~/src", "mail ana.lopez@example.com please"),
               _typed("dev-ana", "ana@ws-042: ~/src", "again"),  # same title: counted once, as locally
               _typed("dev-3", "notes", "card 4111 1111 1111 1111 ok")]
    events = pa.concat_tables([_sessions(sizes, seed=3), *secrets], promote_options="default")
    local, dist = _build_both(events, tmp_path, client, partitions=5)
    _assert_same_files(tmp_path / "local", tmp_path / "dask")
    assert local == dist and dist.sessions == len(sizes) + 3 and dist.actions > 400
    # Typed text is redacted on the workers, titles on the driver (once per distinct title).
    assert dist.redactions == {"CREDIT_CARD": 1, "EMAIL": 1, "IDENTIFIER": 1, "USER": 1}
    assert len(_session_groups(events, 5)) >= 3  # (the 9000-event session fills two shares alone)


def test_repeated_events_in_shuffled_input_are_dropped_as_on_one_machine(
        tmp_path: Path, client: distributed.Client) -> None:
    once = _sessions([3000, 200, 1500, 40, 800, 2200], seed=11)
    events = _shuffled_with_repeats(once, seed=5)
    local, dist = _build_both(events, tmp_path, client, partitions=4)
    _assert_same_files(tmp_path / "local", tmp_path / "dask")
    assert dist.duplicates_dropped == local.duplicates_dropped == events.num_rows - once.num_rows > 0


def test_sessions_are_cut_into_whole_contiguous_groups_of_about_equal_events() -> None:
    events = _sessions([5000, 100, 100, 100, 100, 1000, 1000, 1000, 1000, 1000], seed=1)
    groups = _session_groups(events, 4)
    seen: list[str] = []
    for g in groups:
        ids = sorted(set(g.column("session_id").to_pylist()))
        assert not set(ids) & set(seen) and (not seen or ids[0] > seen[-1])  # whole sessions, in session order
        seen += ids
    assert seen == sorted(set(events.column("session_id").to_pylist()))
    assert sum(g.num_rows for g in groups) == events.num_rows
    assert len(set(groups[0].column("session_id").to_pylist())) == 1  # the big session (first) alone
    assert len(groups) == 4 and min(g.num_rows for g in groups[1:]) >= 1000  # the rest spread out
    assert len(_session_groups(events, 100)) == 10  # never more groups than sessions
    first = _session_groups(events, 1)[0]
    assert pc.all(pc.equal(first.column("seq"), events.column("seq"))).as_py()  # input order kept in a group


def test_a_bad_partition_count_or_missing_column_fails_before_any_work(tmp_path: Path) -> None:
    events = _sessions([100], seed=2)
    with pytest.raises(DatasetError, match="partitions"):
        build_dataset_distributed(events, tmp_path / "a", partitions=0)
    with pytest.raises(DatasetError, match="lacks column"):
        build_dataset_distributed(events.drop_columns(["kind"]), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_the_cli_builds_the_same_dataset_with_the_dask_engine(store: EventStore,  # noqa: F811
                                                              tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--data-dir",
                               str(store.data_dir), *args], capture_output=True, text=True, timeout=120)

    # linkable: a release with the store's key, so two builds have the same pseudonyms to compare
    assert cli("--out", str(tmp_path / "local"), "--linkable").returncode == 0
    result = cli("--out", str(tmp_path / "dask"), "--engine", "dask", "--workers", "2", "--linkable")
    assert result.returncode == 0, result.stderr
    _assert_same_files(tmp_path / "local", tmp_path / "dask")
    refused = cli("--out", str(tmp_path / "x"), "--workers", "2")
    assert refused.returncode == 2 and "--engine dask" in refused.stderr
