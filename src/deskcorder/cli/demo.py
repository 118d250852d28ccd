"""`deskcorder demo`: record a work session and build a dataset from it, all on this machine."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def demo(
    data_dir: Path = typer.Option(Path("deskcorder-data"), "--data-dir", help="Where events, the control database and datasets go."),
    scripted: bool = typer.Option(
        None, "--scripted/--live",
        help="--scripted: a throw-away Xvfb desktop and a scripted session (default without DISPLAY). "
             "--live: record you on this display until Ctrl-C (default with DISPLAY)."),
) -> None:
    """Record a work session (scripted on a virtual screen, or you, live) and build a training dataset from it."""
    from .._demo import DemoDeclined, run_demo
    from .._xsession import XSessionError
    from ..dataset import DatasetError

    console = Console()
    if scripted is None:
        scripted = not os.environ.get("DISPLAY")
    try:
        result = run_demo(data_dir, scripted=scripted, console=console)
    except (XSessionError, DemoDeclined, DatasetError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    stats = result.stats
    table = Table(title="actions in the dataset")
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind, count in sorted(stats.actions_by_kind.items()):
        table.add_row(kind, str(count))
    console.print(table)
    console.print(f"session {result.session_id}: {stats.events} events -> {stats.episodes} episodes, "
                  f"{stats.actions} actions")
    redacted = ", ".join(f"<{kind}> x{n}" for kind, n in stats.redactions.items()) or "nothing"
    console.print(f"redacted before writing: {redacted}; typing in apps outside the policy was never recorded")
    observed = stats.observations
    if observed:  # the policy observes: what was seen at the actions, and what OCR found to black out
        left_out = sum(observed["frames_left_out"].values())
        console.print(f"observations: {observed['frames']} frames and {observed['elements']} UI elements reached "
                      f"the dataset; {observed['masked_regions']} regions masked in the frames"
                      + (f", {left_out} frames left out (OCR could not check them)" if left_out else ""))
    tables = "actions|episodes|keystrokes|pointer" + ("|observations" if observed else "")
    console.print(f"dataset: [bold]{result.dataset_dir}[/bold] (data/<{tables}>/"
                  f"<split>-00000.parquet and .jsonl, stats.json, README.md: "
                  f"datasets.load_dataset(\"{result.dataset_dir}\"))")
    if (result.dataset_dir / "trajectories").is_dir():
        console.print(f"trajectories: {result.dataset_dir / 'trajectories'}/<split>.jsonl (one episode a line: "
                      f"each step's masked frame and its action as PyAutoGUI code)")
