"""`deskcorder dataset build|stats`: turn stored events into a training dataset, and inspect one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ._store_options import DATA_DIR, DATABASE_URL, cli_actor, fail, open_store

app = typer.Typer(help="Build training datasets from stored events, and inspect them.", no_args_is_help=True)


@app.command("build")
def build(
    out: Path = typer.Option(..., "--out", help="Folder to write the dataset to (must not exist, or be empty)."),
    data_dir: Path = DATA_DIR,
    database_url: Optional[str] = DATABASE_URL,
    session: Optional[str] = typer.Option(None, "--session", help="Only this capture session."),
    employee: Optional[str] = typer.Option(None, "--employee", help="Only this employee's events (handle)."),
    idle_gap: float = typer.Option(30.0, "--idle-gap", min=0.001, help="Seconds of inactivity that end an episode."),
    formats: list[str] = typer.Option(["parquet", "jsonl"], "--format",
                                 help="parquet, jsonl and/or trajectories (AgentNet-style trajectories/<split>.jsonl "
                                      "with the frames; parquet tables come with it) (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset at --out."),
    purpose: str = typer.Option("dataset build", "--purpose", help="Why the raw events are read (audit log)."),
    engine: str = typer.Option("local", "--engine",
                               help="local (this process) or dask (a Dask cluster); the files are the same."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="Dask scheduler address, e.g. tcp://host:8786 (--engine dask; "
                                                 "default: a local cluster)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Worker processes of the local Dask cluster (default: one per CPU)."),
    group_events: int = typer.Option(1_000_000, "--group-events", min=1,
                                     help="Read and reduce the sessions in groups of about this many events (a "
                                          "session is never split; with --engine dask each group goes to a worker "
                                          "as it is read), so the store's raw events are never all in memory; the "
                                          "files are the same."),
    internal: bool = typer.Option(False, "--internal",
                                  help="Raw key and pointer timings, wall-clock times and the store's stable "
                                       "pseudonyms, for use inside the organisation only (audited). Default: a "
                                       "release (anonymised timings, days only, fresh pseudonyms)."),
    linkable: bool = typer.Option(False, "--linkable",
                                  help="A release with the store's pseudonyms, so it can be joined with other "
                                       "linkable releases (audited)."),
) -> None:
    """Build a dataset (actions, episodes, keystrokes, pointer, stats.json, README card) from the store.

    The read of raw events and the build, with its mode, are audited.
    """
    from ..dataset import BuildOptions, DatasetError, build_from_store

    console = Console()
    try:
        options = BuildOptions(idle_gap_s=idle_gap, formats=tuple(formats),
                               mode="internal" if internal else "release", linkable=linkable)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with open_store(data_dir, database_url) as store:
        try:
            stats = build_from_store(store, out, actor=cli_actor(), purpose=purpose, options=options,
                                     session_id=session, employee=employee, overwrite=overwrite,
                                     console=console, engine=engine, scheduler_address=scheduler,
                                     workers=workers, group_events=group_events)
        except DatasetError as exc:
            raise fail(str(exc)) from exc
    _print_stats(console, stats.as_json())
    console.print(f"dataset: [bold]{out}[/bold]")


@app.command("stats")
def stats(dataset: Path = typer.Argument(..., help="A dataset folder written by `deskcorder dataset build`.")) -> None:
    """Print a built dataset's statistics (its stats.json)."""
    try:
        figures = json.loads((dataset / "stats.json").read_text())
    except FileNotFoundError:
        raise fail(f"{dataset} holds no stats.json; is it a dataset built by `deskcorder dataset build`?") from None
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read {dataset / 'stats.json'}: {exc}") from exc
    _print_stats(Console(), figures)


def _print_stats(console: Console, s: dict) -> None:
    summary = Table(title="dataset", show_header=False)
    for label, key in (("mode", "mode"), ("events", "events"), ("sessions", "sessions"), ("episodes", "episodes"),
                       ("actions", "actions"), ("key presses", "keystrokes"), ("pointer samples", "pointer_samples"),
                       ("people", "persons"), ("recorded seconds", "duration_s"),
                       ("first event (UTC)", "first_event_utc"), ("last event (UTC)", "last_event_utc")):
        summary.add_row(label, str(s.get(key)))
    redactions = s.get("redactions") or {}
    summary.add_row("redacted spans", ", ".join(f"{k} {v}" for k, v in redactions.items()) or "0")
    observed = s.get("observations") or {}
    if observed:
        summary.add_row("frames / UI elements", f"{observed.get('frames')} / {observed.get('elements')}")
        summary.add_row("regions masked in frames", str(observed.get("masked_regions")))
        summary.add_row("frames left out", str(sum((observed.get("frames_left_out") or {}).values())))
    console.print(summary)
    kinds = Table(title="actions by kind")
    kinds.add_column("kind")
    kinds.add_column("count", justify="right")
    for kind, n in (s.get("actions_by_kind") or {}).items():
        kinds.add_row(kind, str(n))
    console.print(kinds)
    apps = Table(title="applications")
    for col in ("app", "episodes", "actions", "seconds"):
        apps.add_column(col, justify="left" if col == "app" else "right")
    for app_name, v in (s.get("apps") or {}).items():
        apps.add_row(app_name, str(v.get("episodes")), str(v.get("actions")), str(v.get("duration_s")))
    console.print(apps)
