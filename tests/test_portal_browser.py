"""The portal in a real browser (headless Chromium via Playwright) against a real `deskcorder serve`.

An employee logs in, pauses recording (and the status the agent polls says so),
reads what they typed, downloads their data and opens the zip, and erases
everything after typing their login. An admin writes an invalid policy (the
error shows next to the text), then a valid one, and the device status the
agent polls carries the new version, as read by the agent's own status client
(``deskcorder.capture.CollectorStatus``; ``Agent.stats()`` does not report the
policy version). Screenshots go to test-artifacts/portal/.

Chromium is Debian's (/usr/bin/chromium; `playwright install` is not used).
Skipped only where it is missing *and* CI is unset; on CI a missing browser fails.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from deskcorder.capture import CollectorStatus, Credential
from deskcorder.store import EventStore

from .helpers import auth_headers, enrol, start_collector
from .test_portal_auth import portal_cli, post_events, typing_events

CHROMIUM = Path(os.environ.get("DESKCORDER_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "portal"
PASSWORDS = {"alice": "alice-browser-password", "ops": "ops-browser-password"}
TYPED = "dear diary <b>not bold</b> write to alice@example.com"
SHOWN = "dear diary <b>not bold</b> write to <EMAIL>"  # as a dataset would keep it


def _playwright() -> Any:
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        missing = f"the playwright package is not installed ({exc}); pip install playwright"
    if missing is None and not CHROMIUM.exists():
        missing = f"no Chromium at {CHROMIUM}; apt-get install chromium"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run on CI: {missing}")
        pytest.skip(missing)
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _playwright()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("portal-browser") / "data"
    with EventStore(data_dir) as store:
        enrol(store, "alice", "device-alice")
        enrol(store, "bob", "device-bob")
    for args, login in [(("set-password", "alice"), "alice"), (("add-admin", "ops"), "ops")]:
        result = portal_cli(data_dir, *args, password=PASSWORDS[login])
        assert result.returncode == 0, result.stderr
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with start_collector(data_dir) as url:
        post_events(url, "batch-alice-b1", "device-alice", typing_events("sess-alice-b1", TYPED, "diary.txt"))
        yield {"url": url, "data_dir": data_dir}


def status(url: str, device_id: str) -> dict[str, Any]:
    return httpx.get(f"{url}/v1/devices/{device_id}/status", headers=auth_headers(url, device_id), timeout=10).json()


def agent_view(url: str, device_id: str) -> Any:
    """The status as the agent reads it: its own client, the one its poller calls every 0.5 s."""
    secret = auth_headers(url, device_id)["Authorization"].rpartition(":")[2]
    client = CollectorStatus(url, credential=Credential(device_id, secret))
    try:
        return client.status(device_id)
    finally:
        client.close()


def log_in(page: Any, url: str, login: str, password: str, start: str) -> None:
    page.goto(url + start)
    assert "/login" in page.url  # every page starts at the login form
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + start)  # and returns to the page asked for


def test_an_employee_pauses_reads_exports_and_erases_in_the_browser(browser: Any, server: dict[str, Any],
                                                                    tmp_path: Path) -> None:
    url = server["url"]
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    try:
        log_in(page, url, "alice", PASSWORDS["alice"], "/me")
        assert page.inner_text("#status").count("Recording") >= 1
        assert "You agreed to policy version 1" in page.inner_text("#consent")
        page.screenshot(path=ARTIFACTS / "employee-overview.png", full_page=True)

        page.click("#pause")
        page.wait_for_selector("#pause-state")
        assert "paused" in page.inner_text("#pause-state")
        polled = status(url, "device-alice")  # what the agent polls
        assert polled["recording_allowed"] is False and "paused by you in the portal" in polled["reason"]
        seen = agent_view(url, "device-alice")
        assert (seen.allowed, seen.reason) == (False, "paused_remotely")
        page.screenshot(path=ARTIFACTS / "employee-paused.png", full_page=True)

        page.click("text=My sessions")
        page.wait_for_selector("svg.chart rect.bar")
        page.screenshot(path=ARTIFACTS / "employee-sessions.png", full_page=True)
        page.click("#sessions a")
        typed = page.inner_text("#typed")
        assert SHOWN in typed  # shown as text (the markup in it was not interpreted), the email marked redacted
        assert page.locator("#typed b").count() == 0
        assert page.inner_text("#typed mark.redacted") == "<EMAIL>"
        page.screenshot(path=ARTIFACTS / "employee-session.png", full_page=True)

        page.goto(url + "/me")
        with page.expect_download() as download_info:
            page.click("#export")
        archive = tmp_path / "export.zip"
        download_info.value.save_as(archive)
        with zipfile.ZipFile(archive) as zf:
            assert json.loads(zf.read("employee.json"))["handle"] == "alice"
            chars = [json.loads(line).get("char") for line in zf.read("events.jsonl").decode().splitlines()]
            assert "".join(c for c in chars if c) == TYPED
            assert any(json.loads(line)["action"] == "recording.pause" for line in zf.read("audit.jsonl").splitlines())

        page.click("text=Erase my data")
        page.fill("#confirm", "bob")  # not their login: refused, nothing erased
        page.click("#erase")
        assert "Nothing was erased" in page.inner_text("[role=alert]")
        page.fill("#confirm", "alice")
        page.screenshot(path=ARTIFACTS / "employee-erase-confirm.png", full_page=True)
        page.click("#erase")
        page.wait_for_selector("#erased")
        page.screenshot(path=ARTIFACTS / "employee-erased.png", full_page=True)

        # The device and its credential went with the person: the collector no longer knows it.
        gone = httpx.get(f"{url}/v1/devices/device-alice/status", headers=auth_headers(url, "device-alice"))
        assert gone.status_code == 401 and "not enrolled" in gone.json()["error"]
        page.goto(url + "/me")
        assert "/login" in page.url  # the login went with the account
    finally:
        context.close()
    with EventStore(server["data_dir"]) as store:
        assert "alice" not in {e.handle for e in store.employees()}
        assert [a.login for a in store.portal.accounts()] == ["ops"]


def test_an_admin_edits_the_policy_and_devices_see_the_new_version(browser: Any, server: dict[str, Any]) -> None:
    url = server["url"]
    assert status(url, "device-bob")["policy_version"] == 1
    context = browser.new_context()
    page = context.new_page()
    try:
        log_in(page, url, "ops", PASSWORDS["ops"], "/admin/policy")
        draft = page.input_value("#policy-text")
        assert "version = 2" in draft  # the editor starts from the current policy, version bumped

        page.fill("#policy-text", draft + "\n[hours]\ndays = [\"someday\"]\n")
        page.click("#save-policy")
        assert "unknown day 'someday'" in page.inner_text("#policy-error")
        assert "someday" in page.input_value("#policy-text")  # the text is kept for fixing
        page.screenshot(path=ARTIFACTS / "admin-policy-error.png", full_page=True)
        assert status(url, "device-bob")["policy_version"] == 1

        page.fill("#policy-text", draft.replace('title_include = [".*"]', 'wm_class = "Editor"'))
        page.fill("input[name=note]", "only the editor from now on")
        page.click("#save-policy")
        assert "Policy version 2 saved" in page.inner_text("#saved")
        assert "only the editor from now on" in page.inner_text("#policy-history")
        page.screenshot(path=ARTIFACTS / "admin-policy-saved.png", full_page=True)

        polled = status(url, "device-bob")  # exactly what the agent polls every 0.5 s
        assert polled["policy_version"] == 2 and 'wm_class = "Editor"' in polled["policy"]
        assert polled["recording_allowed"] is False  # bob agreed to version 1, not 2
        seen = agent_view(url, "device-bob")
        assert seen.policy_version == 2 and [r.wm_class for r in seen.policy.apps] == ["Editor"]
        assert (seen.allowed, seen.reason) == (False, "policy_changed")

        page.click("text=Devices & consent")
        assert "0 of" in page.inner_text("#coverage")  # nobody has consent in force for version 2
        page.screenshot(path=ARTIFACTS / "admin-devices.png", full_page=True)
        page.goto(url + "/admin/audit?action=policy")
        assert "policy.set" in page.inner_text("#audit")
        page.screenshot(path=ARTIFACTS / "admin-audit.png", full_page=True)
    finally:
        context.close()
