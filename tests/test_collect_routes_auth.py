"""Every route of the collector refuses a caller without a credential, except a short, justified public list.

One real `deskcorder serve` holds a consenting employee with a stored session; the
routes are the app's own (``app.routes``, every method), so a route added later is
walked too and must either check a credential or be added to PUBLIC with its reason.
Also here: the admin listings over HTTP Basic, and the enrolment endpoint's limit on
attempts per client address.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from deskcorder.collect import create_app
from deskcorder.collect._device_auth import ENROL_BURST
from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore

from .helpers import TEST_ACTOR, admin_headers, auth_headers, enrol_in, next_utc_midnight_ns, start_collector

HTML = {"Accept": "text/html"}
DEVICE = "device-walk-1"
SESSION = "sess-walk-1"

# Answered without any credential, on purpose:
PUBLIC = {
    ("GET", "/v1/health"),  # liveness for load balancers and agents: a status and the version
    ("GET", "/login"), ("POST", "/login"),  # the way in
    ("GET", "/portal/static/{name}"),  # the portal's stylesheet
    ("GET", "/v1/policy"),  # the rules a person reads before consenting (and names in the consent call)
    # The API's description and its docs page: the shape of an open-source API, no data (_openapi.py).
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/{name}"),
}
# A credential in the body, not a header: enrolment's is the one-time token, so send a wrong one.
BODIES: dict[str, dict[str, Any]] = {"/v1/devices/enrol": {"token": "dcet_not-a-token", "device_id": "device-walk-2",
                                                            "hostname": "walker"}}
PATH_VALUES = {"device_id": DEVICE, "handle": "alice", "session_id": SESSION, "entry_id": "1", "name": "portal.css",
               "action_seq": "1"}


def every_route(tmp_path: Path) -> list[tuple[str, str]]:
    """(method, path template) of every route of the collector's app, HEAD left out (it is GET's)."""
    with EventStore(tmp_path / "routes") as store:
        app = create_app(store)
        found = {(method, context.path) for context in iter_route_contexts(app.routes)
                 for method in (getattr(context.original_route, "methods", None) or ()) if method != "HEAD"}
    return sorted(found)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("walk") / "data"
    employee_id = enrol_in(data_dir, "alice", DEVICE)
    with EventStore(data_dir) as store:
        store.portal.set_password("alice", "alice-walks-the-routes", role="employee", actor=TEST_ACTOR)
    with start_collector(data_dir) as url:
        t0 = next_utc_midnight_ns()
        events = [Event(SESSION, i, i * 1000, t0 + i * 1000, EventKind.KEY_DOWN, key="w", char="w") for i in range(5)]
        r = httpx.post(f"{url}/v1/batches", json={"v": 1, "batch_id": "batch-walk-0001", "device_id": DEVICE,
                                                  "events": events_to_columns(events)},
                       headers=auth_headers(url, DEVICE), timeout=10)
        assert r.status_code == 200, r.text
        yield url, data_dir, employee_id


def _refused(r: httpx.Response) -> bool:
    return r.status_code in (401, 403) or (r.status_code == 303 and r.headers["location"].startswith("/login"))


def test_every_route_without_a_credential_is_refused_except_the_public_ones(collector: Any, tmp_path: Path) -> None:
    url, _, employee_id = collector
    routes = every_route(tmp_path)
    assert {("POST", "/v1/batches"), ("GET", "/v1/sessions"), ("GET", "/v1/devices"), ("GET", "/me"),
            ("GET", "/admin"), ("POST", "/v1/employees/{handle}/consent")} <= set(routes), routes
    assert PUBLIC <= set(routes), f"stale PUBLIC entries: {PUBLIC - set(routes)}"
    answered = []
    for method, template in routes:
        if (method, template) in PUBLIC:
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], template)
        for headers in ({}, HTML):  # an API client and a browser
            r = httpx.request(method, url + path, json=BODIES.get(template, {}), headers=headers, timeout=15)
            if not _refused(r):
                answered.append(f"{method} {template} ({'browser' if headers else 'api'}): {r.status_code} "
                                f"{r.text[:120]!r}")
            # A refusal says what to send, never what is stored:
            assert employee_id not in r.text and SESSION not in r.text, (method, template, r.text[:300])
    assert not answered, "answered without a credential:\n" + "\n".join(answered)


def test_the_public_routes_answer_without_one(collector: Any) -> None:
    url, _, _ = collector
    for path in ("/v1/health", "/login", "/portal/static/portal.css", "/v1/policy", "/openapi.json", "/docs"):
        assert httpx.get(url + path, timeout=15).status_code == 200, path


def test_sessions_and_devices_are_listed_to_an_admin_login_only(collector: Any) -> None:
    url, data_dir, employee_id = collector
    for path in ("/v1/sessions", "/v1/devices"):
        nobody = httpx.get(url + path, timeout=15)
        assert nobody.status_code == 401 and nobody.headers["www-authenticate"].startswith("Basic"), nobody.text
        assert "portal add-admin" in nobody.json()["error"]
        wrong = httpx.get(url + path, auth=("tests-admin", "not-the-password"), timeout=15)
        assert wrong.status_code == 401, wrong.text
        employee = httpx.get(url + path, auth=("alice", "alice-walks-the-routes"), timeout=15)
        assert employee.status_code == 403 and employee_id not in employee.text, employee.text
        device = httpx.get(url + path, headers=auth_headers(url, DEVICE), timeout=15)
        assert device.status_code == 401, device.text  # a device's Bearer secret is no admin login
    sessions = httpx.get(url + "/v1/sessions", headers=admin_headers(data_dir), timeout=15)
    assert sessions.status_code == 200 and [s["session_id"] for s in sessions.json()] == [SESSION]
    devices = httpx.get(url + "/v1/devices", headers=admin_headers(data_dir), timeout=15).json()
    assert [(d["device_id"], d["employee_id"], d["n_events"]) for d in devices] == [(DEVICE, employee_id, 5)]


def test_enrolment_attempts_from_one_address_are_limited_with_retry_after(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "alice")
    with start_collector(data_dir) as url, httpx.Client(base_url=url, timeout=15) as client:
        statuses = []
        for i in range(ENROL_BURST + 5):
            r = client.post("/v1/devices/enrol", json={"token": f"dcet_guess-{i}", "hostname": "guesser",
                                                       "device_id": f"device-guess-{i:03d}"})
            statuses.append(r.status_code)
        assert statuses[:ENROL_BURST] == [401] * ENROL_BURST, statuses
        assert set(statuses[ENROL_BURST:]) == {429}, statuses
        assert int(r.headers["Retry-After"]) >= 1 and "enrolment attempts" in r.json()["error"], r.text
        # Health and a device's own routes are not affected.
        assert client.get("/v1/health").status_code == 200
