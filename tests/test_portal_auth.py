"""The portal's access rules, over real HTTP against a real `deskcorder serve`.

Nothing without a login (pages redirect to /login, API calls get 401); no POST
without the login's CSRF token; wrong passwords and unknown logins look the
same; an employee reaches only their own data whatever the URL says; an
admin never receives anyone's typed text; aggregates hide groups of fewer
than five people. Accounts are made with the real `deskcorder portal` CLI.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore
from deskcorder.store._people._login_throttle import FREE_FAILURES

from .helpers import auth_headers, enrol, start_collector

PASSWORD = {"alice": "alice-correct-horse", "bob": "bob-battery-staple", "ops": "ops-admin-password"}
# Typed text holds no login: every dataset build (and the session page with it) replaces logins.
SECRET = {h: f"typed-secret-{i}" for i, h in enumerate(["alice", "bob", "carol", "dave", "erin"])}
TITLE = {h: f"{h}-private-window-title" for h in SECRET}
HTML = {"Accept": "text/html,application/xhtml+xml"}

# GET pages and API routes of the portal, and its POST routes (each must refuse without a login).
EMPLOYEE_PAGES = ["/me", "/me/sessions", "/me/sessions/sess-alice-1", "/me/erase"]
ADMIN_PAGES = ["/admin", "/admin/activity", "/admin/policy", "/admin/datasets", "/admin/audit"]
API_ROUTES = ["/me/api/status", "/admin/api/coverage"]
POSTS = ["/me/consent", "/me/pause", "/me/resume", "/me/export", "/me/erase", "/admin/policy", "/logout"]


def typing_events(session: str, text: str, title: str, app: str = "Editor", t0: int | None = None) -> list[Event]:
    """A focus on ``app`` and ``text`` typed into it, stamped now (after the consent the fixture gave)."""
    t0 = time.time_ns() if t0 is None else t0
    events = [Event(session, 0, 0, t0, EventKind.FOCUS, app_class=app, app_process=app.lower(), window_title=title)]
    for ch in text:
        seq = len(events)
        events.append(Event(session, seq, seq * 1000, t0 + seq * 1000, EventKind.KEY_DOWN, key=ch, char=ch))
        events.append(Event(session, seq + 1, seq * 1000 + 500, t0 + seq * 1000 + 500, EventKind.KEY_UP, key=ch))
    seq = len(events)
    events.append(Event(session, seq, seq * 1000, t0 + seq * 1000, EventKind.KEY_DOWN, key="enter"))
    events.append(Event(session, seq + 1, seq * 1000, t0 + seq * 1000, EventKind.BUTTON_DOWN, button="left", x=5, y=5))
    return events


def post_events(url: str, batch_id: str, device_id: str, events: list[Event]) -> None:
    r = httpx.post(f"{url}/v1/batches", json={"v": 1, "batch_id": batch_id, "device_id": device_id,
                                              "events": events_to_columns(events)},
                   headers=auth_headers(url, device_id), timeout=10)
    assert r.status_code == 200, r.text


def portal_cli(data_dir: Path, *args: str, password: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deskcorder", "portal", *args, "--password-stdin",
                           "--data-dir", str(data_dir)], input=password + "\n", capture_output=True, text=True,
                          timeout=60)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no form with a csrf_token"
    return m.group(1)


def log_in(url: str, login: str, password: str) -> httpx.Client:
    """A client holding a login cookie, as a browser would after the login form."""
    client = httpx.Client(base_url=url, headers=HTML, timeout=15)
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"login": login, "password": password, "csrf_token": token})
    assert r.status_code == 303, r.text
    return client


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A collector with five employees who typed into "Editor", alice alone in "Solo", an admin, and a build."""
    data_dir = tmp_path_factory.mktemp("portal") / "data"
    with EventStore(data_dir) as store:
        for handle in SECRET:
            enrol(store, handle, f"device-{handle}")
        store.audit("dataset-builder", "dataset.build", "dataset:demo", "test build",
                    {"n_people": 5, "policy_versions": [1], "stats": {"actions": {"type": 5}, "redactions": {}}})
    for login, role in [("alice", "employee"), ("bob", "employee"), ("ops", "admin")]:
        args = ("add-admin", login) if role == "admin" else ("set-password", login)
        result = portal_cli(data_dir, *args, password=PASSWORD[login])
        assert result.returncode == 0, result.stderr
    with start_collector(data_dir) as url:
        for handle, text in SECRET.items():
            post_events(url, f"batch-{handle}-1", f"device-{handle}", typing_events(f"sess-{handle}-1", text,
                                                                                   TITLE[handle]))
        post_events(url, "batch-alice-solo", "device-alice", typing_events("sess-alice-2", "solo", "solo", "Solo"))
        yield {"url": url, "data_dir": data_dir}


def test_without_a_login_pages_redirect_to_login_and_api_calls_get_401(portal: dict[str, Any]) -> None:
    url = portal["url"]
    for path in EMPLOYEE_PAGES + ADMIN_PAGES + ["/admin/datasets/1"]:
        r = httpx.get(url + path, headers=HTML)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}", path
        assert httpx.get(url + path).status_code == 401, path  # not a browser: an API answer
    for path in API_ROUTES:
        r = httpx.get(url + path, headers=HTML)
        assert r.status_code == 401 and "log in first" in r.json()["error"], path
    for path in POSTS:
        r = httpx.post(url + path, data={"action": "withdraw", "confirm": "alice"}, headers=HTML)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
        assert httpx.post(url + path, json={"action": "withdraw"}).status_code == 401, path
    with EventStore(portal["data_dir"]) as store:  # and nothing changed: alice still consents, is not paused
        assert store.device_status("device-alice").recording_allowed


def _altered(text: str) -> str:
    return ("B" if text[0] == "A" else "A") + text[1:]


def test_a_forged_or_altered_cookie_is_no_login(portal: dict[str, Any]) -> None:
    client = log_in(portal["url"], "bob", PASSWORD["bob"])
    token, _, mac = client.cookies["deskcorder_login"].partition(".")
    # The first character is altered: it carries six whole bits of the value, while the last one of an
    # unpadded base64 text may carry padding bits only (ending a MAC in "AA" was no change once in ~100 runs).
    for forged in [f"{token}.{_altered(mac)}", f"{_altered(token)}.{mac}", token, "x.y"]:
        r = httpx.get(portal["url"] + "/me", headers=HTML, cookies={"deskcorder_login": forged})
        assert r.status_code == 303, forged
    assert client.get("/me").status_code == 200


def test_pages_forbid_scripts_and_are_not_cached(portal: dict[str, Any]) -> None:
    r = log_in(portal["url"], "bob", PASSWORD["bob"]).get("/me")
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none' covers scripts
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store" and "<script" not in r.text


def test_a_post_without_the_logins_csrf_token_is_refused_and_changes_nothing(portal: dict[str, Any]) -> None:
    client = log_in(portal["url"], "bob", PASSWORD["bob"])
    other = log_in(portal["url"], "bob", PASSWORD["bob"])  # a token from another login of the same person
    for form in [{}, {"csrf_token": ""}, {"csrf_token": "guess"}, {"csrf_token": csrf_of(other.get("/me").text)}]:
        assert client.post("/me/pause", data=form).status_code == 403, form
    assert client.post("/me/pause", json={"csrf_token": csrf_of(client.get("/me").text)}).status_code == 403
    status = httpx.get(f"{portal['url']}/v1/devices/device-bob/status",
                       headers=auth_headers(portal['url'], "device-bob")).json()
    assert status["recording_allowed"] is True
    r = client.post("/me/pause", data={"csrf_token": csrf_of(client.get("/me").text)})
    assert r.status_code == 303
    status = httpx.get(f"{portal['url']}/v1/devices/device-bob/status",
                       headers=auth_headers(portal['url'], "device-bob")).json()
    assert status["recording_allowed"] is False and "paused by you in the portal" in status["reason"]
    assert client.post("/me/resume", data={"csrf_token": csrf_of(client.get("/me").text)}).status_code == 303
    assert httpx.get(f"{portal['url']}/v1/devices/device-bob/status",
                     headers=auth_headers(portal['url'], "device-bob")).json()["recording_allowed"] is True


def test_the_pause_button_says_how_soon_recording_stops(portal: dict[str, Any]) -> None:
    from deskcorder.collect import AgentCadence

    page = log_in(portal["url"], "bob", PASSWORD["bob"]).get("/me").text
    assert "Stops recording on all your devices within a second" in page  # agents poll every 0.5 s here
    # A fleet's collectors promise what their cadence allows: one poll interval plus the request.
    assert AgentCadence.fleet_default().stops_within() == "11 seconds"
    assert AgentCadence(status_poll_s=0.25).stops_within() == "a second"


def test_the_login_form_needs_its_own_token(portal: dict[str, Any]) -> None:
    r = httpx.post(portal["url"] + "/login", headers=HTML,
                   data={"login": "bob", "password": PASSWORD["bob"], "csrf_token": "made-up"})
    assert r.status_code == 403 and "deskcorder_login" not in r.headers.get("set-cookie", "")


def test_wrong_password_and_unknown_login_get_the_same_refusal(portal: dict[str, Any]) -> None:
    answers = []
    for login, password in [("bob", "not-bobs-password"), ("nobody", "not-bobs-password"), ("bob", "")]:
        client = httpx.Client(base_url=portal["url"], headers=HTML)
        r = client.post("/login", data={"login": login, "password": password,
                                        "csrf_token": csrf_of(client.get("/login").text)})
        assert r.status_code == 401 and "deskcorder_login=" not in r.headers.get("set-cookie", "")
        answers.append(re.search(r'role="alert">([^<]*)<', r.text).group(1))
        assert client.get("/me").status_code == 303
    assert set(answers) == {"Wrong login or password."}


def _login_attempt(url: str, login: str, password: str) -> httpx.Response:
    client = httpx.Client(base_url=url, headers=HTML, timeout=15)
    return client.post("/login", data={"login": login, "password": password,
                                       "csrf_token": csrf_of(client.get("/login").text)})


def test_repeated_wrong_passwords_lock_a_login_for_a_while_known_or_not(portal: dict[str, Any]) -> None:
    url, data_dir = portal["url"], portal["data_dir"]
    assert portal_cli(data_dir, "set-password", "dave", password="dave-first-password").returncode == 0
    statuses = {}
    for login in ("dave", "nobody-at-all"):
        statuses[login] = [_login_attempt(url, login, f"guess-{i}").status_code for i in range(FREE_FAILURES)]
        locked = _login_attempt(url, login, "dave-first-password")  # even the right password waits
        assert locked.status_code == 429 and 25 <= int(locked.headers["Retry-After"]) <= 30, locked.text
        assert "Too many wrong passwords" in locked.text and "deskcorder_login=" not in locked.headers.get(
            "set-cookie", "")
    assert statuses["dave"] == statuses["nobody-at-all"] == [401] * FREE_FAILURES  # no hint who exists
    # The consent API checks the same password, so it is locked too.
    consent = httpx.post(f"{url}/v1/employees/dave/consent", json={"action": "withdraw"},
                         auth=("dave", "dave-first-password"), timeout=10)
    assert consent.status_code == 429 and consent.headers["Retry-After"].isdigit(), consent.text
    # An admin setting a new password ends the lock-out.
    assert portal_cli(data_dir, "set-password", "dave", password="dave-second-password").returncode == 0
    assert _login_attempt(url, "dave", "dave-second-password").status_code == 303


def test_logging_out_ends_the_login_on_the_server(portal: dict[str, Any]) -> None:
    client = log_in(portal["url"], "bob", PASSWORD["bob"])
    cookie = client.cookies["deskcorder_login"]
    assert client.post("/logout", data={"csrf_token": csrf_of(client.get("/me").text)}).status_code == 303
    r = httpx.get(portal["url"] + "/me", headers=HTML, cookies={"deskcorder_login": cookie})
    assert r.status_code == 303  # the old cookie, replayed, opens nothing


def test_an_employee_cannot_open_another_employees_session_by_its_id(portal: dict[str, Any]) -> None:
    alice = log_in(portal["url"], "alice", PASSWORD["alice"])
    own = alice.get("/me/sessions/sess-alice-1")
    assert own.status_code == 200 and SECRET["alice"] in own.text and TITLE["alice"] in own.text
    # bob's session id is no secret (GET /v1/sessions lists it to admins), yet it opens nothing for alice:
    listed = httpx.get(portal["url"] + "/v1/sessions", auth=("ops", PASSWORD["ops"]), timeout=15).json()
    assert "sess-bob-1" in {s["session_id"] for s in listed}
    theirs = alice.get("/me/sessions/sess-bob-1")
    missing = alice.get("/me/sessions/sess-nobody-9")
    assert theirs.status_code == missing.status_code == 404
    assert SECRET["bob"] not in theirs.text and TITLE["bob"] not in theirs.text
    listing = alice.get("/me/sessions")
    assert "sess-alice-1" in listing.text and "sess-bob-1" not in listing.text


def test_me_pages_take_the_person_from_the_login_never_from_the_url_or_form(portal: dict[str, Any]) -> None:
    alice = log_in(portal["url"], "alice", PASSWORD["alice"])
    for path in ["/me/sessions?employee=bob", "/me/sessions?handle=bob&employee_id=x"]:
        r = alice.get(path)
        assert r.status_code == 200 and "sess-alice-1" in r.text and "sess-bob-1" not in r.text
    assert alice.get("/me/api/status?employee=bob").json()["employee"] == "alice"
    r = alice.post("/me/export", data={"csrf_token": csrf_of(alice.get("/me").text), "employee": "bob",
                                       "handle": "bob"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert json.loads(zf.read("employee.json"))["handle"] == "alice"
        events = zf.read("events.jsonl").decode()
    assert SECRET["alice"][0] in events and "sess-bob-1" not in events


def test_each_role_is_kept_to_its_own_pages(portal: dict[str, Any]) -> None:
    alice = log_in(portal["url"], "alice", PASSWORD["alice"])
    for path in ADMIN_PAGES + ["/admin/api/coverage"]:
        assert alice.get(path).status_code == 403, path
    ops = log_in(portal["url"], "ops", PASSWORD["ops"])
    for path in EMPLOYEE_PAGES + ["/me/api/status"]:
        assert ops.get(path).status_code == 403, path
    r = ops.post("/me/export", data={"csrf_token": csrf_of(ops.get("/admin").text)})
    assert r.status_code == 403 and "application/zip" not in r.headers["content-type"]


def test_no_admin_page_shows_anyones_typed_text_or_window_titles(portal: dict[str, Any]) -> None:
    ops = log_in(portal["url"], "ops", PASSWORD["ops"])
    seen = ""
    card = re.search(r'href="(/admin/datasets/\d+)"', ops.get("/admin/datasets").text).group(1)
    for path in ADMIN_PAGES + [card, "/admin/api/coverage", "/admin/audit?action=events", "/me/sessions/sess-alice-1",
                               "/me/api/status"]:
        r = ops.get(path)
        assert r.status_code in (200, 403), path
        seen += r.text
    assert "Editor" in seen  # the aggregate is there...
    for handle in SECRET:
        assert SECRET[handle] not in seen and TITLE[handle] not in seen  # ...no one's text or titles


def test_activity_per_app_hides_apps_used_by_fewer_than_five_people(portal: dict[str, Any]) -> None:
    ops = log_in(portal["url"], "ops", PASSWORD["ops"])
    page = ops.get("/admin/activity").text
    row = re.search(r"<tr><td>Editor</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", page)
    assert row and row.group(1) == "5"  # five people typed in Editor: shown
    assert "Solo" not in page  # only alice used it: not even its name appears
    assert re.search(r'id="suppressed">1 application used by fewer than 5 people not shown', page)
    # Read from the counts kept at ingest: no event is decrypted, so no events.read entry is added.
    assert "aggregate activity per application" not in ops.get("/admin/audit?action=events.read").text


def test_consent_coverage_counts_people_with_consent_in_force(portal: dict[str, Any]) -> None:
    ops = log_in(portal["url"], "ops", PASSWORD["ops"])
    coverage = ops.get("/admin/api/coverage").json()
    assert coverage["employees"] == 5 and coverage["in_force"] + coverage["withdrawn"] == 5
    assert re.search(r'id="in-force">\d+</strong> of 5 employees', ops.get("/admin").text)


def test_dataset_builds_are_listed_with_a_card_read_from_the_audit_log(portal: dict[str, Any]) -> None:
    ops = log_in(portal["url"], "ops", PASSWORD["ops"])
    listing = ops.get("/admin/datasets").text
    entry = re.search(r'href="/admin/datasets/(\d+)"', listing).group(1)
    card = ops.get(f"/admin/datasets/{entry}")
    assert card.status_code == 200
    provenance = card.text.split('id="provenance"')[1].split("</section>")[0]
    assert "n_people" in provenance and "5" in provenance
    assert "type" in card.text.split('id="actions"')[1].split("</section>")[0]
    assert ops.get("/admin/datasets/999999").status_code == 404
