"""Frames of the focused allowed window only, on a real X server (Xvfb + openbox) with a real collector.

The allowed window is an xterm; a magenta xterm of an app the policy does not
allow is raised over part of it, the way a chat window or a notification
covers the work. Each frame the agent sends must be the allowed window's own
contents pixel for pixel (PNG, no downscaling: the window is smaller than
the limit) and hold no magenta at all. The reference is a grab of the same
window from the root window taken before anything covered it.

Consent, the policy and the events come from the collector; the observations
the agent uploads are read through the real wire decoder as the collector
receives them (``observation_transport``). Actions are scroll steps and
keys: openbox raises a window on a click, which would uncover it.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import Xlib.display
import Xlib.X
from PIL import Image

from deskcorder._xsession import XSession
from deskcorder.capture import CREDENTIAL_FILE, Agent, AgentConfig, HandlerTransport, Response
from deskcorder.observations import Observation, decode_observations

from deskcorder._apps import GTK_FORM_CLASS

from .atspi_rig import A11yBus, a11y, gtk_form, needs_gtk  # noqa: F401  (a11y: a fixture)
from .capture_rig import FLUSH_S, Desk, terminal, wait_for
from .capture_rig import xs  # noqa: F401  (a fixture)
from .helpers import start_collector

pytestmark = pytest.mark.x11

MAGENTA = (255, 0, 255)
ALLOWED = "FrameIn"  # each test's window has a class of its own: xdotool finds windows by class


def frames_policy(wm_class: str, frames: str = 'format = "png"\n') -> str:
    return f'observe = "frames"\n[frames]\n{frames}\n[[apps]]\nwm_class = "{wm_class}"\n'


POLICY = frames_policy(ALLOWED)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    data_dir = tmp_path_factory.mktemp("frames") / "data"
    with start_collector(data_dir) as url:
        yield Desk(data_dir, url)


class Received:
    """What reached the observations endpoint, decoded as the collector decodes it."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.bodies = 0
        self._lock = threading.Lock()

    def __call__(self, body: bytes, content_type: str) -> Response:
        batch = decode_observations(body)
        with self._lock:
            self.observations.extend(batch.observations)
            self.bodies += 1
        return Response(200, {}, b'{"stored": %d}' % len(batch.observations))


@contextlib.contextmanager
def observing_agent(desk: Desk, state_dir: Path, employee: str) -> Iterator[tuple[Agent, Received]]:
    received = Received()
    config: dict[str, Any] = {"flush_interval_s": FLUSH_S, "upload_interval_s": 0.2}
    if not (state_dir / CREDENTIAL_FILE).exists():
        config["enrol_token"] = desk.token(employee)
    agent = Agent(AgentConfig(server_url=desk.url, state_dir=state_dir, **config),
                  observation_transport=HandlerTransport(received))
    agent.start()
    try:
        time.sleep(0.3)  # the X RECORD context attaches asynchronously after start
        yield agent, received
    finally:
        agent.stop()


def client_area(display: Xlib.display.Display, window: int) -> tuple[int, int, int, int]:
    win = display.create_resource_object("window", window)
    size = win.get_geometry()
    origin = display.screen().root.translate_coords(win, 0, 0)
    return int(origin.x), int(origin.y), int(size.width), int(size.height)


def root_pixels(display: Xlib.display.Display, box: tuple[int, int, int, int]) -> Image.Image:
    """What the screen shows in ``box`` (root coordinates): the reference, and proof of the cover."""
    x, y, w, h = box
    image = display.screen().root.get_image(x, y, w, h, Xlib.X.ZPixmap, 0xFFFFFFFF)
    return Image.frombytes("RGB", (w, h), image.data, "raw", "BGRX")


def decoded(observation: Observation) -> Image.Image:
    assert observation.frame is not None
    return Image.open(io.BytesIO(observation.frame.data)).convert("RGB")


def magenta_pixels(image: Image.Image) -> int:
    r, g, b = (band.point(lambda v, want=want: 255 if v == want else 0) for band, want in zip(image.split(),
                                                                                             MAGENTA))
    from PIL import ImageChops
    return sum(ImageChops.multiply(ImageChops.multiply(r, g), b).histogram()[255:])


def keep(image: Image.Image, name: str) -> None:
    """Save an image a failing comparison was about, for whoever reads the failure."""
    out = Path("test-artifacts/frames")
    out.mkdir(parents=True, exist_ok=True)
    image.save(out / name)


def employee_with_consent(desk: Desk, handle: str, policy: str = POLICY) -> str:
    desk.set_policy(policy)
    desk.add_employee(handle)
    desk.consent(handle, "give")
    return handle


def scroll_at(xs: XSession, x: int, y: int) -> None:
    xs.xdotool("mousemove", str(x), str(y), "click", "5")


def test_a_frame_is_the_allowed_windows_own_contents_even_where_another_apps_window_covers_it(
        xs: XSession, desk: Desk, tmp_path: Path) -> None:
    handle = employee_with_consent(desk, "frames-cover", POLICY)
    allowed = xs.open_window(["xterm", "-class", ALLOWED, "-title", "notes", "-bg", "#203040", "-fg", "#e0e0e0",
                              "-geometry", "70x14+0+0", "-e", "sh", "-c", "echo quarterly figures; exec cat"],
                             ALLOWED)
    xs.activate(allowed)
    display = Xlib.display.Display(xs.display)
    try:
        box = client_area(display, allowed)
        time.sleep(0.3)  # xterm has drawn its text
        reference = root_pixels(display, box)
        assert magenta_pixels(reference) == 0
        cover = xs.open_window(["xterm", "-class", "FrameChat", "-title", "chat", "-bg", "#ff00ff", "-fg", "#ff00ff",
                                "-geometry", "30x6+80+40", "-e", "cat"], "FrameChat")
        xs.activate(allowed)
        xs.xdotool("windowraise", str(cover))  # on top of the allowed window, which keeps the focus
        wait_for(lambda: magenta_pixels(root_pixels(display, box)) > 1000, "the magenta window does not cover the "
                 "allowed one")
        covered = magenta_pixels(root_pixels(display, box))

        with observing_agent(desk, tmp_path, handle) as (agent, received):
            wait_for(lambda: agent.stats()["recording"], "recording did not start in the allowed window")
            # An uncovered spot of the allowed window: a scroll step there, twice, a second apart (two frames).
            scroll_at(xs, box[0] + box[2] - 20, box[1] + box[3] - 10)
            wait_for(lambda: agent.stats()["observations"]["taken"] == 1, "no observation of the scroll", 5)
            time.sleep(1.1)
            scroll_at(xs, box[0] + box[2] - 30, box[1] + box[3] - 15)
            wait_for(lambda: agent.stats()["observations"]["taken"] == 2, "no observation of the second scroll", 5)
            assert magenta_pixels(root_pixels(display, box)) == covered  # still covered while the agent grabbed
            wait_for(lambda: len(received.observations) == 2, "the observations were not uploaded", 5)
    finally:
        display.close()

    stats = agent.stats()["observations"]
    assert stats["lost"] == dict.fromkeys(stats["lost"], 0), stats
    events = {e["seq"]: e for e in desk.stored(agent.device_id)}
    for observation in received.observations:
        frame = decoded(observation)
        assert observation.frame is not None and observation.frame.format == "png"
        assert frame.size == reference.size == (box[2], box[3])
        if frame.tobytes() != reference.tobytes() or magenta_pixels(frame):
            keep(frame, "cover-frame.png")
            keep(reference, "cover-reference.png")
        assert magenta_pixels(frame) == 0, "the covering window's colour is in the frame"
        assert frame.tobytes() == reference.tobytes(), "the frame is not the allowed window's contents"
        # Geometry to normalise by, and the action it belongs to: a stored scroll of this session.
        assert (observation.window_x, observation.window_y, observation.window_width,
                observation.window_height) == box
        assert (observation.screen_width, observation.screen_height) == (xs.width, xs.height)
        assert observation.monitors and observation.dpi and observation.dpi > 0
        assert observation.trigger == "scroll_start" and observation.session_id == agent.session_id
        assert events[observation.action_seq]["kind"] == "scroll"


def test_no_frame_before_consent_or_while_paused_and_at_most_the_rate(xs: XSession, desk: Desk,
                                                                      tmp_path: Path) -> None:
    desk.set_policy(frames_policy("FrameDraft"))
    handle = "frames-consent"
    desk.add_employee(handle)  # no consent yet
    window = terminal(xs, "FrameDraft", "draft", "60x10+0+300")
    xs.activate(window)
    display = Xlib.display.Display(xs.display)
    box = client_area(display, window)
    display.close()
    spot = (box[0] + 40, box[1] + 40)
    with observing_agent(desk, tmp_path, handle) as (agent, received):
        assert not agent.stats()["recording"]
        scroll_at(xs, *spot)
        xs.xdotool("type", "--delay", "20", "before")
        time.sleep(0.5)
        assert agent.stats()["observations"]["requested"] == 0  # nothing recorded: nothing to observe

        desk.consent(handle, "give")
        wait_for(lambda: agent.stats()["recording"], "recording did not start after consent", 5)
        xs.xdotool("type", "--delay", "20", "ab")  # one typing run: one frame
        wait_for(lambda: len(received.observations) == 1, "no frame of the typing run", 5)
        consented = received.observations[0]
        assert consented.trigger == "typing_start"

        agent.pause()
        paused_at = time.time_ns()
        time.sleep(1.1)
        scroll_at(xs, *spot)
        xs.xdotool("type", "--delay", "20", "secret")
        xs.xdotool("key", "ctrl+l")
        time.sleep(0.7)
        assert agent.stats()["observations"]["requested"] == 1  # a paused gate lets nothing through
        agent.resume()
        resumed_at = time.time_ns()
        wait_for(lambda: agent.stats()["recording"], "recording did not resume", 3)
        time.sleep(1.1)
        # Six action boundaries within about half a second: the policy's 2 per second keeps two.
        for _ in range(3):
            scroll_at(xs, *spot)
            xs.xdotool("key", "ctrl+l")
        wait_for(lambda: agent.stats()["observations"]["taken"] == 3, "no frames after resuming", 5)
        time.sleep(0.5)
        stats = agent.stats()["observations"]
        wait_for(lambda: len(received.observations) == 3, "the frames after resuming were not uploaded", 5)

    assert stats["taken"] == 3 and stats["lost"]["rate_limited"] == stats["requested"] - 3 >= 3, stats
    assert [o.trigger for o in received.observations] == ["typing_start", "scroll_start", "hotkey"]
    for observation in received.observations:
        assert not paused_at <= observation.t_wall_ns <= resumed_at, "a frame was taken while paused"
        assert magenta_pixels(decoded(observation)) == 0
    stored = desk.stored(agent.device_id)
    first_recorded = min(e["t_wall_ns"] for e in stored)
    assert all(o.t_wall_ns >= first_recorded for o in received.observations)


def test_observe_none_sends_no_observation_and_starts_nothing(xs: XSession, desk: Desk, tmp_path: Path) -> None:
    handle = employee_with_consent(desk, "frames-none", '[[apps]]\nwm_class = "FramePlain"\n')
    window = terminal(xs, "FramePlain", "plain", "60x10+600+0")
    xs.activate(window)
    with observing_agent(desk, tmp_path, handle) as (agent, received):
        wait_for(lambda: agent.stats()["recording"], "recording did not start", 5)
        xs.xdotool("mousemove", "700", "60", "click", "5", "click", "1")
        xs.xdotool("type", "--delay", "20", "hello")
        time.sleep(0.6)
        assert agent.gate.observe is None and agent.writer.on_numbered is None  # not even a call per event
        assert agent.observer._thread is None, "the observer started a thread under observe = none"
    assert received.bodies == 0 and agent.stats()["observations"]["requested"] == 0
    assert [e["char"] for e in desk.stored(agent.device_id) if e["kind"] == "key_down"] == list("hello")


def test_webp_frames_are_downscaled_to_the_policys_long_side(xs: XSession, desk: Desk, tmp_path: Path) -> None:
    handle = employee_with_consent(desk, "frames-small", frames_policy("FrameWide", "max_side = 200\n"))
    window = terminal(xs, "FrameWide", "wide", "100x20+0+420")
    xs.activate(window)
    display = Xlib.display.Display(xs.display)
    box = client_area(display, window)
    time.sleep(0.3)  # xterm has drawn
    reference = root_pixels(display, box)
    display.close()
    with observing_agent(desk, tmp_path, handle) as (agent, received):
        wait_for(lambda: agent.stats()["recording"], "recording did not start", 5)
        scroll_at(xs, box[0] + 50, box[1] + 50)
        wait_for(lambda: len(received.observations) == 1, "no frame", 5)
    observation = received.observations[0]
    assert observation.frame is not None and observation.frame.data[8:12] == b"WEBP"
    frame = decoded(observation)
    assert max(frame.size) == 200 and (observation.frame.width, observation.frame.height) == frame.size
    assert abs(frame.width / frame.height - box[2] / box[3]) < 0.02  # scaled, not cropped
    assert (observation.window_width, observation.window_height) == box[2:]  # geometry stays in screen pixels
    # Lossless WebP of the downscaled window: the same pixels as the reference scaled the same way, near enough.
    expected = reference.resize(frame.size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    from PIL import ImageChops
    difference = ImageChops.difference(frame, expected)
    if difference.getbbox() is not None:
        keep(frame, "downscaled-frame.png")
        keep(expected, "downscaled-expected.png")
    assert max(high for _, high in difference.getextrema()) == 0, difference.getbbox()


@needs_gtk
def test_the_clicked_element_is_recorded_and_a_password_field_is_black_in_the_frame(
        xs: XSession, a11y: A11yBus, desk: Desk, tmp_path: Path) -> None:  # noqa: F811
    handle = employee_with_consent(desk, "frames-form", frames_policy(GTK_FORM_CLASS))
    with gtk_form(xs, a11y) as form:
        xs.activate(form.xid)
        with observing_agent(desk, tmp_path, handle) as (agent, received):
            wait_for(lambda: agent.stats()["recording"], "recording did not start in the form", 5)
            xs.xdotool("mousemove", *map(str, form.centre("password")), "click", "1")
            xs.xdotool("type", "--delay", "30", "hunter2hunter2")
            wait_for(lambda: len(received.observations) >= 1, "no observation of the click", 10)
            time.sleep(1.1)
            xs.xdotool("mousemove", *map(str, form.centre("submit")), "click", "1")
            wait_for(lambda: any(o.element and o.element.role == "push button" for o in received.observations),
                     "no observation of the button", 10)
    clicks = [o for o in received.observations if o.trigger == "button_down"]
    password, button = clicks[0], clicks[-1]
    assert password.element is not None and password.element.protected and password.element.name is None
    assert password.frame is not None and len(password.frame.masked) == 1
    # The password field's box, in frame pixels (no downscaling here), is black: not one dot of it shows.
    frame = decoded(password)
    m = password.frame.masked[0]
    field = frame.crop((m.x, m.y, m.x + m.width, m.y + m.height))
    assert field.getextrema() == ((0, 0), (0, 0), (0, 0))
    px, py, pw, ph = form.box("password")
    assert abs(m.x - (px - password.window_x)) <= 2 and abs(m.width - pw) <= 2 and abs(m.height - ph) <= 2
    assert button.element is not None and (button.element.role, button.element.name) == ("push button", "Submit")
    bx, by, bw, bh = form.box("submit")
    b = button.element.box
    assert all(abs(a - e) <= 2 for a, e in zip((b.x, b.y, b.width, b.height), (bx, by, bw, bh)))
    # The keys typed into the password field were never recorded, and the field stays black in later frames
    # of the window (its dots would show the length): the Submit click's frame masks it too.
    assert agent.stats()["observations"]["keys_withheld_in_password_fields"] == 2 * len("hunter2hunter2")
    assert button.frame is not None and len(button.frame.masked) == 1
    later = decoded(button)
    m = button.frame.masked[0]
    assert later.crop((m.x, m.y, m.x + m.width, m.y + m.height)).getextrema() == ((0, 0), (0, 0), (0, 0))


@needs_gtk
def test_observe_elements_records_the_clicked_element_and_no_frame(xs: XSession, a11y: A11yBus, desk: Desk,
                                                                   tmp_path: Path) -> None:  # noqa: F811
    handle = employee_with_consent(desk, "frames-elements", f'observe = "elements"\n\n[[apps]]\n'
                                                            f'wm_class = "{GTK_FORM_CLASS}"\n')
    with gtk_form(xs, a11y) as form:
        xs.activate(form.xid)
        with observing_agent(desk, tmp_path, handle) as (agent, received):
            wait_for(lambda: agent.stats()["recording"], "recording did not start in the form", 5)
            xs.xdotool("mousemove", *map(str, form.centre("entry")), "click", "1")
            xs.xdotool("type", "--delay", "30", "alice")  # typing: no observation at this level
            time.sleep(1.1)
            xs.xdotool("mousemove", *map(str, form.centre("submit")), "click", "1")
            wait_for(lambda: len(received.observations) == 2, "no observation of the two clicks", 10)
            time.sleep(0.3)
    assert [o.trigger for o in received.observations] == ["button_down", "button_down"]
    assert all(o.frame is None for o in received.observations)
    assert [(o.element.role, o.element.name) for o in received.observations if o.element] == [
        ("text", "Name"), ("push button", "Submit")]
    assert agent.stats()["observations"]["frames"] == 0


def test_the_agent_loads_neither_pillow_nor_dbus_until_a_frame_or_element_is_taken() -> None:
    # observe = none must cost no memory: the agent command's imports stop short of Pillow and D-Bus.
    code = ("import sys, deskcorder.capture, deskcorder.cli.agent\n"
            "from deskcorder.capture import _observe, _x11_frames, _observation_uploader\n"
            "print(sorted(m for m in ('PIL', 'PIL.Image', 'dbus_fast', 'gi') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def _observation(seq: int, size: int) -> Observation:
    from deskcorder.observations import Frame
    png = b"\x89PNG\r\n\x1a\n" + bytes(size)
    return Observation("s" * 32, seq, 1, time.time_ns(), "button_down", 1280, 800, 0, 0, 100, 100, [], 96.0,
                       Frame("png", 100, 100, png))


def test_the_observation_uploader_retries_what_may_pass_and_counts_what_is_refused() -> None:
    from deskcorder.capture._observation_uploader import ObservationUploader

    answers = [Response(503, {"retry-after": "0"}), Response(200, {}), Response(403, {}, b'{"error": "no consent"}')]
    answers.append(Response(200, {}))  # what stop() sends last
    seen: list[list[int]] = []

    def collector(body: bytes, content_type: str) -> Response:
        seen.append([o.action_seq for o in decode_observations(body).observations])
        return answers.pop(0)

    refused: list[int] = []
    uploader = ObservationUploader(HandlerTransport(collector), "frames-test-device", interval_s=0.05,
                                   on_refused=refused.append)
    assert uploader.add(_observation(1, 10)) and uploader.add(_observation(2, 10))
    wait_for(lambda: uploader.sent == 2, "the observations were not sent after a 503")
    assert seen == [[1, 2], [1, 2]]  # the same ones again after the 503
    uploader.add(_observation(3, 10))
    wait_for(lambda: refused == [1], "a 403 was not counted as refused")
    assert uploader.waiting == 0 and uploader.refused == 1  # a 403 is final: not retried
    uploader.MAX_OUTBOX_BYTES = 4096
    uploader.interval_s = 60
    assert uploader.add(_observation(4, 2000)) and not uploader.add(_observation(5, 2000))  # full: the caller counts
    uploader.stop(timeout=1.0)
    assert uploader.sent == 3 and seen[-1] == [4]  # stop sends what waits


def test_a_mask_reaching_past_the_window_is_clipped_black_and_stays_inside_the_downscaled_frame() -> None:
    from deskcorder.capture._x11_frames import Grab, encode_frame
    from deskcorder.observations import Box, Frame, encode_observations

    white = Grab(300, 200, "BGRX", b"\xff" * (300 * 200 * 4))
    data, width, height, masked = encode_frame(white, max_side=150, fmt="webp",
                                               masks=[Box(-10, 150, 100, 100), Box(400, 0, 10, 10)])
    assert (width, height) == (150, 100)
    assert masked == [Box(0, 75, 45, 25)]  # (0, 150)-(90, 200) in the window, halved; the box off it is gone
    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.crop((0, 75, 45, 100)).getextrema() == ((0, 0), (0, 0), (0, 0))
    assert image.getpixel((60, 50)) == (255, 255, 255)
    observation = _observation(1, 0)
    observation.frame = Frame("webp", width, height, data, masked)
    assert decode_observations(encode_observations("frames-test-device", [observation])).observations[0].frame
