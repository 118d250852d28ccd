"""Each action gets its observation in the dataset: normalised coordinates, the element, a masked frame file.

Built from real events and Observation objects (the agent's model), frames
rendered with Pillow holding an e-mail address and an API token; the built
folder is read back from its files (Parquet, PNG) and with Hugging Face
``datasets``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw, ImageFont

from deskcorder.dataset import BuildOptions, build_dataset, read_table
from deskcorder.events import Event, EventKind, columns_to_table, events_to_columns
from deskcorder.observations import Box, Element, Frame, Observation
from deskcorder.privacy import FrameRedactor, Redactor

from benchmarks.frame_redaction import font_file, ocr_text

SESSION = "sess-observed-1"
SCREEN = (1600, 900)
WINDOW = Box(100, 50, 800, 400)  # client area, root coordinates
EMAIL = "miriam.okafor@example.org"
TOKEN = "ghp_" + "Zx8Kq2Lm9Np4Rs7Tv5Wy3Ab6Cd7Ef5Gh8Jk2"  # no 1/l/I or 0/O for OCR to confuse
BUTTON = Box(140, 90, 120, 30)  # the clicked element, root coordinates


def _events(t0: int = 1_700_000_000_000_000_000, session: str = SESSION) -> list[Event]:
    ev: list[Event] = []

    def add(kind: EventKind, dt_ms: int, **kw) -> int:
        seq = len(ev)
        ev.append(Event(session, seq, 1_000_000 + dt_ms * 1_000_000, t0 + dt_ms * 1_000_000, kind, **kw))
        return seq

    add(EventKind.FOCUS, 0, app_class="Notes", app_process="notes", window_title="notes.txt - Notes",
        screen_width=SCREEN[0], screen_height=SCREEN[1])
    add(EventKind.BUTTON_DOWN, 100, button="left", x=500, y=250)
    add(EventKind.BUTTON_UP, 150, button="left", x=500, y=250)
    for i, c in enumerate("hi there"):
        add(EventKind.KEY_DOWN, 1000 + 50 * i, key=c, char=c)
    add(EventKind.KEY_DOWN, 2000, key="ctrl_l")
    add(EventKind.KEY_DOWN, 2050, key="s", char="s")
    add(EventKind.KEY_UP, 2100, key="ctrl_l")
    add(EventKind.SCROLL, 3000, x=600, y=300, dx=0, dy=-2)
    add(EventKind.BUTTON_DOWN, 4000, button="left", x=200, y=105)
    add(EventKind.BUTTON_UP, 4050, button="left", x=200, y=105)
    return ev


def _frame_png(lines: list[str]) -> bytes:
    font = ImageFont.truetype(font_file("DejaVu Sans"), 16)
    image = Image.new("RGB", (WINDOW.width, WINDOW.height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((20, 30 + 30 * i), line, font=font, fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


PNG = _frame_png([f"mail me at {EMAIL} tomorrow", f"export GITHUB_TOKEN={TOKEN}", "the quarterly report draft"])


def _obs(seq: int, trigger: str, *, frame: bool = True, element: Element | None = None,
         data: bytes = PNG) -> Observation:
    return Observation(SESSION, seq, 0, 0, trigger, *SCREEN, WINDOW.x, WINDOW.y, WINDOW.width, WINDOW.height,
                       monitors=[Box(0, 0, *SCREEN)], dpi=96.0,
                       frame=Frame("png", WINDOW.width, WINDOW.height, data) if frame else None, element=element)


def _observations() -> list[Observation]:
    ev = _events()
    seq = {(e.kind, e.x, e.char): e.seq for e in ev}
    button = Element("push button", f"Send to {EMAIL}", ["enabled", "focusable"], BUTTON, ["panel", "frame"])
    return [
        _obs(seq[(EventKind.BUTTON_DOWN, 500, None)], "button_down"),
        _obs(seq[(EventKind.KEY_DOWN, None, "h")], "typing_start", frame=False),
        _obs(seq[(EventKind.KEY_DOWN, None, "s")], "hotkey", data=b"not an image"),  # cannot be checked
        _obs(seq[(EventKind.SCROLL, 600, None)], "scroll_start", frame=False),
        _obs(seq[(EventKind.BUTTON_DOWN, 200, None)], "button_down", element=button),
        _obs(999, "button_down", frame=False),  # names no action
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("observed") / "ds"
    events = columns_to_table(events_to_columns(_events()))
    build_dataset(events, out, BuildOptions(mode="internal"), observations=_observations())
    return out


def _rows(folder: Path) -> list[dict]:
    return read_table(folder, "observations").to_pylist()


def test_each_observed_action_has_one_row_with_coordinates_normalised_to_screen_and_window(built: Path) -> None:
    rows = _rows(built)
    actions = {a["action_id"]: a for a in read_table(built).to_pylist()}
    assert [r["trigger"] for r in rows] == ["button_down", "typing_start", "hotkey", "scroll_start", "button_down"]
    assert [actions[r["action_id"]]["kind"] for r in rows] == ["click", "type", "hotkey", "scroll", "click"]
    click = rows[0]
    assert click["x_screen"] == pytest.approx(500 / 1600) and click["y_screen"] == pytest.approx(250 / 900)
    assert click["x_window"] == pytest.approx((500 - 100) / 800) and click["y_window"] == pytest.approx(200 / 400)
    assert click["window_x"] == pytest.approx(100 / 1600) and click["dpi"] == 96.0
    assert rows[1]["x_screen"] is None  # typing has no position
    assert rows[3]["x_window"] == pytest.approx(500 / 800)
    stats = json.loads((built / "stats.json").read_text())["observations"]
    assert stats["unmatched"] == 1 and stats["rows"] == 5


def test_the_element_has_its_role_states_and_a_window_normalised_box_and_a_redacted_name(built: Path) -> None:
    element = _rows(built)[4]
    assert element["element_role"] == "push button"
    assert element["element_name"] == "Send to <EMAIL>"
    assert element["element_states"] == ["enabled", "focusable"] and element["element_ancestors"] == ["panel", "frame"]
    assert (element["element_x"], element["element_y"]) == (pytest.approx(40 / 800), pytest.approx(40 / 400))
    assert (element["element_width"], element["element_height"]) == (pytest.approx(120 / 800),
                                                                      pytest.approx(30 / 400))
    assert EMAIL.encode() not in b"".join(p.read_bytes() for p in built.rglob("*") if p.is_file())


def test_frames_are_masked_png_files_named_in_the_row_and_unreadable_ones_are_left_out(built: Path) -> None:
    rows = _rows(built)
    click, typed, hotkey, _, button = rows
    assert typed["frame"] is None and hotkey["frame"] is None  # no frame taken; one OCR could not check
    assert click["frame"] == f"frames/{click['episode_id']}/{click['seq_index']:05d}.png"
    files = sorted(str(p.relative_to(built)) for p in (built / "frames").rglob("*.png"))
    assert files == sorted([click["frame"], button["frame"]])
    before = ocr_text(PNG)
    assert EMAIL in before and TOKEN in before  # the OCR can read both where they are not masked
    for row in (click, button):
        with Image.open(built / row["frame"]) as image:
            assert image.format == "PNG" and image.size == (row["frame_width"], row["frame_height"])
        after = ocr_text((built / row["frame"]).read_bytes())
        assert EMAIL not in after and TOKEN not in after and "example" not in after, after
        assert "quarterly" in after  # the rest of the window is still there
        assert row["masked_regions"] >= 2
    # the button's name held the address: its box (40..160 x 40..70 in the frame) is black as well
    with Image.open(built / button["frame"]) as image:
        assert image.convert("L").crop((42, 42, 158, 68)).getextrema() == (0, 0)
    stats = json.loads((built / "stats.json").read_text())["observations"]
    assert stats["frames"] == 2 and stats["frames_left_out"] == {"undecodable": 1} and stats["elements"] == 1
    assert stats["masked_regions"] == click["masked_regions"] + button["masked_regions"]
    card = (built / "README.md").read_text()
    assert f"| regions masked in frames | {stats['masked_regions']} |" in card
    assert "| frames (masked PNG files) | 2 |" in card


def test_a_build_without_observations_writes_no_observation_files(tmp_path: Path) -> None:
    out = tmp_path / "plain"
    build_dataset(columns_to_table(events_to_columns(_events())), out)
    assert not (out / "data" / "observations").exists() and not (out / "frames").exists()
    assert json.loads((out / "stats.json").read_text())["observations"] == {}


def test_the_observations_table_loads_with_hugging_face_datasets(built: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    loaded = datasets.load_dataset(str(built), "observations", cache_dir=str(tmp_path / "cache"))
    rows = [r for split in loaded.values() for r in split]
    assert len(rows) == 5 and {r["element_role"] for r in rows} == {None, "push button"}
    schema = pq.read_schema(built / "data/observations/train-00000.parquet")
    assert schema.field("frame").metadata[b"description"].startswith(b"the frame of the window")


def test_a_frame_redactor_that_cannot_run_leaves_every_frame_out(tmp_path: Path) -> None:
    out = tmp_path / "no-ocr"
    broken = FrameRedactor(Redactor(), lang="no-such-language")
    stats = build_dataset(columns_to_table(events_to_columns(_events())), out, observations=_observations(),
                          frame_redactor=broken)
    assert stats.observations["frames"] == 0 and stats.observations["frames_left_out"] == {
        "ocr_error": 2, "undecodable": 1}
    assert not (out / "frames").exists()


def test_the_trajectory_export_writes_each_step_as_pyautogui_code_with_normalised_coordinates(
        tmp_path: Path) -> None:
    out = tmp_path / "traj"
    typed = _events()
    typed[3:11] = [Event(SESSION, e.seq, e.t_mono_ns, e.t_wall_ns, e.kind, key=c, char=c)
                   for e, c in zip(typed[3:11], "a@b.org!")]  # an address typed: the code holds <EMAIL>
    build_dataset(columns_to_table(events_to_columns(typed)), out, BuildOptions(formats=("trajectories",)),
                  observations=_observations())
    assert (out / "data/actions/train-00000.parquet").exists()  # the tables come with it
    lines = [json.loads(line) for split in ("train", "validation", "test")
             for line in (out / f"trajectories/{split}.jsonl").read_text().splitlines()]
    (episode,) = lines
    steps = episode["traj"]
    codes = [s["value"]["code"] for s in steps]
    assert codes == ["pyautogui.click(x=0.5000, y=0.5000)", "pyautogui.write('<EMAIL>!')",
                     "pyautogui.hotkey('ctrl', 's')", "pyautogui.scroll(-2, x=0.6250, y=0.6250)",
                     "pyautogui.click(x=0.1250, y=0.1375)"]
    assert [s["index"] for s in steps] == list(range(5)) and episode["task_id"].endswith("-0000")
    assert steps[0]["image"].startswith("frames/") and (out / steps[0]["image"]).is_file()
    assert steps[1]["image"] is None  # typing had no frame
    assert steps[4]["value"]["element"]["role"] == "push button"
    assert steps[4]["value"]["element"]["box"] == [0.05, 0.1, 0.15, 0.075]
    assert "a@b.org" not in (out / "trajectories/train.jsonl").read_text()


def test_pyautogui_code_for_drags_modifiers_buttons_and_keys() -> None:
    from deskcorder.dataset._trajectories import action_code

    obs = {"x_window": 0.25, "y_window": 0.5, "window_x": 0.0625, "window_y": 50 / 900, "screen_width": 1600,
           "screen_height": 900, "window_width": 800, "window_height": 400}
    base = dict(text=None, keys=None, button="left", x2=None, y2=None, dx=None, dy=None)
    assert action_code({**base, "kind": "drag", "x2": 500, "y2": 250}, obs) == (
        "pyautogui.moveTo(x=0.2500, y=0.5000)\npyautogui.dragTo(x=0.5000, y=0.5000, button='left')")
    assert action_code({**base, "kind": "click", "keys": "ctrl+shift"}, obs) == (
        "pyautogui.keyDown('ctrl')\npyautogui.keyDown('shift')\npyautogui.click(x=0.2500, y=0.5000)\n"
        "pyautogui.keyUp('shift')\npyautogui.keyUp('ctrl')")
    assert action_code({**base, "kind": "click", "button": "button8"}, obs) == (
        "pyautogui.click(x=0.2500, y=0.5000, button='button8')")
    assert action_code({**base, "kind": "right_click"}, obs) == "pyautogui.rightClick(x=0.2500, y=0.5000)"
    assert action_code({**base, "kind": "key", "keys": "page_down"}, None) == "pyautogui.press('pagedown')"
    assert action_code({**base, "kind": "hotkey", "keys": "ctrl+plus"}, None) == "pyautogui.hotkey('ctrl', '+')"
    assert action_code({**base, "kind": "scroll", "dx": 3, "dy": 0}, obs) == (
        "pyautogui.hscroll(3, x=0.2500, y=0.5000)")
    assert action_code({**base, "kind": "click"}, None) is None  # no geometry: left out


def _two_sessions() -> tuple[pa.Table, list[Observation]]:
    import dataclasses

    events, observations = _events(), _observations()
    other = [dataclasses.replace(e, session_id="sess-observed-2") for e in events]
    twin = [dataclasses.replace(o, session_id="sess-observed-2") for o in observations[:1] + observations[4:5]]
    table = columns_to_table(events_to_columns(events + other))
    return table.append_column("device_id", pa.array(["dev-a"] * len(events) + ["dev-b"] * len(other))), \
        observations + twin + [dataclasses.replace(observations[0], session_id="no-such-session")]


def test_a_dask_build_with_observations_writes_the_same_bytes(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    from deskcorder.dataset import build_dataset_distributed
    from deskcorder.privacy import Pseudonymizer

    events, observations = _two_sessions()
    key = Pseudonymizer.generate()
    options = BuildOptions(formats=("parquet", "trajectories"))
    local = build_dataset(events, tmp_path / "local", options, pseudonymizer=key, observations=observations)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        dask = build_dataset_distributed(events, tmp_path / "dask", options, client=client, partitions=2,
                                         pseudonymizer=key, observations=observations)
    assert local == dask and local.observations["frames"] == 4 and local.observations["unmatched"] == 2

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a, b = files(tmp_path / "local"), files(tmp_path / "dask")
    assert sorted(a) == sorted(b) and len([f for f in a if f.startswith("frames/")]) == 4
    # README.md names the folder it was written to; everything else must be the same bytes
    assert [f for f in a if a[f] != b[f]] == ["README.md"]
    assert a["README.md"].replace(b"/local", b"/dask") == b["README.md"]


def test_store_to_dataset_observations_stored_by_the_store_reach_the_dataset_masked(tmp_path: Path) -> None:
    """Events and observations written to a real EventStore (sealed files), built with build_from_store,
    loaded with Hugging Face ``datasets``; the address in the frame and in the element name is in no file."""
    import dataclasses
    import time
    import uuid

    from deskcorder.dataset import build_from_store
    from deskcorder.store import EventStore
    from deskcorder.wire import MSGPACK, decode_batch, encode_batch

    from .helpers import ALLOW_ALL_POLICY, TEST_ACTOR, enrol

    datasets = pytest.importorskip("datasets")
    with EventStore(tmp_path / "data") as store:
        store.set_policy(ALLOW_ALL_POLICY.replace("retention_days = 3650\n",
                                                  'retention_days = 3650\nobserve = "frames"\n'), actor=TEST_ACTOR)
        enrol(store, "frida", "frida-desk")
        session, now = uuid.uuid4().hex, time.time_ns()
        events = _events(now, session)
        body = encode_batch(uuid.uuid4().hex, "frida-desk", events_to_columns(events), MSGPACK)
        store.write_batch(decode_batch(body, MSGPACK))
        observed = [dataclasses.replace(o, session_id=session, t_wall_ns=now + 1000 * o.action_seq)
                    for o in _observations() if o.action_seq != 999 and o.trigger != "hotkey"]
        store.write_observations("frida-desk", observed)
        out = tmp_path / "ds"
        stats = build_from_store(store, out, actor=TEST_ACTOR, purpose="observations test",
                                 options=BuildOptions(formats=("parquet", "trajectories")))
        assert store.audit_entries(action="observations.read")[-1].details["n_frames"] == 2
    assert stats.observations["frames"] == 2 and stats.observations["elements"] == 1
    loaded = datasets.load_dataset(str(out), "observations", cache_dir=str(tmp_path / "cache"))
    rows = [r for split in loaded.values() for r in split]
    assert len(rows) == 4 and sum(r["frame"] is not None for r in rows) == 2
    assert [r["element_name"] for r in rows if r["element_role"]] == ["Send to <EMAIL>"]
    for row in rows:
        if row["frame"]:
            after = ocr_text((out / row["frame"]).read_bytes())
            assert EMAIL not in after and TOKEN not in after and "quarterly" in after
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert EMAIL.encode() not in everything and TOKEN.encode() not in everything


def test_dataset_stats_prints_frames_elements_and_masked_regions(built: Path) -> None:
    import re
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "stats", str(built)],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    masked = json.loads((built / "stats.json").read_text())["observations"]["masked_regions"]
    assert re.search(r"frames / UI elements\s*│\s*2 / 1\b", result.stdout), result.stdout
    assert re.search(rf"regions masked in frames\s*│\s*{masked}\b", result.stdout), result.stdout
