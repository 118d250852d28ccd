"""``build_from_store``: a dataset from what an ``EventStore`` holds, audited, with the store's privacy keys.

The read names who builds and why (it is an audited read of raw events),
device hostnames are scrubbed from window titles, and the build itself is
written to the audit log with its mode and statistics, which is what the admin
console lists as dataset builds.

Pseudonyms: a release (the default) uses a fresh key, so its ids match no
other build; an internal build, or a release asked to be ``linkable``, uses
the data dir's key (``pseudonym.key``: datasets built with it share
pseudonyms, see ``deskcorder.privacy``). Both are recorded in the audit entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
from rich.console import Console
from rich.progress import Progress

from ..store import EventStore
from ._build import DatasetError, DatasetStats, _check_out, build_dataset
from ._distributed import ENGINES, build_dataset_distributed
from ._options import BuildOptions
from ._stream import DEFAULT_GROUP_EVENTS, BuildProgress, build_dataset_streaming, session_groups

__all__ = ["build_from_store", "PSEUDONYM_KEY_FILE"]

PSEUDONYM_KEY_FILE = "pseudonym.key"


def _observations(store: EventStore, sessions: list[str], *, actor: str, purpose: str, session_id: str | None,
                  employee: str | None) -> list[Any] | None:
    """The stored observations of the events' sessions (an audited read), or None when none are stored: a
    build of actions alone reads nothing more and writes what it wrote before observations existed."""
    stored = store.observation_summaries(sessions)
    if not any(s.observations for s in stored.values()):
        return None
    found = store.read_observations(actor=actor, purpose=purpose, session_id=session_id, employee=employee)
    wanted = set(sessions)
    return [o for o in found if o.session_id in wanted]


def build_from_store(store: EventStore, out: Path | str, *, actor: str, purpose: str,
                     options: BuildOptions = BuildOptions(), session_id: str | None = None,
                     employee: str | None = None, overwrite: bool = False, console: Console | None = None,
                     engine: str = "local", scheduler_address: str | None = None,
                     workers: int | None = None, group_events: int | None = DEFAULT_GROUP_EVENTS) -> DatasetStats:
    """Read (audited) the store's events, optionally of one session or employee, and build a dataset at ``out``.

    ``engine`` ``"dask"`` builds on a Dask cluster (``build_dataset_distributed``: the scheduler at
    ``scheduler_address``, or a local cluster of ``workers`` processes); the files are the same.

    The sessions are read in groups of about ``group_events`` events (one audited read per session) and
    each group is reduced (locally: ``build_dataset_streaming``; on Dask: shipped to a worker) before the
    next is read, so the raw events of the whole store are never in memory at once; ``None`` reads them
    all in one audited read first. The files are the same.
    """
    from ..privacy import Pseudonymizer

    if options.linkable and options.mode != "release":
        raise DatasetError("--linkable is for a release; an internal build always keeps the store's pseudonyms")
    stable = options.mode == "internal" or options.linkable

    if engine not in ENGINES:
        raise DatasetError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "local" and (scheduler_address is not None or workers is not None):
        raise DatasetError("--scheduler and --workers are for --engine dask")
    # The key first: a key file that cannot be used (open to other users, malformed) must stop the build
    # before it has read, and so audited, any event.
    pseudonymizer = (Pseudonymizer.from_file(store.data_dir / PSEUDONYM_KEY_FILE) if stable
                     else Pseudonymizer.generate())
    console = console or Console(stderr=True)
    out = Path(out).expanduser().resolve()
    _check_out(out, overwrite)  # likewise: a taken --out must not cost an audited read of every event
    stream = group_events is not None
    with Progress(*BuildProgress.columns(), console=console, transient=True,
                  disable=not console.is_terminal) as progress:
        if stream:
            assert group_events is not None
            stored = [s for s in store.sessions(employee=employee) if session_id in (None, s.session_id)]
            total = sum(s.n_events for s in stored)
            groups = session_groups([(s.session_id, s.n_events) for s in stored], group_events)
            sessions = [s for g in groups for s in g]
            recorded = {s.device_id for s in stored}
            events: Any = None
        else:
            reading = progress.add_task("reading stored events", total=None)
            events = store.read_events(actor=actor, purpose=purpose, session_id=session_id, employee=employee)
            progress.remove_task(reading)
            total = events.num_rows
            sessions = events.column("session_id").unique().to_pylist()
            recorded = set(events.column("device_id").unique().to_pylist())
        if total == 0:
            raise DatasetError("the store holds no events" + (f" for session {session_id}" if session_id else "")
                               + "; record some first (deskcorder agent, or deskcorder demo)")
        observations = _observations(store, sessions, actor=actor, purpose=purpose, session_id=session_id,
                                     employee=employee)
        devices = store.devices()
        policy = store.current_policy()
        provenance: dict[str, Any] = {
            "built by": actor, "purpose": purpose, "policy version (current)": policy.version,
            "people": len({d.employee_id for d in devices if d.device_id in recorded}),
        }
        common: dict[str, Any] = dict(
            pseudonymizer=pseudonymizer,
            device_to_employee={d.device_id: d.employee_id for d in devices},
            known_identifiers=[d.hostname for d in devices] + [e.handle for e in store.employees()],
            provenance=provenance, overwrite=overwrite, progress=progress, observations=observations)
        if stream:
            def read(group: list[str]) -> pa.Table:
                return pa.concat_tables([store.read_events(actor=actor, purpose=purpose, session_id=s,
                                                           employee=employee) for s in group])

            report = BuildProgress(total, progress=progress if console.is_terminal else None, console=console)

            def reading() -> Iterator[pa.Table]:
                for g in groups:
                    table = read(g)
                    yield table
                    report.advance(table.num_rows, "reading and reducing events")  # the consumer is done with it
                report.stage("redacting, pseudonymising and writing")

            if engine == "dask":
                stats = build_dataset_distributed(reading(), out, options, scheduler_address=scheduler_address,
                                                  workers=workers, **common)
            else:
                stats = build_dataset_streaming(reading(), out, options, **common)
            report.stage("done")
        elif engine == "dask":
            stats = build_dataset_distributed(events, out, options, scheduler_address=scheduler_address,
                                              workers=workers, **common)
        else:
            stats = build_dataset(events, out, options, **common)
    store.audit(actor, "dataset.build", "dataset", purpose,
                {"out": str(out), "policy_version": policy.version, "mode": options.mode,
                 "linkable": stable, **stats.as_json()})
    return stats
