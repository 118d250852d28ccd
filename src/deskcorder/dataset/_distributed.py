"""``build_dataset_distributed``: the same dataset as ``build_dataset``, byte for byte, built on a Dask cluster.

Sessions are independent: episodes, actions and the redaction of typed text
never look across a session boundary (episode ids and ``event_seqs`` are per
session, duplicates are (session_id, seq)). So the driver cuts the events into
groups of whole sessions, contiguous in session order and of about equal event
counts; each worker runs ``_build._compute`` (sort, episodes, actions, typed
text redaction) on one group; the driver joins the parts in session order and
runs ``_build._finish`` (window titles, pseudonyms, split, statistics, writing)
exactly as a one-machine build does. The files are written by the driver with
the one writer both paths share, so row order, row groups and statistics cannot
differ; titles are redacted there because they are counted once per distinct
title across the whole build, and the pseudonym key never leaves the driver.

Why Dask (``dask.distributed``) rather than Ray Data or Spark: the work is
"run this Python function on these Arrow tables, give me the results back in
order" — ``Client.map`` and ``Client.gather``, nothing more. Dask is
a pip-installable pure-Python package, starts a ``LocalCluster`` of processes
in a second for tests and single big machines, ships our functions and the
Redactor with cloudpickle, and a fleet cluster is one ``dask scheduler`` plus
``dask worker tcp://...`` per machine with deskcorder installed. Spark would
bring a JVM and Python<->JVM row conversion for a job that is Python state
machines; Ray Data's strength (streaming, GPUs, autoscaling) is not needed and
its runtime is far heavier to install and to start in a test.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

import polars as pl
import pyarrow as pa
from rich.progress import Progress

from ._build import (DatasetError, DatasetStats, _begin, _compute, _finish, _frame_redactor, _Pseudonymizer,
                     _Redactor)
from ._episodes import prepare
from ._options import BuildOptions

if TYPE_CHECKING:
    from distributed import Client

    from ..observations import Observation
    from ..privacy import FrameRedactor

__all__ = ["ENGINES", "build_dataset_distributed"]

ENGINES: tuple[str, ...] = ("local", "dask")

# Columns a worker needs (prepare's input); the rest of a stored table is not shipped.
_SHIPPED = ("session_id", "seq", "t_mono_ns", "t_wall_ns", "kind", "key", "char", "button", "x", "y", "dx", "dy",
            "app_process", "app_class", "window_title", "reason", "device_id", "screen_width", "screen_height")


def build_dataset_distributed(events: pa.Table | Iterable[pa.Table], out: Path | str, options: BuildOptions = BuildOptions(), *,
                              client: Client | None = None, scheduler_address: str | None = None,
                              workers: int | None = None, partitions: int | None = None,
                              redactor: _Redactor | None = None, pseudonymizer: _Pseudonymizer | None = None,
                              device_to_employee: Mapping[str, str] | None = None,
                              known_identifiers: Iterable[str] = (), provenance: Mapping[str, Any] | None = None,
                              overwrite: bool = False, progress: Progress | None = None,
                              observations: Iterable[Observation] | None = None,
                              frame_redactor: FrameRedactor | None = None) -> DatasetStats:
    """``build_dataset`` on a Dask cluster: the same arguments, the same files.

    Observations go to the worker that builds their session, so the frames' OCR is spread too.

    The cluster is ``client`` if given (left open), else the scheduler at ``scheduler_address``
    (``tcp://host:8786``), else a ``LocalCluster`` of ``workers`` processes (default: one per CPU) started
    and stopped here. ``partitions`` (default: 4 per worker) is how many groups of whole sessions the events
    are cut into; a session is never split, so a build has at most one partition per session.
    """
    out = Path(out)
    # ``events`` may also be an iterator of tables of whole sessions in session order (``_stream.py``): each
    # is shipped to a worker as it is read, so the driver never holds every raw event.
    streamed = None if isinstance(events, pa.Table) else (g for g in events if g.num_rows)
    if streamed is not None:
        events = next(streamed, None) or pa.table({})
    redactor, pseudonymizer, known, step = _begin(events, out, overwrite, redactor, pseudonymizer,
                                                  known_identifiers, progress, "starting the cluster")
    try:
        prepare(events.slice(0, 0), options)  # missing columns fail here, not on a worker
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc
    if partitions is not None and partitions < 1:
        raise DatasetError(f"partitions must be at least 1, not {partitions}")
    if workers is not None and workers < 1:
        raise DatasetError(f"workers must be at least 1, not {workers}")
    if workers is not None and (client is not None or scheduler_address is not None):
        raise DatasetError("workers sizes the local cluster; a given client or scheduler has its own workers")
    with _connect(client, scheduler_address, workers) as dask:
        n_workers = max(1, len(dask.scheduler_info(n_workers=-1)["workers"]))
        if streamed is not None:
            parts = _compute_streamed(dask, itertools.chain([events], streamed), 2 * n_workers, observations,
                                      options=options, redactor=redactor, known=known,
                                      frame_redactor=frame_redactor)
        else:
            parts = _compute_cut(dask, events, partitions or 4 * n_workers, n_workers, observations, step,
                                 options=options, redactor=redactor, known=known, frame_redactor=frame_redactor)
    step("redacting and pseudonymising")
    stats = _finish(parts, out, options, pseudonymizer=pseudonymizer, redactor=redactor,
                    device_to_employee=device_to_employee or {}, known=known, provenance=provenance or {},
                    overwrite=overwrite, step=step)
    step("done")
    return stats


def _compute_cut(dask: Client, events: pa.Table, partitions: int, n_workers: int,
                 observations: Iterable[Observation] | None, step: Any, *, options: BuildOptions,
                 redactor: _Redactor, known: tuple[str, ...], frame_redactor: FrameRedactor | None) -> list[Any]:
    """The parts of a build given every event: cut here into groups of whole sessions, all shipped at once."""
    groups = _session_groups(events, partitions)
    step(f"sorting and reducing {len(groups)} partitions on {n_workers} workers")
    observed = _observation_groups(groups, observations)
    shipped = dask.scatter(groups)
    futures = dask.map(_compute_group, shipped, observed, options=options, redactor=redactor, known=known,
                       frame_redactor=_frame_redactor(frame_redactor, redactor, observed[0]), pure=False)
    parts = dask.gather(futures)
    dask.cancel(shipped)
    return parts


def _compute_streamed(dask: Client, groups: Iterable[pa.Table], in_flight: int,
                      observations: Iterable[Observation] | None, *, options: BuildOptions, redactor: _Redactor,
                      known: tuple[str, ...], frame_redactor: FrameRedactor | None) -> list[Any]:
    """The parts of a build given groups as they are read: each shipped at once, at most ``in_flight`` raw
    groups waiting or running on the cluster (the next read waits for one to finish)."""
    from distributed import wait

    from ._stream import _ObservationRouter

    observed = None if observations is None else list(observations)
    router = _ObservationRouter(observed)
    frames = _frame_redactor(frame_redactor, redactor, observed)
    futures: list[Any] = []
    for group in groups:
        while sum(not f.done() for f in futures) >= in_flight:
            wait([f for f in futures if not f.done()], return_when="FIRST_COMPLETED")
        futures.append(dask.submit(_compute_group, group, router.take(group), options=options, redactor=redactor,
                                   known=known, frame_redactor=frames, pure=False))
        del group
    if router.left:
        raise DatasetError(f"{len(router.left)} observations belong to no session of this build; pass only "
                           "those of its sessions (build_from_store reads only those)")
    return dask.gather(futures)


@contextlib.contextmanager
def _connect(client: Client | None, address: str | None, workers: int | None) -> Iterator[Client]:
    if client is not None:
        yield client
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise DatasetError("the dask engine needs dask.distributed: pip install 'deskcorder[dist]'") from exc
    if address is not None:
        try:
            remote = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise DatasetError(f"cannot reach the Dask scheduler at {address} ({exc}); start one with "
                               f"`dask scheduler` and workers with `dask worker {address}`") from exc
        with remote:
            yield remote
        return
    # Processes, one thread each: the reducers are pure Python and would share one GIL as threads.
    with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as local:
        yield local


def _compute_group(events: pa.Table, observations: list[Observation] | None, *, options: BuildOptions,
                   redactor: _Redactor, known: tuple[str, ...], frame_redactor: FrameRedactor | None) -> Any:
    return _compute(events, options, redactor, known, observations=observations, frame_redactor=frame_redactor)


def _observation_groups(groups: list[pa.Table], observations: Iterable[Observation] | None
                        ) -> list[list[Observation] | None]:
    """Each group's observations (those of its sessions); ones of no session built go with the first group,
    where they match no action and are counted, as in a one-machine build."""
    if observations is None:
        return [None] * len(groups)
    where = {s: i for i, g in enumerate(groups) for s in g.column("session_id").unique().to_pylist()}
    out: list[list[Observation]] = [[] for _ in groups]
    for obs in observations:
        out[where.get(obs.session_id, 0)].append(obs)
    return list(out)


def _session_groups(events: pa.Table, partitions: int) -> list[pa.Table]:
    """The events cut into at most ``partitions`` tables of whole sessions, in session order.

    Sessions are sorted as ``prepare`` sorts them and cut where the running event count crosses a multiple
    of total/partitions, so groups hold about equal numbers of events (a session bigger than that is a
    group of its own). Rows keep their input order inside a group: ``prepare`` keeps the first of two
    events with the same (session_id, seq), and it must be the same first as in a one-machine build.
    """
    columns = [c for c in _SHIPPED if c in events.column_names]
    df = pl.from_arrow(events.select(columns))
    assert isinstance(df, pl.DataFrame)
    sizes = df.group_by("session_id").len().sort("session_id")
    total = df.height
    starts = sizes["len"].cum_sum() - sizes["len"]
    group = (starts * partitions // total).clip(upper_bound=partitions - 1)
    mapping = dict(zip(sizes["session_id"].to_list(), group.to_list()))
    df = df.with_columns(_group=pl.col("session_id").replace_strict(mapping, return_dtype=pl.Int64))
    parts = df.partition_by("_group", maintain_order=True, include_key=False, as_dict=True)
    return [parts[(g,)].to_arrow() for g in sorted(set(mapping.values()))]
