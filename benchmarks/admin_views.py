"""The admin console's activity and dataset pages on a 500 k event store, over HTTP, next to the old path.

    python benchmarks/admin_views.py [--events 500000] [--people 20] [--upload-interval 10] [--views 7]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Builds a store the way a fleet fills it: ``--people`` consenting people, one
device each, replaying load_generator.py's desk-work stream, cut into one batch
per ``--upload-interval`` seconds of recording (what an agent uploads) and
stored with ``EventStore.write_batch`` (which keeps the activity counts in the
manifest's transaction), plus one ``dataset.build`` audit entry with a card.
Then a real ``deskcorder serve`` on that store, an admin logged in over HTTP,
and each page fetched ``--views`` times: /admin/activity, /admin/datasets,
/admin/datasets/<id> (min / median / max of the wall time of a GET).

Reference, in the same run: the old activity page's work, which decrypted and
counted every event on each view (``read_events`` + ``_views.activity_by_app``,
in this process, so without its HTTP and template time: a lower bound of the
old page), and whether a view adds ``events.read`` audit entries (the old path
added one per view). Also printed: what keeping the counts costs ingest (the
counting of a sample of batches, in a transaction rolled back), and how many
count rows the store holds. ``--postgres`` runs the same on a fresh PostgreSQL
database too (dropped afterwards).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load_generator import ACTOR, APPS, NS, Proc, enrol, simulate_desk  # noqa: E402

from deskcorder.collect._portal._views import activity_by_app  # noqa: E402
from deskcorder.events import events_to_columns  # noqa: E402
from deskcorder.store import EventStore  # noqa: E402
from deskcorder.wire import MSGPACK, Batch, decode_batch, encode_batch  # noqa: E402

ADMIN = ("bench-admin", "bench-admin-password")
PAGES = ["/admin/activity", "/admin/datasets", "/admin/datasets/{entry}"]


def fill(store: EventStore, args: argparse.Namespace) -> tuple[int, int, float, float, list[Batch]]:
    """The store's events and batches, the wall and CPU seconds write_batch took, and a sample of its batches."""
    devices = [f"bench-{i:04d}" for i in range(args.people)]
    enrol(store, devices)
    rng = random.Random(1)
    per_person = args.events // args.people
    t0 = time.time_ns() + 60 * NS  # after the consent just given
    n_events = n_batches = 0
    sample: list[Batch] = []
    took = cpu = 0.0
    for device in devices:
        events: list[Any] = []
        seconds = per_person / 6.0  # the stream records ~7 events/s; trimmed to the count below
        while len(events) < per_person:
            events = simulate_desk(rng, f"{device}-s0", seconds)
            seconds *= 1.3
        events = events[:per_person]
        window = int(args.upload_interval * NS)
        cut: dict[int, list[Any]] = {}
        for e in events:
            e.t_wall_ns = t0 + e.t_mono_ns
            cut.setdefault(e.t_mono_ns // window, []).append(e)
        last = set(sorted(cut)[-max(1, args.sample // args.people):])  # each person's last batches
        for k in sorted(cut):
            body = encode_batch(f"{device}-{k:07d}", device, events_to_columns(cut[k]), MSGPACK)
            batch = decode_batch(body, MSGPACK)
            start, start_cpu = time.perf_counter(), time.process_time()
            store.write_batch(batch)
            took += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
            if k in last:
                sample.append(batch)
            n_events += len(cut[k])
            n_batches += 1
    return n_events, n_batches, took, cpu, sample


def add_build(store: EventStore, people: int) -> None:
    """A dataset.build entry shaped like a real build's (its stats and an inline card)."""
    apps = {app: {"episodes": 100 + i, "actions": 1000 * (i + 1), "duration_s": 3600.0 * (i + 1),
                  "persons": people if i < 3 else 1} for i, (_, app, _) in enumerate(APPS)}
    rows = "\n".join(f"| {a} | {v['episodes']} | {v['actions']} | {v['duration_s']} |" for a, v in apps.items())
    store.audit(ACTOR, "dataset.build", "dataset", "benchmark build",
                {"out": "/nonexistent/dataset", "policy_version": 1, "mode": "release", "persons": people,
                 "events": 500_000, "actions_by_kind": {"type": 100, "click": 50}, "apps": apps,
                 "card": f"# Dataset\n\nApplications:\n\n| app (WM_CLASS) | episodes | actions | seconds |\n"
                         f"|---|---|---|---|\n{rows}\n"})


def times(get: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        get()
        out.append(time.perf_counter() - start)
    return out


def show(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"  {label:<44} {min(ms):9.1f} {statistics.median(ms):9.1f} {max(ms):9.1f}  ms (min/median/max of "
          f"{len(ms)})", flush=True)


def ingest_cost(store: EventStore, sample: list[Batch]) -> tuple[float, float]:
    """CPU seconds per batch and per event that counting ``sample`` costs (CPU, not wall time: this machine is
    shared, and a wall clock counts the other processes' turns): each person's last stored batches, their
    rows deleted and counted again in seq order (as they arrived: no later part of their session), in a
    transaction that is rolled back."""
    from deskcorder.store._db._aggregates import record_activity
    from deskcorder.store._db._manifest import FilePart
    from deskcorder.store._db._tables import activity_counts, activity_parts
    from deskcorder.store._events._layout import split_by_date

    took = 0.0
    with store._engine.connect() as conn:
        trans = conn.begin()
        try:
            for table in (activity_counts, activity_parts):
                conn.execute(table.delete().where(table.c.batch_id.in_([b.batch_id for b in sample])))
            for batch in sample:
                parts = [FilePart("", part) for _, part in split_by_date(batch.events)]
                start = time.process_time()
                record_activity(conn, batch.batch_id, parts)
                took += time.process_time() - start
        finally:
            trans.rollback()
    n = sum(b.events.num_rows for b in sample)
    return took / len(sample), took / n


def run(label: str, args: argparse.Namespace, database_url: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="deskcorder-admin-views-"))
    data_dir = work / "data"
    try:
        with EventStore(data_dir, database_url=database_url) as store:
            n_events, n_batches, took, cpu, sample = fill(store, args)
            add_build(store, args.people)
            store.portal.set_password(*ADMIN, role="admin", actor=ACTOR)
            with store._engine.connect() as conn:
                count_rows = conn.exec_driver_sql("select count(*) from activity_counts").scalar()
                part_rows = conn.exec_driver_sql("select count(*) from activity_parts").scalar()
            print(f"\n{label}: {n_events:,} events of {args.people} people in {n_batches:,} batches "
                  f"({n_events / n_batches:.0f} events each), written in {took:.1f} s; "
                  f"{count_rows:,} count rows, {part_rows:,} part rows", flush=True)
            entry = store.audit_entries(action="dataset.build")[-1].id
            reads0 = len(store.audit_entries(action="events.read"))
        common = ["--data-dir", str(data_dir)] + (["--database-url", database_url] if database_url else [])
        collector = Proc(["serve", "--port", "0", "--log-level", "warning", "--retention-interval", "0", *common],
                         r"listening on (http://\S+)")
        assert collector.match is not None
        url = collector.match.group(1)
        try:
            client = httpx.Client(base_url=url, headers={"Accept": "text/html"}, timeout=120)
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
            r = client.post("/login", data={"login": ADMIN[0], "password": ADMIN[1], "csrf_token": token})
            assert r.status_code == 303, r.text
            print(f"  {'view, over HTTP (GET until the body is read)':<44} {'min':>9} {'median':>9} {'max':>9}")
            for page in PAGES:
                path = page.format(entry=entry)

                def get(path: str = path) -> None:
                    r = client.get(path)
                    assert r.status_code == 200, (path, r.status_code, r.text[:300])
                get()  # warm: templates compiled, connections open
                show(path, times(get, args.views))
        finally:
            collector.stop()
        with EventStore(data_dir, database_url=database_url) as store:
            added = len(store.audit_entries(action="events.read")) - reads0
            owners = {d.device_id: d.employee_id for d in store.devices()}

            def old() -> None:
                activity_by_app(store.read_events(actor=ACTOR, purpose="benchmark: the old activity page"), owners)
            show("reference: old /admin/activity work", times(old, max(2, args.views // 3)))
            print(f"  events.read audit entries added by {args.views + 1} views of each page: {added} "
                  f"(the old activity page: 1 per view)")
            per_batch, per_event = ingest_cost(store, sample)
            print(f"  keeping the counts at ingest: {per_batch * 1000:.2f} ms CPU per batch ({per_event * 1e6:.2f} "
                  f"us/event), in the batch's transaction; write_batch as a whole: {cpu / n_batches * 1000:.2f} ms "
                  f"CPU ({took / n_batches * 1000:.2f} ms wall, fsyncs included) per batch", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--upload-interval", type=float, default=10.0,
                        help="seconds of recording per batch (the agent's upload trigger)")
    parser.add_argument("--views", type=int, default=7, help="GETs of each page")
    parser.add_argument("--sample", type=int, default=200, help="batches counted again to time the ingest cost")
    parser.add_argument("--postgres", default=None, help="also run on a fresh database of this PostgreSQL server")
    args = parser.parse_args()
    run("SQLite", args, None)
    if args.postgres:
        import psycopg

        db = f"deskcorder_admin_views_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{db}"')
            try:
                run("PostgreSQL", args, args.postgres.rsplit("/", 1)[0].replace("postgresql://",
                                                                                 "postgresql+psycopg://") + "/" + db)
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
