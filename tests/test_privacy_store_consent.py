"""Only enrolled devices of consenting employees are recorded, and only while consent is in force.

Real `deskcorder serve` subprocesses and real HTTP; what was stored is checked by
reopening the data dir. Employees and policies are created through the store
(there is no HTTP route for them), the rest through the collector's API.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import msgpack
import pytest

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.policy import consent_text
from deskcorder.store import ConsentRecord, EventStore
from deskcorder.store._people._consent import CLOCK_GRACE_NS, _consent_periods

from .helpers import ALLOW_ALL_POLICY, READ, TEST_ACTOR, auth_headers, enrol_over_http, start_collector

NS = 1_000_000_000
POLICY_V2 = ALLOW_ALL_POLICY.replace("version = 1", "version = 2").replace("Tests:", "Tests, v2:")


def columns(session: str, t0: int, n: int = 20) -> dict[str, list[Any]]:
    return events_to_columns([Event(session, i, i * 1000, t0 + i * 1000, EventKind.MOVE, x=i, y=i) for i in range(n)])


def post_batch(url: str, batch_id: str, device_id: str, cols: dict[str, list[Any]]) -> httpx.Response:
    body = msgpack.packb({"v": 1, "batch_id": batch_id, "device_id": device_id, "events": cols}, use_bin_type=True)
    return httpx.post(f"{url}/v1/batches", content=body, headers={"Content-Type": "application/msgpack",
                                                                  **_auth(url, device_id)}, timeout=30)


def _auth(url: str, device_id: str) -> dict[str, str]:
    try:
        return auth_headers(url, device_id)
    except KeyError:  # never enrolled: the request goes without a credential
        return {}


def password(handle: str) -> str:
    return f"{handle} has a long portal password"


def add_person(store: EventStore, handle: str) -> None:
    """An employee with a portal account: consent over HTTP is given by the person, with their password."""
    store.add_employee(handle, actor=TEST_ACTOR)
    store.portal.set_password(handle, password(handle), role="employee", actor=TEST_ACTOR)


def give(url: str, handle: str, version: int = 1, *, as_login: str | None = None) -> httpx.Response:
    login = as_login or handle
    return httpx.post(f"{url}/v1/employees/{handle}/consent", json={"action": "give", "policy_version": version},
                      auth=(login, password(login)), timeout=10)


def withdraw(url: str, handle: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/employees/{handle}/consent", json={"action": "withdraw"},
                      auth=(handle, password(handle)), timeout=10)


def status(url: str, device_id: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/v1/devices/{device_id}/status", headers=_auth(url, device_id), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def ns(iso: str) -> int:
    when = dt.datetime.fromisoformat(iso)
    return int(when.timestamp()) * NS + when.microsecond * 1000


def snapshot(data_dir: Path) -> tuple[dict[str, bytes], dict[str, list[tuple]]]:
    files = {str(p.relative_to(data_dir)): p.read_bytes()
             for p in sorted((data_dir / "events").rglob("*")) if p.is_file()} if (data_dir / "events").exists() else {}
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'control.db'}?mode=ro", uri=True)) as db:
        rows = {t: db.execute(f"select * from {t} order by 1").fetchall()
                for t in ("devices", "sessions", "batches", "file_sessions", "audit_log")}
    return files, rows


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("consent") / "data"
    with EventStore(data_dir) as store:
        store.set_policy(ALLOW_ALL_POLICY, actor=TEST_ACTOR)
        for handle in ("carol", "dave", "erin", "frank", "hana"):
            add_person(store, handle)
        store.portal.set_password("root-admin", password("root-admin"), role="admin", actor=TEST_ACTOR)
    with start_collector(data_dir) as url:
        yield url, data_dir


def test_batch_from_an_unenrolled_device_is_refused_with_401_and_nothing_stored(
        collector: tuple[str, Path]) -> None:
    url, data_dir = collector
    before = snapshot(data_dir)
    response = post_batch(url, "batch-unreg-0001", "device-nobody", columns("sess-unreg", time.time_ns()))
    assert response.status_code == 401, response.text
    answer = response.json()
    assert answer["field"] == "Authorization"
    assert "enrol" in answer["error"] and "/v1/devices/enrol" in answer["error"]
    assert snapshot(data_dir) == before
    assert httpx.get(f"{url}/v1/devices/device-nobody/status").status_code == 401


def test_a_token_for_an_unknown_employee_names_the_command_and_a_bad_device_id_is_422(
        collector: tuple[str, Path]) -> None:
    url, data_dir = collector
    with EventStore(data_dir) as store, pytest.raises(Exception, match="deskcorder employee add ghost"):
        store.issue_enrolment_token("ghost", actor=TEST_ACTOR)
    bad = enrol_over_http(url, data_dir, "x", "carol")
    assert bad.status_code == 422 and bad.json()["field"] == "device_id"


def test_a_device_cannot_change_hands(collector: tuple[str, Path]) -> None:
    url, data_dir = collector
    assert enrol_over_http(url, data_dir, "device-shared-01", "carol").status_code == 200
    # Enrolled again for the same person (a lost credential file): a new secret, the old one stops working.
    old = auth_headers(url, "device-shared-01")
    assert enrol_over_http(url, data_dir, "device-shared-01", "carol").status_code == 200
    assert httpx.get(f"{url}/v1/devices/device-shared-01/status", headers=old).status_code == 401
    taken = enrol_over_http(url, data_dir, "device-shared-01", "dave")
    assert taken.status_code == 409 and "new device id" in taken.json()["error"]


def test_employee_without_consent_is_refused_then_stored_after_consent(collector: tuple[str, Path]) -> None:
    url, data_dir = collector
    assert enrol_over_http(url, data_dir, "device-dave-001", "dave").status_code == 200
    before = snapshot(data_dir)
    refused = post_batch(url, "batch-dave-0001", "device-dave-001", columns("sess-dave", time.time_ns()))
    assert refused.status_code == 403
    assert "never consented" in refused.json()["error"] and "deskcorder consent give" in refused.json()["error"]
    assert snapshot(data_dir) == before
    not_yet = status(url, "device-dave-001")
    assert not_yet["recording_allowed"] is False and not_yet["consent"] is None
    assert "agent" not in not_yet  # no cadence set on this collector: agents keep their own
    assert "not agreed" in not_yet["reason"]

    given = give(url, "dave")
    assert given.status_code == 200, given.text
    t_consent = ns(given.json()["recorded_at"])
    # Stamped 10 s before the consent: refused even now, because it was recorded without consent.
    early = post_batch(url, "batch-dave-0002", "device-dave-001", columns("sess-dave-early", t_consent - 10 * NS))
    assert early.status_code == 403 and early.json()["field"] == "events.t_wall_ns" and early.json()["row"] == 0
    assert "before they first consented" in early.json()["error"]
    stored = post_batch(url, "batch-dave-0003", "device-dave-001", columns("sess-dave", t_consent + NS))
    assert stored.status_code == 200 and stored.json()["stored"] == 20
    with EventStore(data_dir) as store:
        assert store.read_events(**READ, employee="dave")["session_id"].to_pylist() == ["sess-dave"] * 20


def test_events_after_a_withdrawal_are_refused_and_status_flips_on_the_next_poll(
        collector: tuple[str, Path]) -> None:
    url, data_dir = collector
    assert enrol_over_http(url, data_dir, "device-erin-001", "erin").status_code == 200
    t_give = ns(give(url, "erin").json()["recorded_at"])
    assert status(url, "device-erin-001")["recording_allowed"] is True
    response = withdraw(url, "erin")
    assert response.status_code == 200 and response.json()["action"] == "withdraw"
    t_withdraw = ns(response.json()["recorded_at"])
    # The agent's next poll (0.5 s later at most) already sees it: nothing is cached.
    after = status(url, "device-erin-001")
    assert after["recording_allowed"] is False and "withdrew" in after["reason"]
    assert after["consent"]["action"] == "withdraw"

    before = snapshot(data_dir)
    late = columns("sess-erin", t_withdraw - 100_000_000, n=20)
    late["t_wall_ns"][7] = t_withdraw + CLOCK_GRACE_NS + NS  # one event stamped 3 s after the withdrawal
    refused = post_batch(url, "batch-erin-0001", "device-erin-001", late)
    assert refused.status_code == 403, refused.text
    assert (refused.json()["field"], refused.json()["row"]) == ("events.t_wall_ns", 7)
    assert "withdrawal of consent" in refused.json()["error"]
    assert snapshot(data_dir) == before  # the events before the withdrawal in that batch were not stored either

    # Recorded while consent was in force (or within the grace): stored, even though it arrives later.
    in_time = columns("sess-erin", t_give + 1000, n=20)
    in_time["t_wall_ns"][-1] = t_withdraw + CLOCK_GRACE_NS // 2
    assert post_batch(url, "batch-erin-0002", "device-erin-001", in_time).status_code == 200

    t_again = ns(give(url, "erin").json()["recorded_at"])
    assert status(url, "device-erin-001")["recording_allowed"] is True
    assert post_batch(url, "batch-erin-0003", "device-erin-001",
                      columns("sess-erin-2", t_again + NS)).status_code == 200


def test_consent_history_is_append_only(collector: tuple[str, Path]) -> None:
    url, data_dir = collector
    for act in (give, withdraw, give, withdraw):
        assert act(url, "frank").status_code == 200
    with EventStore(data_dir) as store:
        first = store.consent_history("frank")
        assert [c.action for c in first] == ["give", "withdraw", "give", "withdraw"]
        # What they were shown: the text generated from the rules, the admin's words in it, labelled.
        shown = consent_text(store.current_policy().policy, store.current_policy().version)
        assert all(c.scope_text == shown and c.method == "api" for c in first)
        assert "“Tests: every application, any time.”" in shown
        assert [c.recorded_at for c in first] == sorted(c.recorded_at for c in first)
        assert give(url, "frank").status_code == 200
        again = store.consent_history("frank")
        assert again[:4] == first and again[4].action == "give"
        audit = [e.action for e in store.audit_entries(employee="frank") if e.action.startswith("consent.")]
        assert audit == ["consent.give", "consent.withdraw"] * 2 + ["consent.give"]


def test_a_new_policy_version_needs_fresh_consent(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        add_person(store, "gina")
    with start_collector(data_dir) as url:
        assert httpx.get(f"{url}/v1/policy").json() == {"version": 0, "policy": None, "created_at": None}
        assert enrol_over_http(url, data_dir, "device-gina-001", "gina").status_code == 200
        nothing = status(url, "device-gina-001")
        assert (nothing["recording_allowed"], nothing["policy_version"], nothing["policy"]) == (False, 0, None)
        assert "No recording policy" in nothing["reason"]
        assert give(url, "gina", 0).status_code == 409  # nothing to consent to yet

        with EventStore(data_dir) as store:
            store.set_policy(ALLOW_ALL_POLICY, actor=TEST_ACTOR)
        t_give = ns(give(url, "gina", 1).json()["recorded_at"])
        v1 = status(url, "device-gina-001")
        assert (v1["recording_allowed"], v1["policy_version"], v1["policy"]) == (True, 1, ALLOW_ALL_POLICY)
        assert v1["consent"]["policy_version"] == 1

        with EventStore(data_dir) as store:
            v2_at = store.set_policy(POLICY_V2, actor=TEST_ACTOR, note="wider scope").created_at
        assert httpx.get(f"{url}/v1/policy").json()["version"] == 2
        needs = status(url, "device-gina-001")
        assert (needs["recording_allowed"], needs["policy_version"]) == (False, 2)
        assert "changed to version 2" in needs["reason"]
        stale = give(url, "gina", 1)
        assert stale.status_code == 409 and "current policy is version 2" in stale.json()["error"]

        # Recorded under v1 before v2 existed: stored. Recorded after v2 replaced v1: refused.
        t_v2 = int(v2_at.timestamp()) * NS + v2_at.microsecond * 1000
        assert post_batch(url, "batch-gina-0001", "device-gina-001",
                          columns("sess-gina", t_give + 1000)).status_code == 200
        after = post_batch(url, "batch-gina-0002", "device-gina-001", columns("sess-gina-2", t_v2 + 3 * NS))
        assert after.status_code == 403 and "policy version 1 was replaced" in after.json()["error"]

        t_v2_consent = ns(give(url, "gina", 2).json()["recorded_at"])
        assert status(url, "device-gina-001")["recording_allowed"] is True
        assert post_batch(url, "batch-gina-0003", "device-gina-001",
                          columns("sess-gina-3", t_v2_consent + NS)).status_code == 200


def test_status_poll_is_cheap(collector: tuple[str, Path]) -> None:
    url, data_dir = collector
    assert enrol_over_http(url, data_dir, "device-carol-01", "carol").status_code == 200
    give(url, "carol")
    before = snapshot(data_dir)
    timings = []
    with httpx.Client(timeout=10) as client:
        for _ in range(200):
            start = time.perf_counter()
            assert client.get(f"{url}/v1/devices/device-carol-01/status",
                              headers=auth_headers(url, "device-carol-01")).json()["recording_allowed"] is True
            timings.append(time.perf_counter() - start)
    median = statistics.median(timings)
    print(f"status poll: median {median * 1000:.2f} ms, p95 {sorted(timings)[189] * 1000:.2f} ms")
    assert median < 0.05, f"a status poll takes {median * 1000:.1f} ms; agents poll it twice a second"
    assert snapshot(data_dir) == before  # polls write nothing, not even audit entries


def _consent(action: str, at_s: int, version: int = 1) -> ConsentRecord:
    return ConsentRecord(0, "emp", action, version, "", "api",
                         dt.datetime.fromtimestamp(at_s, dt.timezone.utc))


def test_consent_periods_follow_gives_withdrawals_and_policy_replacements() -> None:
    history = [_consent("give", 100), _consent("withdraw", 200), _consent("give", 300),
               _consent("give", 400, version=2), _consent("withdraw", 600, version=2)]
    periods = _consent_periods(history, replaced_at={1: 350 * NS})
    assert [(p.start_ns // NS, p.end_ns // NS) for p in periods] == [(100, 200), (300, 350), (400, 600)]
    assert "withdrawal" in periods[0].ended_by and "policy version 1 was replaced" in periods[1].ended_by
    still_open = _consent_periods([_consent("give", 100, version=2)], replaced_at={1: 50 * NS})
    assert still_open[0].end_ns == 2**63 - 1


@pytest.mark.parametrize("auth, status_code, words", [
    (None, 401, "only the person can give or withdraw it"),
    (("hana", "not her password"), 401, "wrong login or password"),
    (("carol", password("carol")), 403, "'carol' cannot give or withdraw it for 'hana'"),
    (("root-admin", password("root-admin")), 403, "deskcorder consent give --employee hana"),
])
def test_nobody_but_the_person_can_give_or_withdraw_their_consent_over_http(
        collector: tuple[str, Path], auth: tuple[str, str] | None, status_code: int, words: str) -> None:
    url, data_dir = collector
    before = snapshot(data_dir)
    for action in ("give", "withdraw"):
        response = httpx.post(f"{url}/v1/employees/hana/consent", json={"action": action, "policy_version": 1},
                              auth=auth, timeout=10)
        assert response.status_code == status_code, response.text
        assert words in response.json()["error"] and response.json()["field"] == "Authorization"
        if status_code == 401:
            assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert snapshot(data_dir) == before  # no consent act, no audit entry
    with EventStore(data_dir) as store:
        assert store.consent_history("hana") == []


def test_a_consent_given_over_http_is_recorded_as_the_api_and_audited_by_employee_id(
        collector: tuple[str, Path]) -> None:
    url, data_dir = collector
    assert give(url, "hana").json()["method"] == "api"
    claimed = httpx.post(f"{url}/v1/employees/hana/consent", auth=("hana", password("hana")), timeout=10,
                         json={"action": "withdraw", "method": "portal"})
    assert claimed.status_code == 422 and claimed.json()["field"] == "body.method"  # the API cannot claim the portal
    with EventStore(data_dir) as store:
        entry = store.audit_entries(action="consent.give", employee="hana")[-1]
        assert entry.actor == f"employee:{store.employee('hana').employee_id}"
    assert withdraw(url, "hana").status_code == 200
