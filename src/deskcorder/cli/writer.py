"""`deskcorder writer`: fleet mode's writer, storing the batches fleet collectors put on NATS JetStream."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import typer

from ._store_options import DATA_DIR, DATABASE_URL, EVENTS_URL, fail
from .serve import LogLevel


def writer(
    nats: str = typer.Option(..., "--nats", help="The NATS JetStream server the collectors publish to "
                                                 "(nats://HOST:4222)."),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
    events_url: str | None = EVENTS_URL,
    stream: str = typer.Option("DESKCORDER_BATCHES", "--stream", help="The JetStream stream the collectors "
                                                                      "publish to (their --stream)."),
    replicas: int = typer.Option(1, "--replicas", min=1, max=5,
                                 help="JetStream replicas of the stream, when this process creates it (an existing "
                                      "stream is kept; a different count is logged). Production wants 3 on a "
                                      "3-node NATS cluster; a single NATS server takes only 1."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Batches written at once."),
    ack_wait: float = typer.Option(30.0, "--ack-wait", min=1.0,
                                   help="Seconds before a batch taken by a writer that died is given to another "
                                        "(set on the shared consumer; the last writer started wins)."),
    log_level: LogLevel = typer.Option(LogLevel.info, "--log-level", help="Log level."),
) -> None:
    """Store the batches that `deskcorder serve --nats` collectors acknowledged, from NATS JetStream.

    Run as many as needed side by side, on the collectors' --data-dir (shared, with its master key) and --database-url.

    A batch is acked to JetStream only once it is durably stored: a writer killed mid-batch loses nothing.

    Prints "deskcorder writer consuming STREAM as CONSUMER from URL" once it takes batches.
    """
    from ..store import EventStore, StoreError
    from ..fleet import IngestWorker, check_stream_name

    logging.basicConfig(level=log_level.value.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "running upgrade ..." on every start is noise
    name = f"writer@{socket.gethostname()}:{os.getpid()}"
    try:
        check_stream_name(stream)
        store = EventStore(data_dir, database_url=database_url, events_url=events_url, create=False)
    except StoreError as exc:
        raise fail(str(exc)) from exc
    worker = IngestWorker(store, nats, stream=stream, ack_wait_s=ack_wait, concurrency=concurrency, name=name,
                          replicas=replicas)

    def ready(stream_name: str, consumer: str) -> None:
        # Tests and scripts wait for this exact line; keep its wording.
        print(f"deskcorder writer consuming {stream_name} as {consumer} from {nats}", file=sys.stdout, flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.run(stop, on_ready=ready)

    try:
        asyncio.run(main())
    except StoreError as exc:
        raise fail(str(exc)) from exc
    finally:
        store.close()
        s = worker.stats
        typer.echo(f"deskcorder writer stopped: {s.stored_batches} batches ({s.stored_events} events) stored, "
                   f"{s.duplicates} duplicates, {s.redelivered} redelivered, {s.refused} refused, {s.retries} retries")
