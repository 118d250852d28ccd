"""Fleet mode's writer: take acknowledged batches off the JetStream buffer and store them.

Fleet mode splits the embedded collector (decode, check, write, answer) in two,
so that collectors and writers can each be scaled and killed independently::

    agent --HTTP--> collector x N --publish--> JetStream stream --pull--> writer x M --> EventStore
                    (stateless)                (the buffer)               (this module)  (Parquet + PostgreSQL)

The collector (``collect/_ingest.py`` with ``_publisher.py``) decodes and validates a
batch, runs ``EventStore.check_batch`` (what ``write_batch`` would refuse, answered
synchronously: 403, 409, or 200 duplicate for a batch already stored), then
publishes the checked batch as an Arrow IPC stream (``wire.encode_checked``;
LZ4-compressed, or as a last resort the request body itself, when that would
not fit in a NATS message) and answers 200 only after JetStream's PubAck. A
writer (``IngestWorker``, run by ``deskcorder writer``) fetches from the
stream's one durable pull consumer, reads the batch back
(``wire.decode_checked``: no MessagePack unpacking, column building or
re-hashing a second time, every value checked again), calls
``EventStore.write_batch`` and acks the message only after it returned.
Writers read both kinds of message. Upgrading a fleet from a version whose
collectors published only the body: upgrade the writers first, then the
collectors; an old writer cannot read Arrow and would drop (term, with an
error in its log) the acknowledged batches a new collector published.

Why killing any one process loses nothing acknowledged
------------------------------------------------------
- A collector holds nothing: until the PubAck it has answered nothing, and the
  agent retries the same batch id elsewhere; after it, the batch is JetStream's.
- A writer acks only after ``write_batch`` returned, i.e. after the files are
  fsynced and the manifest committed. Killed before the ack, its unacked
  messages are redelivered to another writer after ``ack_wait``. A batch it had
  already committed is then answered by ``write_batch`` as a duplicate (the
  batch id is the manifest's primary key), so redelivery never stores twice.

De-duplication, twice over
--------------------------
1. In the stream: the collector publishes with ``Nats-Msg-Id`` =
   ``<batch_id>:<content hash prefix>``. A repeat within the stream's
   ``duplicate_window`` (agent retries after a lost answer, the same batch
   posted to two collectors) is acknowledged by JetStream without being stored
   again. The content hash is in the id so that a *different* batch reusing a
   batch id is not silently swallowed here: it reaches a writer, which refuses
   it as a ``BatchConflict`` in the log and the audit log.
2. In the store: ``write_batch`` is idempotent by batch id + content hash, so
   repeats outside the window, and redeliveries, are stored once.

Settings (and why)
------------------
Stream ``DESKCORDER_BATCHES`` (``--stream`` picks another name), subjects
``<stream>.<device_id>``: file storage; WorkQueue retention, so a message is
deleted once a writer acked it and the stream only ever holds the backlog;
``discard=new`` with ``max_bytes`` (unlimited by default), so a full buffer
refuses new batches (the collector answers 503, the agent keeps them in its
spool) instead of dropping acknowledged ones; ``num_replicas`` from
``--replicas`` (1 by default; production runs 3 on a 3-node NATS cluster, so
that an acknowledged batch survives the loss of a NATS node: with 1, it is
on one server's disk only). Created idempotently by whichever collector or
writer starts first; an existing stream is kept as it is (a different replica
count is logged as a warning: change it with ``nats stream edit``).

Consumer ``writers`` (durable, pull, shared by every writer): explicit acks;
``ack_wait`` 30 s by default: a dead writer's batches come back after that
long, while a live writer sends ``in_progress`` every ``ack_wait / 3`` during
a slow write so that it is not redelivered under its feet (a redelivery
would still be harmless, only wasted work). ``max_deliver`` is unlimited on
purpose: an acknowledged batch is given up only by a decision (``term``: not
permitted, conflicting id, undecodable), never by a retry counter; a batch that
fails for a passing reason (database down, disk full) is ``nak``-ed with a
growing delay (1, 2, 4 ... 30 s) and retried until it is stored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import enum
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from ..store import BatchConflict, EventStore, NotPermitted, StoreError
from ..wire import ARROW_STREAM, MSGPACK, Batch, InvalidBatch, decode_batch, decode_checked
from ._stream import ACK_WAIT_S, CONSUMER, STREAM, check_replicas, check_stream_name, connect_nats, ensure_consumer, \
    ensure_stream

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ["IngestWorker", "WorkerStats"]

log = logging.getLogger("deskcorder.writer")

MAX_NAK_DELAY_S = 30.0
WRITER_ACTOR = "writer"


# -- the writer -----------------------------------------------------------------------------------

class Outcome(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REFUSED = "refused"  # terminated: not permitted, conflicting id, undecodable
    RETRY = "retry"  # nak-ed: the store failed for now


@dataclasses.dataclass
class WorkerStats:
    stored_batches: int = 0
    stored_events: int = 0
    duplicates: int = 0
    refused: int = 0
    retries: int = 0
    redelivered: int = 0  # messages a writer got again: an earlier one died or was slow with them
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, **deltas: int) -> None:
        with self._lock:  # updated from the writing threads
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


class IngestWorker:
    """One writer process's loop: fetch from the ``writers`` consumer, store, ack.

    ``concurrency`` batches are written at once (threads: the time goes to
    fsync and database round trips, and pyarrow/cryptography release the GIL).
    """

    def __init__(self, store: EventStore, nats_url: str, *, stream: str = STREAM, ack_wait_s: float = ACK_WAIT_S,
                 concurrency: int = 4, name: str = "writer", replicas: int = 1):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._replicas = check_replicas(replicas)
        self._store = store
        self._url = nats_url
        self._stream = check_stream_name(stream)
        self._ack_wait_s = ack_wait_s
        self._concurrency = concurrency
        self._name = name
        self.stats = WorkerStats()

    async def run(self, stop: asyncio.Event, on_ready: Callable[[str, str], None] | None = None) -> None:
        """Consume until ``stop`` is set, then finish (and ack) the batches in hand and return."""
        nc = await _until_stopped(connect_nats(self._url, name=self._name), stop)
        if nc is None:
            return
        pool = concurrent.futures.ThreadPoolExecutor(self._concurrency, thread_name_prefix="writer")
        inflight: set[asyncio.Task[None]] = set()
        try:
            js = nc.jetstream()
            await ensure_stream(js, self._stream, replicas=self._replicas, who=self._name)
            ack_wait = await ensure_consumer(js, self._stream, self._ack_wait_s)
            sub = await js.pull_subscribe_bind(durable=CONSUMER, stream=self._stream)
            if on_ready is not None:
                on_ready(self._stream, CONSUMER)
            while not stop.is_set():
                free = self._concurrency - len(inflight)
                if free == 0:
                    await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                msgs = await self._fetch(sub, free)
                for msg in msgs:
                    task = asyncio.create_task(self._handle(msg, pool, ack_wait))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
        finally:
            if inflight:  # what we hold is finished and acked, so nothing waits out ack_wait
                await asyncio.wait(inflight)
            pool.shutdown(wait=True)
            with contextlib.suppress(Exception):
                await nc.close()

    async def _fetch(self, sub: Any, n: int) -> list[Msg]:
        import nats.errors

        try:
            return await sub.fetch(n, timeout=1.0)
        except (asyncio.TimeoutError, nats.errors.TimeoutError):
            return []  # nothing waiting
        except nats.errors.Error as exc:  # disconnected: the client reconnects by itself
            log.warning("%s: fetching from %s failed: %s; retrying", self._name, self._stream, exc)
            await asyncio.sleep(1.0)
            return []

    async def _handle(self, msg: Msg, pool: concurrent.futures.Executor, ack_wait: float) -> None:
        content_type = (msg.headers or {}).get("Content-Type", MSGPACK)
        if msg.metadata.num_delivered > 1:
            self.stats.count(redelivered=1)
        work = asyncio.get_running_loop().run_in_executor(pool, self._store_one, msg.data, content_type)
        while True:
            done, _ = await asyncio.wait({work}, timeout=max(0.5, ack_wait / 3))
            if done:
                break
            with contextlib.suppress(Exception):  # best effort: a redelivery is only wasted work
                await msg.in_progress()
        outcome, detail = work.result()
        try:
            if outcome is Outcome.RETRY:
                self.stats.count(retries=1)
                delay = min(MAX_NAK_DELAY_S, 2.0 ** (msg.metadata.num_delivered - 1))
                log.error("%s: storing a batch failed (delivery %d), retrying in %.0f s: %s", self._name,
                          msg.metadata.num_delivered, delay, detail)
                await msg.nak(delay=delay)
            elif outcome is Outcome.REFUSED:
                await msg.term()
            else:
                await msg.ack()
        except Exception as exc:  # the ack was lost: the batch comes back and is answered as a duplicate
            log.warning("%s: could not answer JetStream for a batch (%s); it will be redelivered", self._name, exc)

    def _store_one(self, body: bytes, content_type: str) -> tuple[Outcome, str]:
        """Decode and store one message's batch (in a worker thread); never raises."""
        try:
            # A collector publishes its checked batch as Arrow; the body only when even LZ4 Arrow is too big.
            batch = decode_checked(body) if content_type == ARROW_STREAM else decode_batch(body, content_type)
        except InvalidBatch as exc:  # the collector validated it, so this is a bug or a foreign publisher
            self.stats.count(refused=1)
            log.error("%s: dropping an undecodable message from %s: %s", self._name, self._stream, exc)
            return Outcome.REFUSED, str(exc)
        try:
            result = self._store.write_batch(batch)
        except (NotPermitted, BatchConflict) as exc:
            return self._refuse(batch, exc)
        except StoreError as exc:
            return Outcome.RETRY, str(exc)
        except Exception as exc:  # unknown: keep the batch (it was acknowledged), retry with backoff
            log.exception("%s: unexpected error storing batch %s", self._name, batch.batch_id)
            return Outcome.RETRY, repr(exc)
        if result.duplicate:
            self.stats.count(duplicates=1)
            return Outcome.DUPLICATE, ""
        self.stats.count(stored_batches=1, stored_events=result.stored)
        return Outcome.STORED, ""

    def _refuse(self, batch: Batch, exc: StoreError) -> tuple[Outcome, str]:
        """A batch a collector acknowledged but the store refuses: consent withdrawn or erased meanwhile, or a
        batch id reused with other content. Dropped, logged and audited, since the device was told "stored"."""
        kind = "not_permitted" if isinstance(exc, NotPermitted) else "conflict"
        log.warning("%s: refusing acknowledged batch %s (%s): %s", self._name, batch.batch_id, kind, exc)
        try:
            self._store.audit(f"{WRITER_ACTOR}:{self._name}", "batch.refused", EventStore.device_ref(batch.device_id),
                              f"an acknowledged batch could not be stored ({kind})",
                              {"batch_id": batch.batch_id, "n_events": batch.events.num_rows, "kind": kind,
                               "field": getattr(exc, "field", None), "row": getattr(exc, "row", None)})
        except StoreError as audit_exc:  # not audited yet: keep the message, decide again later
            return Outcome.RETRY, f"auditing the refusal of batch {batch.batch_id} failed: {audit_exc}"
        self.stats.count(refused=1)
        return Outcome.REFUSED, str(exc)


async def _until_stopped(coro: Any, stop: asyncio.Event) -> Any:
    """Await ``coro`` unless ``stop`` is set first (then cancel it and return None)."""
    task = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    return None
