"""The collector's OpenAPI document is the truth: schemathesis probes the running collector over HTTP.

Every operation of ``/openapi.json`` gets generated requests, valid ones (positive) and invalid
ones (negative), with real credentials: an enrolled device's Bearer secret, an admin's and the
employee's own portal login. A 5xx, a status the document does not list for the operation, or
an answer whose content type, headers or body breaks the document fails the test. Examples
are bounded so that the whole file stays well under a minute and a half.
Also: ``/docs`` is served from the package (no CDN) under its own CSP, while portal pages keep
theirs, which allows no script.
"""

from __future__ import annotations

import base64
import json
import re
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import httpx
import msgpack
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.checks import ignored_auth, negative_data_rejection, not_a_server_error, positive_data_acceptance
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from deskcorder.collect._portal._pages import SECURITY_HEADERS
from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore
from deskcorder.wire import JSON, MSGPACK, encode_batch

from .helpers import TEST_ACTOR, admin_headers, auth_headers, enrol_in, start_collector

DEVICE = "device-openapi-1"
PASSWORD = "alice-probes-the-api"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]
DEVICE_PATHS = ("/v1/batches", "/v1/devices/{device_id}/status")
# Also sent without and with a wrong credential, where that locks nobody out: a wrong portal password
# counts towards the login's lock-out (429 after 5), which would then refuse the right one too.
AUTH_PROBED = {path: [ignored_auth] for path in DEVICE_PATHS}
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 10}
# The admin API has many operations of one kind (an admin's CRUD): fewer examples each keep the file fast.
ADMIN_EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 4}
LOGIN_EXAMPLES = {GenerationMode.POSITIVE: 1, GenerationMode.NEGATIVE: 1}  # each a slow password check


@schemathesis.serializer("application/msgpack")
def _msgpack(_ctx: Any, value: Any) -> bytes:
    return msgpack.packb(_representable(value), use_bin_type=True)


def _representable(value: Any) -> Any:
    """``value`` with each integer MessagePack cannot carry (beyond 64 bits: negative examples) as a float:
    still a wrong number for the collector to refuse, as an agent could send it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -2**63 <= value < 2**64:
        return float(value)
    if isinstance(value, dict):
        return {_representable(k): _representable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_representable(v) for v in value]
    return value


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("openapi") / "data"
    enrol_in(data_dir, "alice", DEVICE)
    with EventStore(data_dir) as store:
        store.portal.set_password("alice", PASSWORD, role="employee", actor=TEST_ACTOR)
    with start_collector(data_dir) as url:
        yield url, data_dir


_ADMIN_TOKENS: dict[str, dict[str, str]] = {}


def _credentials(url: str, data_dir: Path, path: str) -> dict[str, str]:
    """The real credential each operation wants (the document's ``security``), as its users send it."""
    if path in DEVICE_PATHS:
        return auth_headers(url, DEVICE)
    if path in ("/v1/sessions", "/v1/devices", "/v1/admin/login"):
        return admin_headers(data_dir)
    if path.startswith("/v1/admin/"):  # the admin API's login token, as the Python client sends it
        key = f"{url} {path == '/v1/admin/logout'}"  # logging out ends a token of its own, not the others'
        if key not in _ADMIN_TOKENS:
            token = httpx.post(f"{url}/v1/admin/login", headers=admin_headers(data_dir), timeout=15).json()["token"]
            _ADMIN_TOKENS[key] = {"Authorization": f"Bearer {token}"}
        return _ADMIN_TOKENS[key]
    if path == "/v1/employees/{handle}/consent":  # the person's own portal login
        return {"Authorization": "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()}
    return {}


def test_every_operation_answers_as_its_openapi_document_says(collector: tuple[str, Path]) -> None:
    url, data_dir = collector
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/batches", "GET /v1/sessions", "GET /v1/devices", "POST /v1/devices/enrol",
        "GET /v1/devices/{device_id}/status", "POST /v1/employees/{handle}/consent", "GET /v1/policy",
        "GET /v1/health"}
    failures: list[str] = []
    answered: dict[str, Counter[int]] = {}  # statuses seen, per operation and mode: what was exercised
    started = time.monotonic()
    for operation in operations:
        name = f"{operation.method.upper()} {operation.path}"
        headers = _credentials(url, data_dir, operation.path)
        # The credential's own path: another device's status or person's consent is a plain 403.
        # The admin API's are left to the generator: it must not revoke the probing device.
        fixed = {} if operation.path.startswith("/v1/admin/") else {"device_id": DEVICE, "handle": "alice"}
        path_parameters = {k: v for k, v in fixed.items() if f"{{{k}}}" in operation.path} or None
        budget = (LOGIN_EXAMPLES if operation.path == "/v1/admin/login" else
                  ADMIN_EXAMPLES if operation.path.startswith("/v1/admin/") else EXAMPLES)
        for mode, examples in budget.items():
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            seen = answered.setdefault(f"{name} ({mode.value})", Counter())

            # No shrinking: the first failing example is reported as found, which keeps a failing run short.
            @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])
            @given(case=strategy)
            def probe(case: schemathesis.Case) -> None:
                response = case.call(base_url=url, headers=headers, timeout=15)
                seen[response.status_code] += 1
                case.validate_response(response, checks=CHECKS + AUTH_PROBED.get(operation.path, []))

            try:
                probe()
            except Unsatisfiable:
                pass  # nothing invalid to send: no parameters, no body (GET /v1/health)
            except (FailureGroup, Exception) as exc:  # what the checks found (a BaseExceptionGroup), or raised
                failures.append(f"{name} ({mode.value}):\n" + "".join(traceback.format_exception(exc))[-4000:])
    print(f"\nschemathesis: {sum(sum(c.values()) for c in answered.values())} requests in "
          f"{time.monotonic() - started:.1f} s; statuses per operation: "
          + "; ".join(f"{k} {dict(v)}" for k, v in answered.items()))
    assert not failures, "\n\n".join(failures)
    assert answered["POST /v1/batches (positive)"].total() >= EXAMPLES[GenerationMode.POSITIVE]  # really probed


def test_a_real_batch_is_stored_in_both_encodings_and_answered_as_documented(collector: tuple[str, Path]) -> None:
    url, _ = collector
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    batches = schema["/v1/batches"]["POST"]
    version = httpx.get(f"{url}/v1/policy", timeout=15).json()["version"]
    given = httpx.post(f"{url}/v1/employees/alice/consent", json={"action": "give", "policy_version": version},
                       headers=_credentials(url, Path(), "/v1/employees/{handle}/consent"), timeout=15)
    assert given.status_code == 200, given.text  # again: the probes above may have withdrawn it
    now = time.time_ns()
    for i, media_type in enumerate((MSGPACK, JSON)):
        events = [Event(f"openapi-session-{i}", 0, 1, now, EventKind.FOCUS, app_class="Notes", app_process="notes",
                        window_title="notes.txt"),
                  Event(f"openapi-session-{i}", 1, 2, now + 1000, EventKind.KEY_DOWN, key="a", char="a")]
        # The agent's own encoder: the document must describe what agents really send.
        body = decode_for_case(encode_batch(f"openapi-batch-{i}", DEVICE, events_to_columns(events), media_type),
                               media_type)
        case = batches.Case(body=body, media_type=media_type)
        response = case.call(base_url=url, headers=auth_headers(url, DEVICE), timeout=15)
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == 2
        case.validate_response(response, checks=[*CHECKS, positive_data_acceptance])


def decode_for_case(body: bytes, media_type: str) -> Any:
    """The body as the value schemathesis serialises again (``_msgpack`` above, or JSON)."""
    return msgpack.unpackb(body) if media_type == MSGPACK else json.loads(body)


def test_the_batch_body_is_documented_in_both_encodings_with_the_event_schema(collector: tuple[str, Path]) -> None:
    url, _ = collector
    spec = httpx.get(f"{url}/openapi.json", timeout=15).json()
    post = spec["paths"]["/v1/batches"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "application/msgpack"}
    assert spec["components"]["schemas"]["Batch"]["properties"]["events"]["required"][:2] == ["session_id", "seq"]
    assert {"400", "401", "403", "409", "413", "415", "422", "429", "503"} <= set(post["responses"])
    assert post["security"] == [{"deviceBearer": []}]
    assert spec["components"]["securitySchemes"]["adminBasic"]["scheme"] == "basic"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):  # every error is the one error body
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ProblemBody"}, (method, path, status)


def test_docs_are_served_from_the_package_under_their_own_csp(collector: tuple[str, Path]) -> None:
    url, _ = collector
    page = httpx.get(f"{url}/docs", timeout=15)
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/") for s in sources), sources  # nothing from elsewhere
    for source in sources:
        asset = httpx.get(url + source, timeout=15)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    assert "SwaggerUIBundle" in httpx.get(f"{url}/docs/swagger-ui-bundle.js", timeout=15).text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp and "http" not in csp
    assert "<script>" not in page.text  # no inline script: the CSP would block it
    login = httpx.get(f"{url}/login", timeout=15)
    assert login.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src" not in login.headers["content-security-policy"]  # default-src 'none': no script at all
