"""How an encoded batch reaches the collector: one request, one answer, no retries.

Retry, backoff and rate limits live in the uploader above this layer, so a
test can swap the network for a plain function (``HandlerTransport``) and
drive every branch of that logic.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Protocol

import httpx

from .._errors import DeskcorderError

__all__ = ["Response", "Transport", "TransportError", "HttpTransport", "HandlerTransport"]


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes = b""


class TransportError(DeskcorderError):
    """No HTTP answer at all (refused, reset, timed out): the batch may or may not have arrived."""


class Transport(Protocol):
    def send(self, body: bytes, content_type: str, timeout: float) -> Response: ...

    def close(self) -> None: ...


class HttpTransport:
    """POST batches to ``<server_url>/v1/batches`` over one keep-alive connection.

    ``auth`` gives the headers that authenticate the device (``Credential.headers``), asked per request
    because the credential may arrive after the transport was made (first start, enrolment).
    """

    PATH = "/v1/batches"

    def __init__(self, server_url: str, auth: Callable[[], Mapping[str, str]] | None = None):
        if not server_url.startswith(("http://", "https://")):
            raise ValueError(f"server URL must start with http:// or https://, got {server_url!r}")
        self.url = server_url.rstrip("/") + self.PATH
        self._client = httpx.Client(headers={"User-Agent": "deskcorder-agent"})
        self._auth = auth

    def send(self, body: bytes, content_type: str, timeout: float) -> Response:
        try:
            headers = {"Content-Type": content_type, **(self._auth() if self._auth else {})}
            r = self._client.post(self.url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    def close(self) -> None:
        self._client.close()


class HandlerTransport:
    """Answer every request with ``handler(body, content_type)``; raise TransportError to act as the network."""

    def __init__(self, handler: Callable[[bytes, str], Response]):
        self._handler = handler

    def send(self, body: bytes, content_type: str, timeout: float) -> Response:
        return self._handler(body, content_type)

    def close(self) -> None:
        pass
