"""The admin API (``/v1/admin/...``) through its Python client (``deskcorder.client.AdminClient``), against one
real `deskcorder serve`: every operation, and each one's refusals (401 without or with a wrong login, 403 for an
employee's login or a device's secret, 404 for an unknown employee, device or build, 409, 422 naming the field).
What an operation changed is checked where it shows: an issued token enrols a device over HTTP, a revoked
device is refused its upload, a withdrawal stops the device's recording status, a build's folder holds the
dataset its status describes.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from deskcorder.client import (AdminClient, ApiError, AuthenticationError, ConflictError, InvalidRequest,
                               NotFoundError, PermissionDenied, TransportError)
from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore

from .helpers import ALLOW_ALL_POLICY, TEST_ACTOR, auth_headers, enrol_in, next_utc_midnight_ns, start_collector

ADMIN = ("root", "root-runs-the-admin-api")
EMPLOYEE = ("alice", "alice-is-no-admin")
DEVICE = "device-admin-api-1"
SESSION = "sess-admin-api-1"
N_EVENTS = 6
# scope_text promises working hours the rules do not have: the policy contradicts its own consent text.
CONTRADICTION = 'version = 9\nscope_text = "Only during working hours."\nretention_days = 30\n\n[[apps]]\n' \
                'wm_class = "Code"\n'


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("admin-api") / "data"
    enrol_in(data_dir, "alice", DEVICE)
    with EventStore(data_dir) as store:
        store.portal.set_password(*ADMIN, role="admin", actor=TEST_ACTOR)
        store.portal.set_password(*EMPLOYEE, role="employee", actor=TEST_ACTOR)
    with start_collector(data_dir) as url:
        t0 = next_utc_midnight_ns()
        events = [Event(SESSION, i, i * 1000, t0 + i * 10**9, EventKind.KEY_DOWN, key="k", char="k")
                  for i in range(N_EVENTS)]
        r = httpx.post(f"{url}/v1/batches", json={"v": 1, "batch_id": "batch-admin-api-1", "device_id": DEVICE,
                                                  "events": events_to_columns(events)},
                       headers=auth_headers(url, DEVICE), timeout=15)
        assert r.status_code == 200, r.text
        yield url, data_dir


@pytest.fixture()
def admin(served: tuple[str, Path]) -> Iterator[AdminClient]:
    with AdminClient(served[0], *ADMIN) as client:
        yield client


def _raises(kind: type[ApiError], call: Callable[[], Any], *, field: str | None = None) -> ApiError:
    with pytest.raises(kind) as caught:
        call()
    error = caught.value
    assert error.error and str(error.status) in str(error), error
    if field is not None:
        assert error.field == field, error
    return error


# Every operation, as a call on a client: the credential tests run each one with the wrong credentials.
OPERATIONS: dict[str, Callable[[AdminClient], Any]] = {
    "list employees": lambda c: c.employees(),
    "add employee": lambda c: c.add_employee("mallory"),
    "show employee": lambda c: c.employee("alice"),
    "list devices": lambda c: c.devices(),
    "register device": lambda c: c.register_device("device-mallory-1", "alice", "mallory-pc"),
    "issue token": lambda c: c.issue_enrolment_token("alice"),
    "revoke device": lambda c: c.revoke_device(DEVICE, reason="mallory was here"),
    "consent history": lambda c: c.consent_history("alice"),
    "withdraw consent": lambda c: c.withdraw_consent("alice"),
    "record consent": lambda c: c.record_consent("alice", policy_version=1, evidence="forged"),
    "show policy": lambda c: c.policy(),
    "set policy": lambda c: c.set_policy(ALLOW_ALL_POLICY.replace("version = 1", "version = 50")),
    "audit": lambda c: c.audit(),
    "verify audit": lambda c: c.verify_audit(),
    "start build": lambda c: c.start_build("mallory-build"),
    "show build": lambda c: c.build("mallory-build"),
    "build card": lambda c: c.build_card("mallory-build"),
}


def test_every_operation_refuses_a_caller_without_an_admin_login(served: tuple[str, Path]) -> None:
    url, data_dir = served
    with EventStore(data_dir) as store:
        audited_before = len(store.audit_entries())
        # An employee's portal login, as their browser's cookie holds it: a real login, not an admin's.
        employee_token = store.portal.open_login(store.portal.authenticate(*EMPLOYEE), actor=TEST_ACTOR)[0]
    refusals = {"no credential": (AuthenticationError, {}),
                "an employee's login token": (PermissionDenied, {"Authorization": f"Bearer dcal_{employee_token}"}),
                "a device's secret": (PermissionDenied, auth_headers(url, DEVICE))}
    for name, call in OPERATIONS.items():
        for why, (kind, headers) in refusals.items():
            with AdminClient(url, "", "", keep_login=False, transport=_with_headers(headers)) as caller:
                error = _raises(kind, lambda: call(caller), field="Authorization")
                assert ("portal add-admin" in error.error) if kind is AuthenticationError else (
                    "not an admin account" in error.error or "never administers" in error.error), (name, why, error)
    # Passwords, each check slow on purpose: a few operations are enough to show the same answers.
    for i, name in enumerate(("list employees", "set policy", "start build")):
        with AdminClient(url, f"guess-{i}", "not-a-password", keep_login=False) as guesser:
            _raises(AuthenticationError, lambda: OPERATIONS[name](guesser), field="Authorization")
        with AdminClient(url, *EMPLOYEE, keep_login=False) as employee:
            _raises(PermissionDenied, lambda: OPERATIONS[name](employee), field="Authorization")
    # A device secret or a login token that does not check out proves nobody: 401, asking for the admin login.
    for wrong in ({"Authorization": auth_headers(url, DEVICE)["Authorization"][:-4] + "xxxx"},
                  {"Authorization": "Bearer dcal_forged"}):
        for path in ("/v1/admin/employees", "/v1/admin/audit/verify"):
            r = httpx.get(url + path, headers=wrong, timeout=15)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic"), r.text
    with EventStore(data_dir) as store:  # none of it changed anything
        assert len(store.audit_entries()) == audited_before + 1  # the employee's login opened above
        assert [e.handle for e in store.employees()] == ["alice"]
        assert store.device_credentials()[DEVICE].revoked_at is None


class _with_headers(httpx.HTTPTransport):
    """A transport that sends these headers instead of the client's own credential (its password is empty)."""

    def __init__(self, headers: dict[str, str]):
        super().__init__()
        self._headers = headers

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "authorization" in request.headers and request.headers["authorization"] == "Basic Og==":
            del request.headers["authorization"]  # the empty login the client was given
        request.headers.update(self._headers)
        return super().handle_request(request)


def test_a_login_token_stands_for_the_password_until_logout(served: tuple[str, Path]) -> None:
    url, _ = served
    with AdminClient(url, *ADMIN) as admin:
        token = admin.log_in()
        assert token.token.startswith("dcal_") and token.expires_at > dt.datetime.now(dt.timezone.utc)
        bearer = {"Authorization": f"Bearer {token.token}"}
        assert httpx.get(f"{url}/v1/admin/policy", headers=bearer, timeout=15).status_code == 200
        assert admin.employee("alice").handle == "alice"  # the client sends it
    # close() logged out: the token opens nothing any more, and says how to get a new one.
    ended = httpx.get(f"{url}/v1/admin/policy", headers=bearer, timeout=15)
    assert ended.status_code == 401 and "POST /v1/admin/login" in ended.json()["error"], ended.text
    forged = httpx.get(f"{url}/v1/admin/policy", headers={"Authorization": "Bearer dcal_forged"}, timeout=15)
    assert forged.status_code == 401 and forged.headers["www-authenticate"].startswith("Basic"), forged.text
    for login, password, kind in (("", "", AuthenticationError), ("guess-login", "wrong-password", AuthenticationError),
                                  (*EMPLOYEE, PermissionDenied)):
        with AdminClient(url, login, password) as client:
            _raises(kind, client.log_in, field="Authorization")
            _raises(kind, client.employees, field="Authorization")  # logs in first, and is refused the same


def test_employees_are_added_listed_and_shown(admin: AdminClient) -> None:
    bob = admin.add_employee("bob", "Bob Example")
    assert (bob.handle, bob.display_name, bob.devices, bob.consent_in_force) == ("bob", "Bob Example", [], False)
    assert bob.created_at.tzinfo is not None and bob.latest_consent is None
    listed = {e.handle: e for e in admin.employees()}
    assert listed["bob"].employee_id == bob.employee_id
    assert listed["alice"].devices == [DEVICE] and listed["alice"].consent_in_force
    assert admin.employee("bob") == bob
    assert "already exists" in _raises(ConflictError, lambda: admin.add_employee("bob")).error
    _raises(InvalidRequest, lambda: admin.add_employee("bob smith"), field="body.handle")
    _raises(InvalidRequest, lambda: admin.add_employee(""), field="body.handle")
    _raises(InvalidRequest, lambda: admin.add_employee("carol", "x" * 201), field="body.display_name")
    error = _raises(NotFoundError, lambda: admin.employee("nobody"), field="path.handle")
    assert "employee add nobody" in error.error


def test_devices_are_registered_enrolled_with_a_token_and_revoked(served: tuple[str, Path],
                                                                  admin: AdminClient) -> None:
    url, _ = served
    admin.add_employee("dave")
    registered = admin.register_device("device-dave-desk", "dave", "dave-desk")
    assert (registered.state, registered.handle, registered.hostname, registered.n_events) == (
        "not enrolled", "dave", "dave-desk", 0)
    _raises(ConflictError, lambda: admin.register_device("device-dave-desk", "alice", "dave-desk"))
    _raises(NotFoundError, lambda: admin.register_device("device-erin-desk", "erin", "erin-desk"),
            field="body.employee")
    _raises(InvalidRequest, lambda: admin.register_device("short", "dave", "dave-desk"), field="body.device_id")

    token = admin.issue_enrolment_token("dave", ttl_s=600)
    assert token.employee == "dave" and token.token.startswith("dcet_")
    assert dt.timedelta(minutes=9) < token.expires_at - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(minutes=10)
    enrolled = httpx.post(f"{url}/v1/devices/enrol", json={"token": token.token, "device_id": "device-dave-laptop",
                                                           "hostname": "dave-laptop"}, timeout=15)
    assert enrolled.status_code == 200, enrolled.text
    devices = {d.device_id: d for d in admin.devices()}
    assert devices["device-dave-laptop"].state == "enrolled" and devices["device-dave-laptop"].handle == "dave"
    assert devices[DEVICE].n_events == N_EVENTS and devices[DEVICE].n_batches == 1
    _raises(InvalidRequest, lambda: admin.issue_enrolment_token("dave", ttl_s=10), field="body.ttl_s")
    _raises(NotFoundError, lambda: admin.issue_enrolment_token("erin"), field="path.handle")

    revoked = admin.revoke_device("device-dave-laptop", reason="laptop stolen")
    assert revoked.state == "revoked" and revoked.revoked_at is not None
    status = httpx.get(f"{url}/v1/devices/device-dave-laptop/status",
                       headers={"Authorization": f"Bearer device-dave-laptop:{enrolled.json()['secret']}"}, timeout=15)
    assert status.status_code == 403 and "revoked" in status.json()["error"], status.text
    _raises(NotFoundError, lambda: admin.revoke_device("device-never-seen", reason="typo"), field="path.device_id")
    _raises(InvalidRequest, lambda: admin.revoke_device("device-dave-desk", reason=""), field="body.reason")
    assert admin.audit(action="device.revoke")[-1].reason == "laptop stolen"


def test_consent_is_withdrawn_and_entered_from_paper_with_its_evidence(served: tuple[str, Path],
                                                                       admin: AdminClient) -> None:
    url, _ = served
    version = admin.policy().version
    withdrawn = admin.withdraw_consent("alice")
    assert (withdrawn.action, withdrawn.method, withdrawn.recorded_by) == ("withdraw", "api", "admin:root")
    status = httpx.get(f"{url}/v1/devices/{DEVICE}/status", headers=auth_headers(url, DEVICE), timeout=15).json()
    assert status["recording_allowed"] is False  # the device hears of it at its next poll
    assert admin.consent_history("alice").in_force is False

    _raises(InvalidRequest, lambda: admin.record_consent("alice", policy_version=version, evidence=""),
            field="body.evidence")
    no_version = None  # as a caller that never asked for the version would send it
    _raises(InvalidRequest, lambda: admin.record_consent("alice", policy_version=no_version, evidence="form"),
            field="body.policy_version")
    error = _raises(ConflictError, lambda: admin.record_consent("alice", policy_version=version + 7, evidence="form"))
    assert f"version {version}" in error.error
    _raises(NotFoundError, lambda: admin.record_consent("erin", policy_version=version, evidence="form"),
            field="path.handle")
    given = admin.record_consent("alice", policy_version=version, evidence="signed form 2026-12-01, HR file 42")
    assert (given.method, given.evidence, given.policy_version) == ("paper", "signed form 2026-12-01, HR file 42",
                                                                     version)
    assert "Tests: every application" in given.scope_text
    history = admin.consent_history("alice")
    assert history.in_force and [r.action for r in history.records][-2:] == ["withdraw", "give"]
    _raises(NotFoundError, lambda: admin.consent_history("erin"), field="path.handle")


def test_a_policy_is_shown_and_a_new_version_set_unless_it_contradicts_itself(admin: AdminClient) -> None:
    current = admin.policy()
    assert current.version >= 1 and current.policy and "Tests: every application" in (current.consent_text or "")
    error = _raises(InvalidRequest, lambda: admin.set_policy(CONTRADICTION), field="body.policy")
    assert "scope_text" in error.error and "hours" in error.error
    _raises(InvalidRequest, lambda: admin.set_policy("version = [not toml"), field="body.policy")
    _raises(ConflictError, lambda: admin.set_policy(current.policy or ""))  # the same version again
    newer = ALLOW_ALL_POLICY.replace("version = 1", f"version = {current.version + 1}")
    set_ = admin.set_policy(newer, note="yearly review")
    assert (set_.version, set_.note, set_.created_by) == (current.version + 1, "yearly review", "admin:root")
    assert admin.policy().version == set_.version
    assert admin.consent_history("alice").in_force is False  # everyone consents again to the new version
    admin.record_consent("alice", policy_version=set_.version, evidence="signed form v2")


def test_the_audit_log_is_filtered_and_its_chain_verified(admin: AdminClient) -> None:
    admin.policy()  # logged in (audited) before the window opens
    before = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.01)
    frank = admin.add_employee("frank")
    added = admin.audit(action="employee.add")
    assert [e.target for e in added][-1] == f"employee:{frank.employee_id}" and added[-1].actor == "admin:root"
    assert [e.action for e in admin.audit(since=before)] == ["employee.add"]
    assert admin.audit(action="employee.add", until=before)[-1].target != f"employee:{frank.employee_id}"
    assert {e.target for e in admin.audit(employee="frank")} == {f"employee:{frank.employee_id}"}
    assert len(admin.audit(limit=2)) == 2
    _raises(InvalidRequest, lambda: admin.audit(since=before, until=before - dt.timedelta(seconds=1)),
            field="query.until")
    _raises(InvalidRequest, lambda: admin.audit(limit=0), field="query.limit")
    _raises(NotFoundError, lambda: admin.audit(employee="erin"), field="query.employee")
    with httpx.Client(base_url=admin.base_url, auth=ADMIN) as raw:  # a misspelt filter is refused, not ignored
        r = raw.get("/v1/admin/audit", params={"employe": "frank"})
        assert r.status_code == 422 and r.json()["field"] == "query.employe", r.text

    check = admin.verify_audit()
    assert check.intact and check.first_broken is None and check.head_hash and check.expected_head_found is None
    assert check.entries == len(admin.audit())
    assert admin.verify_audit(expect_head=check.head_hash).expected_head_found is True
    elsewhere = admin.verify_audit(expect_head="ab" * 32)
    assert (elsewhere.intact, elsewhere.expected_head_found) == (False, False)
    _raises(InvalidRequest, lambda: admin.verify_audit(expect_head="not-a-hash"), field="query.expect_head")


def test_a_dataset_build_runs_in_the_background_and_reports_its_status_and_card(served: tuple[str, Path],
                                                                                 admin: AdminClient) -> None:
    _, data_dir = served
    started = admin.start_build("first-build", mode="internal", formats=("parquet",), purpose="admin api test")
    assert started.state in ("running", "done") and started.out == str(data_dir / "datasets" / "first-build")
    done = admin.wait_for_build("first-build", timeout_s=60)
    assert done.state == "done", done.error
    assert done.stats and done.stats["events"] == N_EVENTS and done.stats["mode"] == "internal"
    assert (Path(done.out) / "stats.json").is_file() and not list(Path(done.out).rglob("*.jsonl"))
    card = admin.build_card("first-build")
    assert card.startswith("---") and "internal" in card
    entry = admin.audit(action="dataset.build")[-1]
    assert (entry.actor, entry.reason, entry.details["out"]) == ("admin:root", "admin api test", done.out)

    _raises(ConflictError, lambda: admin.start_build("first-build"), field="body.name")
    _raises(InvalidRequest, lambda: admin.start_build("../elsewhere"), field="body.name")
    _raises(InvalidRequest, lambda: admin.start_build("second", formats=("csv",)), field="body.formats.0")
    _raises(InvalidRequest, lambda: admin.start_build("second", idle_gap_s=0), field="body.idle_gap_s")
    _raises(NotFoundError, lambda: admin.start_build("second", employee="erin"), field="body.employee")
    _raises(NotFoundError, lambda: admin.build("never-built"), field="path.name")
    _raises(NotFoundError, lambda: admin.build_card("never-built"), field="path.name")

    # A build that cannot succeed fails with the builder's own words, and has no card.
    failed = admin.wait_for_build(admin.start_build("empty-session", session="no-such-session").name, timeout_s=60)
    assert failed.state == "failed" and "no events" in (failed.error or ""), failed
    _raises(ConflictError, lambda: admin.build_card("empty-session"), field="path.name")


def test_every_admin_operation_is_documented_with_its_credential_and_statuses(served: tuple[str, Path]) -> None:
    spec = httpx.get(f"{served[0]}/openapi.json", timeout=15).json()
    admin_ops = {(method, path): op for path, ops in spec["paths"].items() if path.startswith("/v1/admin/")
                 for method, op in ops.items()}
    assert len(admin_ops) == len(OPERATIONS) + 1  # withdraw and record are one operation; log in, log out
    for (method, path), op in admin_ops.items():
        assert op["security"] == ([{"adminBasic": []}] if path == "/v1/admin/login" else
                                  [{"adminBasic": []}, {"adminToken": []}]), (method, path)
        assert {"401", "403", "429", "503"} <= set(op["responses"]), (method, path)
        assert op.get("description") and op["responses"].get("200", op["responses"].get("201", op["responses"].get(
            "202", op["responses"].get("204")))), (method, path)  # says what it does, and its success
        if op.get("parameters") or op.get("requestBody"):  # an input that can be malformed or name nothing
            assert {"404", "422"} & set(op["responses"]), (method, path)
    assert spec["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/admin/datasets"]["post"]["responses"]["202"]
    assert "409" in spec["paths"]["/v1/admin/policy"]["post"]["responses"]


def test_the_readme_example_runs_as_written(served: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("```python\n", readme.index("## Admin API and Python client")) + len("```python\n")
    example = readme[start:readme.index("```\n", start)]
    assert "http://127.0.0.1:8765" in example and "a-long-admin-password" in example
    exec(example.replace("http://127.0.0.1:8765", served[0]).replace("a-long-admin-password", ADMIN[1]), {})
    printed = capsys.readouterr().out
    assert "dcet_" in printed and "consent.give" in printed and "done" in printed, printed
    assert "404 path.handle no employee 'nobody'" in printed, printed


def test_employee_list_with_server_prints_what_the_store_here_prints(served: tuple[str, Path]) -> None:
    url, data_dir = served
    local = subprocess.run([sys.executable, "-m", "deskcorder", "employee", "list", "--data-dir", str(data_dir)],
                           capture_output=True, text=True, timeout=60)
    env = {**os.environ, "DESKCORDER_ADMIN_PASSWORD": ADMIN[1]}
    remote = subprocess.run([sys.executable, "-m", "deskcorder", "employee", "list", "--server", url, "--login",
                             ADMIN[0]], capture_output=True, text=True, timeout=60, env=env)
    assert local.returncode == remote.returncode == 0, (local.stderr, remote.stderr)
    assert remote.stdout == local.stdout and "alice" in remote.stdout and DEVICE in remote.stdout
    env["DESKCORDER_ADMIN_PASSWORD"] = "not-the-password"
    refused = subprocess.run([sys.executable, "-m", "deskcorder", "employee", "list", "--server", url, "--login",
                              ADMIN[0]], capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 2 and refused.stderr.startswith("error: 401"), refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""


def test_no_collector_at_the_url_is_a_transport_error_naming_it() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with AdminClient(url, *ADMIN, timeout=5) as admin:
            with pytest.raises(TransportError) as caught:
                admin.employees()
    assert url in str(caught.value) and "is the collector running there?" in str(caught.value)
    assert not isinstance(caught.value, ApiError)
