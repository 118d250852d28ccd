"""A real S3 API for the object-storage tests: moto's server, a separate process speaking S3 over HTTP.

The store talks to it through pyarrow's S3 client (the AWS SDK), exactly as it
would talk to AWS S3 or MinIO: signed requests, PUT/GET/LIST/DELETE over
HTTP. Each test gets its own bucket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Iterator

import httpx
import pytest

# moto accepts any credentials; these only have to be present for the AWS SDK to sign requests.
S3_ENV = {"AWS_ACCESS_KEY_ID": "deskcorder-test", "AWS_SECRET_ACCESS_KEY": "deskcorder-test-secret",
          "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """host:port of a running S3 server (moto), for the whole test session."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the S3 test server (moto) did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.2)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_bucket_url(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<new bucket>/deskcorder?endpoint_override=...&scheme=http``, with credentials in the environment
    (this process's and, through os.environ, every subprocess a test starts)."""
    import pyarrow.fs as pafs

    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    bucket = f"dc-test-{uuid.uuid4().hex[:12]}"
    fs = pafs.S3FileSystem(endpoint_override=s3_endpoint, scheme="http", allow_bucket_creation=True,
                           access_key=S3_ENV["AWS_ACCESS_KEY_ID"], secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
                           region=S3_ENV["AWS_REGION"])
    fs.create_dir(bucket)
    return f"s3://{bucket}/deskcorder?endpoint_override={s3_endpoint}&scheme=http"


def bucket_objects(url: str) -> dict[str, bytes]:
    """Every object under the url's prefix, by key relative to it, read back over the S3 API."""
    import pyarrow.fs as pafs

    fs, base = pafs.FileSystem.from_uri(url)
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    out = {}
    for info in infos:
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as src:
                out[info.path[len(base) + 1:]] = src.readall()
    return out


def s3_env() -> dict[str, str]:
    return {**os.environ, **S3_ENV}
