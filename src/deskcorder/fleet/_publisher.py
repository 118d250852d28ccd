"""Fleet mode's collector side: publish a checked batch to JetStream; the collector answers 200 after its ack.

``deskcorder serve --nats URL`` runs the same HTTP API as the embedded
collector, with one difference on ``POST /v1/batches`` (``collect/_ingest.py``): instead of
writing the batch, the collector publishes the request body to the JetStream stream that
``deskcorder writer`` processes consume (see ``_writer.py``
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
    403/409  synchronously, from the control database (``EventStore.check_batch``): device
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

from .._errors import DeskcorderError
from ..wire import ARROW_STREAM, encode_checked
from ._stream import STREAM, check_replicas, check_stream_name, connect_nats, ensure_stream, message_id, subject_for

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

    from ..wire import Batch

__all__ = ["JetStreamPublisher", "BufferUnavailable", "PUBLISH_TIMEOUT_S", "RETRY_AFTER_S"]

log = logging.getLogger("deskcorder.collect")

PUBLISH_TIMEOUT_S = 5.0  # JetStream acks in ms; longer means it is in trouble: answer 503, the agent retries
STARTUP_WAIT_S = 3.0  # how long start-up waits for NATS before serving (with 503s) anyway
RETRY_AFTER_S = 1  # what the collector's 503 tells the agent to wait
_HEADER_ROOM = 1024  # max_payload counts the headers too


class BufferUnavailable(DeskcorderError):
    """The JetStream buffer cannot take a batch now (NATS unreachable, no PubAck in time, the stream full).

    Nothing was acknowledged: the collector answers 503 with ``Retry-After`` and the agent retries.
    """

    def __init__(self, what: str):
        # No URL in the message (it may carry credentials); the log names it.
        super().__init__(f"this collector {what} its NATS JetStream buffer; nothing was acknowledged: retry "
                         f"after {RETRY_AFTER_S} s with the same batch_id")


class JetStreamPublisher:
    """The fleet collector's way to JetStream; ``lifespan`` connects (and keeps reconnecting) to NATS."""

    def __init__(self, nats_url: str, *, stream: str | None = None, publish_timeout_s: float = PUBLISH_TIMEOUT_S,
                 replicas: int = 1):
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
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
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
        """BufferUnavailable while NATS is unreachable (``/v1/health`` answers 503 then)."""
        if not self.ready:
            raise BufferUnavailable("is not connected to")

    @property
    def max_message_bytes(self) -> int:
        """The largest message the buffer takes (NATS ``max_payload``, less room for the headers)."""
        self.check_ready()
        assert self._nc is not None
        return self._nc.max_payload - _HEADER_ROOM

    def message(self, batch: Batch, body: bytes, content_type: str, limit: int) -> tuple[bytes, str]:
        """What to publish for a checked batch, and its media type: its Arrow form within ``limit`` bytes,
        plain, else compressed, else the request body itself (CPU work: call it off the event loop)."""
        for compress in (False, True):
            encoded = encode_checked(batch, compress=compress)
            if len(encoded) <= limit:
                return encoded, ARROW_STREAM
        return body, content_type.split(";")[0].strip().lower()

    async def publish(self, batch: Batch, payload: bytes, media: str) -> bool:
        """Publish and wait for JetStream's PubAck; returns whether JetStream had it already (a duplicate)."""
        self.check_ready()
        assert self._js is not None
        headers = {"Nats-Msg-Id": message_id(batch), "Content-Type": media}
        try:
            ack = await self._js.publish(subject_for(self._stream, batch.device_id), payload, stream=self._stream,
                                         headers=headers)
        except Exception as exc:  # nats errors, timeouts, a full stream: none acknowledged anything
            log.error("%s: publishing batch %s to %r failed: %s", self._name, batch.batch_id, self._stream,
                      exc or type(exc).__name__)
            raise BufferUnavailable(f"could not publish the batch ({type(exc).__name__}: {exc}) to") from exc
        return bool(ack.duplicate)
