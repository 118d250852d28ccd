"""The trajectory export (``--format trajectories``): episodes as computer-use trajectories, in the shape
AgentNet/OpenCUA publish theirs.

``trajectories/<split>.jsonl`` holds one JSON object per episode::

    {"task_id": "<episode_id>", "instruction": null, "person_id": ..., "split": ..., "app_class": ...,
     "window_title": ..., "traj": [{"index": 0, "image": "frames/<episode_id>/00000.png",
                                    "value": {"action_id": ..., "kind": "click",
                                              "code": "pyautogui.click(x=0.4132, y=0.2210)",
                                              "element": {"role": ..., "name": ..., "box": [x, y, w, h]}}}]}

As in AgentNet, each step pairs the image seen before the action with the
action written as PyAutoGUI code, coordinates normalised to that image (here
the window's client area: the frame is of the window alone, never the
screen), 0..1 with four decimals. ``pyautogui.write`` gets the typed text
after redaction (``<EMAIL>`` where an address was), ``pyautogui.hotkey`` and
``pyautogui.press`` the keys, ``pyautogui.scroll``/``hscroll`` the steps
(negative is down, as pynput reports and PyAutoGUI expects). A pointer
action without an observation has no geometry to normalise by and is left
out of its trajectory; ``instruction`` is null because a recording of work
has no task statement (a labelling pass may add one).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import polars as pl

__all__ = ["action_code", "trajectory_files"]

_SPLITS = ("train", "validation", "test")
_POINTER = {"click": "click", "double_click": "doubleClick", "right_click": "rightClick",
            "middle_click": "middleClick"}
# deskcorder key names (dataset/_keyboard.py) -> PyAutoGUI's KEYBOARD_KEYS where they differ.
_KEY_NAMES = {"plus": "+", "escape": "esc", "page_up": "pageup", "page_down": "pagedown", "super": "win",
              "caps_lock": "capslock", "num_lock": "numlock", "scroll_lock": "scrolllock",
              "print_screen": "printscreen", "alt_gr": "altright", "menu": "apps"}


def _key(name: str) -> str:
    return _KEY_NAMES.get(name, name)


def _xy(x: float, y: float) -> str:
    return f"x={x:.4f}, y={y:.4f}"


def action_code(action: Mapping[str, Any], obs: Mapping[str, Any] | None) -> str | None:
    """One action as PyAutoGUI code (several statements on lines of their own), or None when it cannot be
    written (a pointer action with no observation to normalise it by)."""
    kind = action["kind"]
    if kind == "type":
        return f"pyautogui.write({action['text'] or ''!r})"
    if kind == "hotkey":
        return "pyautogui.hotkey(" + ", ".join(repr(_key(k)) for k in (action["keys"] or "").split("+")) + ")"
    if kind == "key":
        return f"pyautogui.press({_key(action['keys'] or '')!r})"
    if obs is None or obs.get("x_window") is None:
        return None
    at = _xy(obs["x_window"], obs["y_window"])
    held = [_key(k) for k in (action["keys"] or "").split("+") if k]
    if kind == "scroll":
        steps = []
        if action["dy"]:
            steps.append(f"pyautogui.scroll({action['dy']}, {at})")
        if action["dx"]:
            steps.append(f"pyautogui.hscroll({action['dx']}, {at})")
        code = steps or [f"pyautogui.scroll(0, {at})"]
    elif kind == "drag":
        if action["x2"] is None:
            return None
        left = obs["window_x"] * obs["screen_width"]
        top = obs["window_y"] * obs["screen_height"]
        end = _xy((action["x2"] - left) / obs["window_width"], (action["y2"] - top) / obs["window_height"])
        code = [f"pyautogui.moveTo({at})", f"pyautogui.dragTo({end}, button={action['button'] or 'left'!r})"]
    else:
        call = _POINTER.get(kind, "click")
        button = action["button"] if call == "click" and action["button"] not in (None, "left") else None
        code = [f"pyautogui.{call}({at}" + (f", button={button!r})" if button else ")")]
    return "\n".join([*(f"pyautogui.keyDown({k!r})" for k in held), *code,
                      *(f"pyautogui.keyUp({k!r})" for k in reversed(held))])


def _element(obs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if obs is None or obs.get("element_role") is None:
        return None
    box = [obs[f"element_{k}"] for k in ("x", "y", "width", "height")]
    return {"role": obs["element_role"], "name": obs["element_name"], "states": obs["element_states"],
            "ancestors": obs["element_ancestors"], "protected": obs["element_protected"],
            "box": [round(v, 4) if v is not None else None for v in box]}


def trajectory_files(tables: Mapping[str, pl.DataFrame]) -> dict[str, bytes]:
    """``trajectories/<split>.jsonl`` for every split (empty files included, as the tables have them)."""
    actions, episodes = tables["actions"], tables["episodes"]
    observed: dict[str, dict[str, Any]] = {}
    if "observations" in tables:
        observed = {r["action_id"]: r for r in tables["observations"].iter_rows(named=True)}
    steps: dict[str, list[dict[str, Any]]] = {}
    columns = ("action_id", "episode_id", "seq_index", "kind", "text", "keys", "button", "x2", "y2", "dx", "dy")
    for action in actions.select(columns).iter_rows(named=True):
        obs = observed.get(action["action_id"])
        code = action_code(action, obs)
        if code is None:
            continue
        steps.setdefault(action["episode_id"], []).append({
            "index": len(steps.get(action["episode_id"], ())), "image": obs["frame"] if obs else None,
            "value": {"action_id": action["action_id"], "kind": action["kind"], "code": code,
                      "element": _element(obs)}})
    out: dict[str, list[str]] = {split: [] for split in _SPLITS}
    for ep in episodes.select("episode_id", "person_id", "split", "app_class", "window_title").iter_rows(named=True):
        traj = steps.get(ep["episode_id"])
        if not traj:
            continue
        out[ep["split"]].append(json.dumps({"task_id": ep["episode_id"], "instruction": None, **{
            k: ep[k] for k in ("person_id", "split", "app_class", "window_title")}, "traj": traj},
            ensure_ascii=False, sort_keys=False))
    return {f"trajectories/{split}.jsonl": "".join(line + "\n" for line in lines).encode()
            for split, lines in out.items()}
