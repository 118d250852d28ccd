"""May this device record now, and under which policy: the collector's answer, pushed to the agent.

The collector holds the agent's status request until the answer changes
(``GET /v1/devices/{id}/status?wait=50&since=VERSION``, see
``collect/_status_push.py``): a withdrawal, a pause in the portal or a new
policy arrives within a second, and an idle desk asks about once every 50 s.
The request uses the status connection's keep-alive socket like any other;
when it fails, the agent asks again after 0.5 s, doubling up to
``StatusPoller.IDLE_POLL_MAX_S`` (with jitter, so a restarted collector is not
asked by every desk at once), and the last answer stands meanwhile.

A collector older than this answers at once without ``status_version``; the
agent then polls it as before: every 0.5 s (or at the cadence the collector
asks for, see ``RecordingStatus``) while input goes on.

On an idle desk (no input at all for ``StatusPoller.IDLE_AFTER_S``) the
poller asks half as often each time, down to once every
``StatusPoller.IDLE_POLL_MAX_S``, and at once again at the next input (key,
click or move, recorded or not): a withdrawal made while nobody typed is
heard one request after the typing resumes, so of the input that follows a
withdrawal no more is recorded than at the full cadence.

``CollectorStatus`` enrols the device once when it has no credential yet
(``POST /v1/devices/enrol`` with the admin's one-time token, see
``_credential``) and then reads ``GET /v1/devices/{id}/status`` with the
device's credential. A collector that refuses the credential (401: unknown or
wrong; 403: revoked by an admin) stops the agent: nothing it records could
ever be stored.
``FixedStatus`` answers "allowed under this policy" without a collector; it is
the test and benchmark seam, like ``HandlerTransport`` is for uploads.

``StatusPoller`` is the thread that asks and hands every answer to the gate
(see ``_gate``). What it does when the collector does not answer is a
privacy decision, made here once:

* at start, with no answer yet: nothing is recorded until one says
  ``recording_allowed``. No decision is cached on disk, so an agent restarted
  while the collector is unreachable records nothing until the collector
  confirms consent again: a withdrawal made while the desk was offline can
  never be overlooked.
* during a session: the last answer stands, so an outage of the collector
  neither loses input (it waits in the spool) nor silently stops recording.
  The collector re-checks every event's timestamp against the consent
  history when the batch arrives, so input from after a withdrawal that the
  agent could not hear about is refused there.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import random
import threading
import time
import urllib.parse
from typing import Any, Callable, Protocol

from ..policy import Policy, PolicyError, parse_policy
from ._credential import Credential
from ._errors import AgentError, DeviceRefused
from ._transport import Connection, Response, TransportError

__all__ = ["CollectorStatus", "FixedStatus", "RecordingStatus", "StatusPoller", "StatusSource", "status_from_json",
           "UPLOAD_INTERVAL_RANGE_S", "STATUS_POLL_RANGE_S"]

log = logging.getLogger("deskcorder.capture")


# What a collector may ask of an agent's cadence (its ``"agent"`` hints). The poll is capped at a
# minute: no collector setting can leave an agent deaf to a withdrawal of consent for longer.
UPLOAD_INTERVAL_RANGE_S = (0.1, 3600.0)
STATUS_POLL_RANGE_S = (0.1, 60.0)


@dataclasses.dataclass(frozen=True)
class RecordingStatus:
    allowed: bool
    reason: str | None  # the PAUSE marker's reason when not allowed (a code, never personal data)
    detail: str  # the collector's plain words, for the person at the desk
    policy: Policy | None
    policy_version: int
    # The fleet's cadence, when the collector sets one (``deskcorder serve --agent-upload-interval``,
    # ``--agent-status-interval``); None: the agent's own settings stand.
    upload_interval_s: float | None = None
    status_poll_s: float | None = None
    # The answer's ``status_version``: what to send as ``since`` to be told of the next change. None: the
    # collector does not push (an older one), so the agent polls.
    version: str | None = None


def status_from_json(body: dict[str, Any]) -> RecordingStatus:
    """A ``GET /v1/devices/{id}/status`` answer as the gate needs it."""
    version = body.get("status_version")
    return dataclasses.replace(_recording_status(body), **_cadence(body.get("agent")),
                               version=version if isinstance(version, str) and version else None)


def _cadence(hints: Any) -> dict[str, float | None]:
    """The collector's cadence hints, clamped to what an agent accepts; malformed ones are ignored."""
    out: dict[str, float | None] = {"upload_interval_s": None, "status_poll_s": None}
    if not isinstance(hints, dict):
        return out
    for name, (low, high) in (("upload_interval_s", UPLOAD_INTERVAL_RANGE_S), ("status_poll_s", STATUS_POLL_RANGE_S)):
        value = hints.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:  # not NaN
            out[name] = min(high, max(low, float(value)))
    return out


def _recording_status(body: dict[str, Any]) -> RecordingStatus:
    detail = str(body.get("reason") or "")
    version = int(body.get("policy_version") or 0)
    policy: Policy | None = None
    if body.get("policy"):
        try:
            policy = _parse_policy(body["policy"])
        except PolicyError as exc:  # the collector validates policies; a bad one must still stop recording
            return RecordingStatus(False, "policy_invalid", f"the collector sent an invalid policy: {exc}", None,
                                   version)
    if body.get("recording_allowed") is True and policy is not None:
        return RecordingStatus(True, None, detail, policy, version)
    return RecordingStatus(False, _not_allowed_reason(body), detail, policy, version)


@functools.lru_cache(maxsize=4)
def _parse_policy(text: str) -> Policy:
    """The same policy text comes back in every answer: parse it once (a Policy is frozen)."""
    return parse_policy(text)


def _not_allowed_reason(body: dict[str, Any]) -> str:
    consent = body.get("consent") or None
    if consent is None:
        return "no_consent"
    if consent.get("action") == "withdraw":
        return "consent_withdrawn"
    if consent.get("policy_version") != body.get("policy_version"):
        return "policy_changed"  # consent was for an older policy: the employee must agree to the new one
    if "paused" in str(body.get("reason", "")).lower():
        return "paused_remotely"  # consent in force, paused by the employee elsewhere (the portal)
    return "not_allowed"


_NEW_TOKEN = "ask an admin for a new one: deskcorder device token --employee HANDLE"


class StatusSource(Protocol):
    def enrol(self, device_id: str, token: str, hostname: str) -> tuple[str, str]:
        """Exchange the enrolment token: (employee_id, secret). AgentError when refused; TransportError to retry."""

    def status(self, device_id: str) -> RecordingStatus:
        """The current answer; TransportError when there is none (unreachable, 5xx)."""

    def close(self) -> None: ...


class PushedStatusSource(StatusSource, Protocol):
    """A source whose collector can hold the request until the status changes (``CollectorStatus``)."""

    def watch(self, device_id: str, since: str, wait_s: float) -> RecordingStatus | None:
        """The answer once it is no longer version ``since``; None when it did not change for ``wait_s``."""

    def interrupt(self) -> None:
        """From another thread: end a ``watch`` in flight (it raises TransportError)."""


class CollectorStatus:
    REQUEST_TIMEOUT_S = 2.0  # a slow answer must not hold the 0.5 s poll back for long

    def __init__(self, server_url: str, *, credential: Credential | None = None, state_dir: str = "<state_dir>"):
        if not server_url.startswith(("http://", "https://")):
            raise ValueError(f"server URL must start with http:// or https://, got {server_url!r}")
        self._state_dir = state_dir
        self._credential = credential
        self._connection = Connection(server_url)

    def enrol(self, device_id: str, token: str, hostname: str) -> tuple[str, str]:
        r = self._request("POST", "/v1/devices/enrol", body=json.dumps(
            {"token": token, "device_id": device_id, "hostname": hostname}).encode(),
            headers={"Content-Type": "application/json"})
        if r.status == 200:
            body = r.json()
            return str(body["employee_id"]), str(body["secret"])
        error = _error(r)
        if r.status == 401:
            raise DeviceRefused("not_enrolled", f"the collector refused the enrolment token: {error}")
        if r.status == 409:
            raise DeviceRefused("not_enrolled", f"the collector refused to enrol device {device_id}: {error}; to "
                                f"enrol this desk as a "
                             f"new device, delete {self._state_dir}/device_id and start again with a new token "
                             f"({_NEW_TOKEN.removeprefix('ask an admin for a new one: ')})")
        if r.status in (400, 404, 422):
            raise DeviceRefused("not_enrolled", f"the collector refused to enrol device {device_id}: {error}")
        raise TransportError(f"enrol answered {r.status}: {error}")

    def status(self, device_id: str) -> RecordingStatus:
        return self._answer(self._request("GET", f"/v1/devices/{device_id}/status",
                                          headers=self._credential.headers() if self._credential else {}))

    def watch(self, device_id: str, since: str, wait_s: float) -> RecordingStatus | None:
        # The collector answers within wait_s (a 304 when nothing changed); beyond that plus a slow
        # answer, the connection is taken for dead.
        r = self._connection.request("GET", f"/v1/devices/{device_id}/status?wait={wait_s:g}"
                                     f"&since={urllib.parse.quote(since, safe='')}",
                                     headers=self._credential.headers() if self._credential else {},
                                     timeout=wait_s + self.REQUEST_TIMEOUT_S + 1.0)
        return None if r.status == 304 else self._answer(r)

    def interrupt(self) -> None:
        self._connection.abort()

    def _answer(self, r: Response) -> RecordingStatus:
        if r.status == 401:
            raise DeviceRefused("not_enrolled", f"the collector does not accept this device's credential "
                                f"({_error(r)}); delete "
                             f"{self._state_dir}/credential and start the agent with --enrol-token TOKEN; "
                             f"{_NEW_TOKEN.replace('a new one', 'a token')}")
        if r.status == 403:
            raise DeviceRefused("revoked", f"the collector refuses this device: {_error(r)}")
        if r.status != 200:
            raise TransportError(f"status answered {r.status}: {_error(r)}")
        try:
            return status_from_json(r.json())
        except (ValueError, TypeError, AttributeError) as exc:
            raise TransportError(f"status answer is not the expected JSON: {exc}") from exc

    def close(self) -> None:
        self._connection.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Response:
        return self._connection.request(method, path, timeout=self.REQUEST_TIMEOUT_S, **kwargs)


def _error(r: Response) -> str:
    try:
        return str(r.json().get("error"))
    except (ValueError, AttributeError):
        return r.text[:300]


class FixedStatus:
    """Always "allowed under ``policy_text``", with no collector: for tests and benchmarks only."""

    def __init__(self, policy_text: str):
        policy = parse_policy(policy_text)
        self._status = RecordingStatus(True, None, "fixed status (no collector asked)", policy, policy.version)

    def enrol(self, device_id: str, token: str, hostname: str) -> tuple[str, str]:
        return "", ""

    def status(self, device_id: str) -> RecordingStatus:
        return self._status

    def close(self) -> None:
        pass


class StatusPoller:
    """Enrols the device if given a token (retrying while unreachable), then waits for the status to be pushed
    (a source with ``watch`` and a collector that answers with a ``status_version``), or polls it.

    ``watch_input(callback)`` arms a one-shot call at the next input (``EventQueue.on_next_input``);
    without it the poller keeps its cadence however idle the desk is.
    """

    IDLE_AFTER_S = 10.0  # no input for this long: ask less often
    IDLE_POLL_MAX_S = 30.0  # the longest between two polls on an idle desk (unless the collector asks longer)
    # How long the collector may hold a pushed status request (it holds 85-100% of it, at most 60 s). Each
    # renewal is what an idle desk costs its collector; under the 60 s idle timeout of most balancers.
    WAIT_S = 50.0
    RETRY_FIRST_S = 0.5  # a failed push request is sent again after this, doubling up to IDLE_POLL_MAX_S

    def __init__(self, source: StatusSource, device_id: str, *, enrol_token: str | None, hostname: str,
                 interval_s: float, on_status: Callable[[RecordingStatus], None],
                 on_fatal: Callable[[BaseException], None], on_tick: Callable[[], None],
                 on_enrolled: Callable[[str, str], None] = lambda employee_id, secret: None,
                 watch_input: Callable[[Callable[[], None]], None] | None = None):
        self._source = source
        self._device_id = device_id
        self._enrol_token = enrol_token  # None: enrolled already (or a test's status source)
        self._on_enrolled = on_enrolled
        self._hostname = hostname
        self._interval_s = interval_s
        self._on_status = on_status
        self._on_fatal = on_fatal
        self._on_tick = on_tick
        self._watch_input = watch_input
        self._stop = threading.Event()
        self._wake = threading.Event()  # stop, or the first input while polls are spaced out
        self._heard_input = True  # input since the last poll (or no way to know: assume there was)
        self._spaced_out = False
        self._thread = threading.Thread(target=self._run, name="deskcorder-status", daemon=True)
        self._retry_s = self.RETRY_FIRST_S
        self.last_status: RecordingStatus | None = None
        self.last_error: str | None = None
        self.unreachable_since: float | None = None  # time.time() of the first failed poll in a row

    def poll_once(self) -> bool:
        """Ask once (enrolling first when needed); True when the collector answered. AgentError if refused."""
        return self._ask(lambda: self._source.status(self._device_id))

    @property
    def pushed(self) -> bool:
        """The collector pushes the status: the source can wait for a change, and the last answer had a version."""
        return (self.last_status is not None and self.last_status.version is not None
                and hasattr(self._source, "watch"))

    def _ask(self, fetch: Callable[[], RecordingStatus | None]) -> bool:
        """``fetch`` an answer (None: unchanged) and hand it on; the failures of the module docstring."""
        try:
            if self._enrol_token is not None:
                employee_id, secret = self._source.enrol(self._device_id, self._enrol_token, self._hostname)
                self._on_enrolled(employee_id, secret)
                self._enrol_token = None
            status = fetch()
        except TransportError as exc:
            if self._stop.is_set():
                return False  # interrupted by stop(): not an outage
            self.last_error = str(exc)
            if self.unreachable_since is None:
                self.unreachable_since = time.time()
                last = self.last_status
                log.warning("cannot ask the collector whether to record (%s); %s", exc,
                            "recording goes on under its last answer" if last and last.allowed
                            else "nothing is recorded until it answers")
                if not (last and last.allowed):  # say why nothing is recorded: not "no consent", we do not know
                    self._on_status(RecordingStatus(
                        False, "collector_unreachable", f"collector unreachable ({exc}); nothing is recorded "
                        f"until it answers", last.policy if last else None,
                        last.policy_version if last else 0))
            return False
        if status is None:  # held for the whole wait, and nothing changed
            assert self.last_status is not None
            status = self.last_status
        if self.unreachable_since is not None:
            log.warning("collector reachable again: %s", status.detail)
        self.unreachable_since = None
        self.last_error = None
        last = self.last_status
        if last is not None and (status.allowed, status.reason) != (last.allowed, last.reason):
            # The person at the desk should see consent and policy changes take effect.
            log.warning("collector: %s: %s", "recording allowed" if status.allowed else f"not recording "
                        f"({status.reason})", status.detail)
        self.last_status = status
        if status.status_poll_s is not None:
            self._interval_s = status.status_poll_s  # the fleet's cadence; the next wait uses it
        self._on_status(status)
        return True

    @property
    def enrolling(self) -> bool:
        """An enrolment token is still waiting to be exchanged (the collector has not answered yet)."""
        return self._enrol_token is not None

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._wake.set()
        interrupt = getattr(self._source, "interrupt", None)
        if interrupt is not None:
            interrupt()  # a held status request returns now
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._source.close()

    def _input(self) -> None:
        """On a listener thread, once per arming: note it; when polls are spaced out, ask now."""
        self._heard_input = True
        if self._spaced_out:
            self._wake.set()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self.pushed:
                    self._wait_for_change()
                else:
                    self._poll()  # until the collector pushes (an upgraded one), or stop
        except AgentError as exc:  # refused for good (a bad token, a revoked device): stop the agent
            self._on_fatal(exc)
        except Exception as exc:  # a bug must not leave the last "allowed" standing forever
            log.exception("status poll failed")
            self._on_fatal(AgentError(f"the consent check failed: {type(exc).__name__}: {exc}"))

    def _wait_for_change(self) -> None:
        """One pushed request: the collector answers when the status changes, or after about WAIT_S."""
        source: PushedStatusSource = self._source  # type: ignore[assignment]  # checked by ``pushed``
        since = self.last_status.version if self.last_status else None
        assert since is not None
        answered = self._ask(lambda: source.watch(self._device_id, since, self.WAIT_S))
        if self._stop.is_set():
            return
        self._on_tick()
        if answered:
            self._retry_s = self.RETRY_FIRST_S
            return
        # Jittered, so that the desks of a restarted collector do not all come back in the same instant.
        self._wake.wait(self._retry_s * (0.5 + random.random()))
        self._wake.clear()
        self._retry_s = min(self.IDLE_POLL_MAX_S, self._retry_s * 2)

    def _poll(self) -> None:
        # A fixed rate, not a fixed pause between polls: a slow answer must not stretch the time
        # a withdrawal takes to be heard beyond one interval plus that answer.
        interval = self._interval_s
        next_poll = time.monotonic() + interval
        last_input = time.monotonic()
        while True:
            self._spaced_out = interval > self._interval_s
            if self._watch_input is not None:
                self._heard_input = False
                self._watch_input(self._input)
            self._wake.wait(max(0.0, next_poll - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            self.poll_once()
            self._on_tick()
            if self.pushed:
                return
            if self._heard_input:
                last_input = now
            if now - last_input < self.IDLE_AFTER_S:
                interval = self._interval_s
                next_poll = max(next_poll + interval, now) if not self._spaced_out else now + interval
            else:  # idle: twice as long each time, up to the most (never shorter than the collector's cadence)
                interval = max(self._interval_s, min(self.IDLE_POLL_MAX_S, interval * 2))
                next_poll = now + interval
