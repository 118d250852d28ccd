"""Run every benchmark one after the other on this machine and print their figures.

    python benchmarks/run_all.py [--quick]

Each benchmark is its own script (run them alone for more options):
    agent_cpu.py          agent CPU % idle, at desk load and at 200 keys/s + 500 moves/s, and RSS, next to
                          a no-op pynput listener
    ingest_http.py        collector events/s over HTTP, latency, stored bytes per event
    dataset_build.py      dataset build events/s and actions/s
    dataset_memory.py     dataset build peak memory per event, streamed by session groups and whole-table
    redaction_quality.py  redaction recall/precision on the labelled corpus, strings/s
    load_generator.py     simulated devices, embedded and fleet (NATS JetStream + PostgreSQL) modes
    fleet_ingest.py       fleet collector and writer events/s per core at 1,000-10,000 events per batch
    status_poll.py        what an agent's status poll costs a collector (and PostgreSQL), polls/s per core
    status_push.py        10,000 agents held on a collector: withdrawal-to-agent latency, CPU per idle agent
                          per hour next to the old poll's, and a two-collector PostgreSQL fleet
    keystroke_reid.py     re-identification of typists (CMU) and pointer users before/after anonymisation
    storage_bytes.py      stored bytes per event of the event file format, next to the format before it and
                          raw Arrow IPC, in 5,000-event, per-upload and per-day files
    admin_views.py        the admin's activity and dataset pages over HTTP on a 500 k event store, next to the
                          old decrypt-every-event activity page
They run sequentially, never side by side, so one does not steal the other's cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (figures are noisier)")
    args = parser.parse_args()
    quick = args.quick
    runs = [
        ("agent CPU", ["agent_cpu.py", *(["--rounds", "1"] if quick else [])]),
        ("collector ingest (msgpack)", ["ingest_http.py", "--batches", "11" if quick else "41"]),
        ("collector ingest (JSON)", ["ingest_http.py", "--encoding", "json", "--batches", "11" if quick else "21"]),
        ("dataset build", ["dataset_build.py", "--events", "200000" if quick else "1000000"]),
        ("dataset memory", ["dataset_memory.py", "--events", "100000" if quick else "400000"]),
        ("redaction quality", ["redaction_quality.py", "--seconds", "1" if quick else "3"]),
        ("fleet load", ["load_generator.py", "--duration", "10" if quick else "30"]),
        ("fleet batch mode", ["fleet_ingest.py", "--rounds", "1" if quick else "3"]),
        ("status polls", ["status_poll.py", "--seconds", "5" if quick else "10"]),
        ("status push", ["status_push.py", *(["--agents", "2000", "--employees", "200", "--withdrawals", "20",
                                              "--idle-seconds", "60", "--fleet-agents", "500"] if quick else [])]),
        ("keystroke re-identification", ["keystroke_reid.py", "--reps", "100" if quick else "400"]),
        ("stored bytes", ["storage_bytes.py", *(["--devices", "2", "--hours", "1", "--upload-files", "200"]
                                                if quick else [])]),
        ("admin views", ["admin_views.py", *(["--events", "100000", "--views", "3"] if quick else [])]),
    ]
    failed = []
    for title, argv in runs:
        print(f"\n=== {title}: {' '.join(argv)}", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]])
        print(f"--- {title}: {time.perf_counter() - start:.0f} s, exit {result.returncode}", flush=True)
        if result.returncode:
            failed.append(title)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
