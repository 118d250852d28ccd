"""``POST /v1/batches`` after authentication: read the body, decode and check it, store or publish it.

``BatchIntake`` is the part of the batch route that does not depend on who
is sending (``_device_auth.py`` settles that first): the Content-Type, the
body's size (from Content-Length before reading, counted while reading), how
many batches are in flight at once, and decoding and storing in a worker
thread so that the event loop keeps answering ``/v1/health`` and the other
routes while a large or hostile body is taken apart.

The status codes it answers are listed in ``_app.py``'s docstring.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Iterator

from starlette.concurrency import run_in_threadpool

from ..store import BatchConflict, ClockAhead, EventStore, NotPermitted, StoreError
from ..wire import JSON, MSGPACK, Batch, InvalidBatch, UnreadableBatch, decode_batch
from ._device_auth import check_sender
from ._problems import Problem, unavailable

if TYPE_CHECKING:
    from fastapi import Request

    from ..fleet import JetStreamPublisher

__all__ = ["BatchIntake", "MAX_BODY_BYTES", "MAX_INFLIGHT", "buffer_answers", "decode_or_problem"]

log = logging.getLogger("deskcorder.collect")

MAX_BODY_BYTES = 32 * 1024 * 1024  # a full 100k-event batch of typical events is a few MiB
MAX_INFLIGHT = 8  # batches read, decoded and written at once (bounds memory); more get 429
_RETRY_AFTER_S = "1"
_ACCEPTED = (MSGPACK, "application/x-msgpack", JSON)


class BatchIntake:
    """One collector's batch path: limits, then decode, check and store (or publish, in a fleet)."""

    def __init__(self, store: EventStore, *, max_body_bytes: int = MAX_BODY_BYTES,
                 max_inflight: int = MAX_INFLIGHT, publisher: JetStreamPublisher | None = None):
        self._store = store
        self._max_body_bytes = max_body_bytes
        self._max_inflight = max_inflight
        self._publisher = publisher
        self._inflight = 0  # only touched on the event loop thread, so no lock

    async def receive(self, request: Request, device_id: str) -> dict[str, Any]:
        """The answer to an authenticated device's ``POST /v1/batches``; raises ``Problem`` otherwise."""
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() not in _ACCEPTED:
            raise Problem(415, f"unsupported Content-Type {content_type!r}; send {MSGPACK} or {JSON}",
                          field="Content-Type")
        _check_declared_length(request, self._max_body_bytes)
        if self._inflight >= self._max_inflight:
            raise Problem(429, f"collector busy: {self._inflight} batches are being stored; retry after "
                               f"{_RETRY_AFTER_S} s with the same batch_id", headers={"Retry-After": _RETRY_AFTER_S})
        self._inflight += 1
        try:
            body = await _read_body(request, self._max_body_bytes)
            if self._publisher is not None:
                return await self._publish(self._publisher, body, content_type, device_id)
            # Decoding is CPU work and storing waits on fsync: both off the event loop.
            return await run_in_threadpool(self._ingest, body, content_type, device_id)
        finally:
            self._inflight -= 1

    def _ingest(self, body: bytes, content_type: str, device_id: str) -> dict[str, Any]:
        batch = decode_or_problem(body, content_type)
        check_sender(batch.device_id, device_id)
        with _store_answers(f"storing batch {batch.batch_id}"):
            result = self._store.write_batch(batch)
        return {"batch_id": result.batch_id, "stored": result.stored, "duplicate": result.duplicate}

    async def _publish(self, publisher: JetStreamPublisher, body: bytes, content_type: str,
                       device_id: str) -> dict[str, Any]:
        """Fleet mode (``deskcorder.fleet``): checked here as ``write_batch`` would, then published to JetStream;
        200 only after its PubAck. A batch already stored is answered as a duplicate and not published."""
        with buffer_answers():
            limit = publisher.max_message_bytes
        if len(body) > limit:
            raise Problem(413, f"body is {len(body)} bytes; this fleet collector's buffer (NATS max_payload) takes "
                               f"at most {limit} bytes per batch (send fewer events per batch)", field="body")
        batch, message = await run_in_threadpool(self._check, publisher, body, content_type, device_id, limit)
        if message is None:  # already stored: answered like the embedded collector does
            return {"batch_id": batch.batch_id, "stored": 0, "duplicate": True, "queued": False}
        with buffer_answers():
            duplicate = await publisher.publish(batch, *message)
        return {"batch_id": batch.batch_id, "stored": 0 if duplicate else batch.events.num_rows,
                "duplicate": duplicate, "queued": True}

    def _check(self, publisher: JetStreamPublisher, body: bytes, content_type: str, device_id: str,
               limit: int) -> tuple[Batch, tuple[bytes, str] | None]:
        """Decode and check in a worker thread; the message to publish, or None for a batch stored already."""
        batch = decode_or_problem(body, content_type)
        check_sender(batch.device_id, device_id)
        with _store_answers(f"checking batch {batch.batch_id}"):
            if self._store.check_batch(batch) is not None:
                return batch, None
        return batch, publisher.message(batch, body, content_type, limit)


@contextlib.contextmanager
def _store_answers(doing: str) -> Iterator[None]:
    """The store's refusals as HTTP answers, the same for the embedded and the fleet collector."""
    try:
        yield
    except ClockAhead as exc:  # stamped ahead of this collector's clock (store/_events/_clock.py)
        raise Problem(422, str(exc), field=exc.field, row=exc.row) from exc
    except NotPermitted as exc:
        raise Problem(403, str(exc), field=exc.field, row=exc.row) from exc
    except BatchConflict as exc:
        raise Problem(409, str(exc), field=exc.field) from exc
    except StoreError as exc:
        raise unavailable(doing, exc) from exc  # the detail only in the log


@contextlib.contextmanager
def buffer_answers() -> Iterator[None]:
    """Fleet mode: the JetStream buffer unavailable (``deskcorder.fleet.BufferUnavailable``) is a 503 that says
    so, without NATS's address (it may carry credentials), with Retry-After."""
    from ..fleet import RETRY_AFTER_S, BufferUnavailable

    try:
        yield
    except BufferUnavailable as exc:
        raise Problem(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}) from exc


def decode_or_problem(body: bytes, content_type: str) -> Batch:
    """``decode_batch``, its errors as the HTTP answer: 400 undecodable, 422 not a valid batch."""
    try:
        return decode_batch(body, content_type)
    except InvalidBatch as exc:
        status = 400 if isinstance(exc, UnreadableBatch) else 422
        raise Problem(status, str(exc), field=exc.field, row=exc.row) from exc


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return  # chunked: _read_body counts instead
    if not declared.isdigit():
        raise Problem(400, f"Content-Length {declared!r} is not a byte count", field="Content-Length")
    if int(declared) > limit:
        raise Problem(413, f"body is {int(declared)} bytes; the limit is {limit} bytes "
                           f"(send fewer events per batch)", field="body",
                      headers={"Connection": "close"})


async def _read_body(request: Request, limit: int) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"body is over the limit of {limit} bytes (send fewer events per batch)",
                          field="body", headers={"Connection": "close"})
        chunks.append(chunk)
    return b"".join(chunks)
