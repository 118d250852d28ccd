"""Fleet mode's collector side: check a batch, publish it to JetStream, answer 200 after JetStream's ack.

``deskcorder serve --nats URL`` runs the same HTTP API as the embedded
collector, with one difference on ``POST /v1/batches``: instead of writing the
batch, the collector publishes the request body to the JetStream stream that
``deskcorder writer`` processes consume (see ``deskcorder.store._ingest_worker``
for the whole design, the stream and consumer settings, and why killing a
collector or a writer loses nothing acknowledged).

What a fleet collector answers on ``POST /v1/batches``
    200  ``{"batch_id", "stored", "duplicate", "queued": true}`` once JetStream
         acknowledged the message: the batch is durable in the stream and a
         writer stores it shortly. ``stored`` is the number of events accepted
         (0 with ``duplicate: true`` for a repeat, whether found in the store or
         in JetStream's duplicate window).
    401/403  before anything else, as in embedded mode: the device's credential
         (checked against the shared control database, so every collector of
         the fleet knows every device), and the batch's ``device_id`` must be
         the authenticated device.
    403/409  synchronously, from the control database (``check_batch``): device
         not registered / no consent for an event's time / batch id taken by
         other content / another device's session. Nothing is published.
    413  the body is over the NATS server's ``max_payload`` (1 MiB by default;
         raise it in nats-server.conf, up to 8 MiB is reasonable) - the agent
         splits its batch and retries.
    503  (``Retry-After``) NATS is unreachable, the publish was not acknowledged
         in time, the stream is full, or the control database failed: nothing
         was acknowledged, the agent retries the same batch id.
400/415/422/429 as in embedded mode. ``GET /v1/health`` answers 503 while
NATS is unreachable, so a load balancer sends agents to another collector.

The collector is stateless: it keeps no batch after answering, so any number
of them run side by side behind a load balancer.

What is published: the batch as the collector decoded and checked it, as an
Arrow IPC stream (``wire.encode_checked``), so that a writer does not decode,
rebuild and re-hash it a second time. Uncompressed Arrow is ~1.7 times the
MessagePack size, so a batch whose Arrow form would be over ``max_payload``
(above ~8,000 events of desk work) goes LZ4-compressed, and in the unlikely
case that this does not fit either, as the request body itself. The writer
reads all three (the ``Content-Type`` header says Arrow or the body's type);
writers older than this cannot read Arrow, so upgrade writers before collectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import TYPE_CHECKING, Any, AsyncIterator

from starlette.concurrency import run_in_threadpool

from ..store import BatchConflict, ClockAhead, EventStore, NotPermitted, StoreError
from ..store._ingest_worker import (STREAM, check_batch, check_replicas, check_stream_name, connect_nats,
                                    ensure_stream, message_id, subject_for)
from ..wire import ARROW_STREAM, InvalidBatch, UnreadableBatch, decode_batch, encode_checked
from ._device_auth import check_sender
from ._problems import Problem, unavailable

if TYPE_CHECKING:
    from fastapi import FastAPI
    from nats.aio.client import Client
    from nats.js import JetStreamContext

    from ..wire import Batch

__all__ = ["JetStreamPublisher", "PUBLISH_TIMEOUT_S"]

log = logging.getLogger("deskcorder.collect")

PUBLISH_TIMEOUT_S = 5.0  # JetStream acks in ms; longer means it is in trouble: answer 503, the agent retries
STARTUP_WAIT_S = 3.0  # how long start-up waits for NATS before serving (with 503s) anyway
_HEADER_ROOM = 1024  # max_payload counts the headers too
_RETRY_AFTER_S = "1"


class JetStreamPublisher:
    """The fleet collector's batch path; ``lifespan`` connects (and keeps reconnecting) to NATS."""

    def __init__(self, store: EventStore, nats_url: str, *, stream: str | None = None,
                 publish_timeout_s: float = PUBLISH_TIMEOUT_S, replicas: int = 1):
        self._store = store
        self._url = nats_url
        self._stream = check_stream_name(stream or STREAM)
        self._replicas = check_replicas(replicas)
        self._timeout = publish_timeout_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._name = f"collector@{socket.gethostname()}:{os.getpid()}"

    @property
    def ready(self) -> bool:
        return self._js is not None and self._nc is not None and self._nc.is_connected

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        """Connect in the background: a collector starts (and answers 503) while NATS is down."""
        connecting = asyncio.create_task(self._connect())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(connecting), STARTUP_WAIT_S)
        if not connecting.done():
            log.warning("%s: NATS at %s is not reachable yet; answering 503 until it is", self._name, self._url)
        try:
            yield
        finally:
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            if self._nc is not None:
                with contextlib.suppress(Exception):
                    await self._nc.close()

    async def _connect(self) -> None:
        nc = await connect_nats(self._url, name=self._name)
        self._nc = nc
        while True:
            try:
                await ensure_stream(nc.jetstream(), self._stream, replicas=self._replicas, who=self._name)
                break
            except Exception as exc:  # JetStream not enabled, or a stream of the wrong kind: keep telling
                log.error("%s: cannot set up the JetStream stream %r: %s", self._name, self._stream, exc)
                await asyncio.sleep(5)
        self._js = nc.jetstream(timeout=self._timeout)
        log.info("%s: publishing batches to JetStream stream %r at %s", self._name, self._stream, self._url)

    def check_ready(self) -> None:
        """For ``/v1/health``: 503 while NATS is unreachable."""
        if not self.ready:
            raise self._unavailable("is not connected to")

    async def ingest(self, body: bytes, content_type: str, device_id: str) -> dict[str, Any]:
        """Publish the batch of the authenticated ``device_id`` (403 if the batch names another device)."""
        if not self.ready:
            raise self._unavailable("is not connected to")
        assert self._nc is not None and self._js is not None
        limit = self._nc.max_payload - _HEADER_ROOM
        if len(body) > limit:
            raise Problem(413, f"body is {len(body)} bytes; this fleet collector's buffer (NATS max_payload) takes "
                               f"at most {limit} bytes per batch (send fewer events per batch)", field="body")
        batch, known, checked = await run_in_threadpool(self._check, body, content_type, device_id, limit)
        if known is not None:  # already stored: answered like the embedded collector does
            return {"batch_id": batch.batch_id, "stored": 0, "duplicate": True, "queued": False}
        if checked is not None:
            payload, media = checked, ARROW_STREAM
        else:  # even compressed Arrow is over the limit: the writer decodes the body instead
            payload, media = body, content_type.split(";")[0].strip().lower()
        headers = {"Nats-Msg-Id": message_id(batch), "Content-Type": media}
        try:
            ack = await self._js.publish(subject_for(self._stream, batch.device_id), payload, stream=self._stream,
                                         headers=headers)
        except Exception as exc:  # nats errors, timeouts, a full stream: none acknowledged anything
            log.error("%s: publishing batch %s to %r failed: %s", self._name, batch.batch_id, self._stream,
                      exc or type(exc).__name__)
            raise self._unavailable(f"could not publish the batch ({type(exc).__name__}: {exc}) to") from exc
        return {"batch_id": batch.batch_id, "stored": 0 if ack.duplicate else batch.events.num_rows,
                "duplicate": bool(ack.duplicate), "queued": True}

    def _check(self, body: bytes, content_type: str, device_id: str,
               limit: int) -> tuple[Batch, Any, bytes | None]:
        """Decode and check in a worker thread: the same answers as the embedded collector's ``_ingest``.

        Returns the batch, its stored duplicate (or None), and its Arrow form to
        publish (None when it is stored already or would be over ``limit`` bytes).
        """
        try:
            batch = decode_batch(body, content_type)
        except InvalidBatch as exc:
            raise Problem(400 if isinstance(exc, UnreadableBatch) else 422, str(exc), field=exc.field,
                          row=exc.row) from exc
        check_sender(batch.device_id, device_id)
        try:
            known = check_batch(self._store, batch)
        except ClockAhead as exc:  # stamped ahead of this collector's clock (store/_events/_clock.py)
            raise Problem(422, str(exc), field=exc.field, row=exc.row) from exc
        except NotPermitted as exc:
            raise Problem(403, str(exc), field=exc.field, row=exc.row) from exc
        except BatchConflict as exc:
            raise Problem(409, str(exc), field=exc.field) from exc
        except StoreError as exc:
            raise unavailable(f"checking batch {batch.batch_id}", exc) from exc  # the detail only in the log
        if known is not None:
            return batch, known, None
        return batch, None, _fitting(batch, limit)

    def _unavailable(self, what: str) -> Problem:
        # No URL in the answer (it may carry credentials); the log names it.
        return Problem(503, f"this collector {what} its NATS JetStream buffer; nothing was "
                            f"acknowledged: retry after {_RETRY_AFTER_S} s with the same batch_id",
                       headers={"Retry-After": _RETRY_AFTER_S})


def _fitting(batch: Batch, limit: int) -> bytes | None:
    """The batch's Arrow form within ``limit`` bytes: plain, else compressed, else None."""
    for compress in (False, True):
        encoded = encode_checked(batch, compress=compress)
        if len(encoded) <= limit:
            return encoded
    return None
