"""The dataset card (``README.md`` in the dataset folder): what it holds, where it came from, what was removed.

Column documentation comes from ``_schema.py``, the same text that is in the
Parquet field metadata, so card and files cannot disagree. The card opens with
the YAML block the Hugging Face ``datasets`` library reads: one config per
table (``actions`` the default), its files per split and its feature types.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pyarrow as pa

from ._options import BuildOptions
from ._schema import OPTIONAL_TABLES, TABLES, schemas

if TYPE_CHECKING:
    from ._build import DatasetStats

__all__ = ["write_card"]


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines)


_SPLITS = ("train", "validation", "test")
_DTYPES = {pa.string(): "string", pa.int32(): "int32", pa.int64(): "int64", pa.float64(): "float64",
           pa.bool_(): "bool"}


def _tables(stats: DatasetStats) -> tuple[str, ...]:
    """The tables of this build (the four, and observations when it has them), in the card's order."""
    return TABLES + tuple(t for t in OPTIONAL_TABLES if t in stats.splits[_SPLITS[0]])


def _yaml_header(stats: DatasetStats, options: BuildOptions, sizes: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The card's metadata block: configs (files per split) and dataset_info (features, rows per split).

    ``datasets`` cannot load a split of no rows ('Instruction "test" corresponds to no data!'), so a
    config lists only the splits that hold rows, and a table with none is no config (its empty files
    are still there). It reads a split's size only with all of name, num_bytes and num_examples (it
    ignores the block otherwise), and then checks num_examples against the rows it loaded; ``sizes``
    are the bytes of each table's split in memory (Arrow), what num_bytes means there.
    """
    fmt = "parquet" if "parquet" in options.formats else "jsonl"
    filled = {table: [s for s in _SPLITS if stats.splits[s][table]] for table in _tables(stats)}
    lines = ["---", "configs:"]
    for table in (t for t in filled if filled[t]):
        lines += [f"- config_name: {table}"] + (["  default: true"] if table == "actions" else [])
        lines += ["  data_files:"]
        lines += [f"  - split: {split}\n    path: data/{table}/{split}-*.{fmt}" for split in filled[table]]
    lines += ["dataset_info:"]
    for table, (_, schema) in schemas(options.mode).items():
        if not filled.get(table):
            continue
        lines += [f"- config_name: {table}", "  features:"]
        for field in schema:
            if pa.types.is_list(field.type):
                lines += [f"  - name: {field.name}", f"    sequence: {_DTYPES[field.type.value_type]}"]
            else:
                lines += [f"  - name: {field.name}", f"    dtype: {_DTYPES[field.type]}"]
        lines += ["  splits:"]
        lines += [f"  - name: {split}\n    num_bytes: {sizes.get(table, {}).get(split, 0)}\n"
                  f"    num_examples: {stats.splits[split][table]}" for split in filled[table]]
    return lines + ["---", ""]


_TABLE_FORMATS = ("parquet", "jsonl")


def _observed(stats: DatasetStats) -> list[str]:
    """What the observations table holds and what was masked in its frames (nothing without observations)."""
    o = stats.observations
    if not o:
        return []
    left_out = sum(o["frames_left_out"].values())
    found = ", ".join(f"`<{k}>` {n}" for k, n in o["frame_redactions"].items()) or "none"
    return [
        "Observations (what was on screen at each action; `observations` table):",
        "",
        _table([("actions with an observation", o["rows"]), ("frames (masked PNG files)", o["frames"]),
                ("UI elements", o["elements"]), ("regions masked in frames", o["masked_regions"]),
                ("frames left out (OCR could not check them)", left_out),
                ("observations matching no action", o["unmatched"])], ("", "value")),
        "",
        "Every frame's text was read by OCR (Tesseract) and each word the redactor flags was blacked out "
        f"before the frame was written (spans flagged: {found}); password fields were black already. "
        "A frame OCR could not read is not in the dataset.",
        "",
    ]


def write_card(path: Path, stats: DatasetStats, options: BuildOptions, provenance: Mapping[str, Any],
               location: Path | None = None, sizes: Mapping[str, Mapping[str, int]] | None = None) -> None:
    """Write the card; ``location`` (the folder's final path) goes into the loading snippet, ``sizes``
    (table -> split -> bytes) into the YAML header."""
    layout = schemas(options.mode)
    tables = _tables(stats)
    files = [f"`data/{name}/<split>-00000.{fmt}`" for name in tables for fmt in options.formats
             if fmt in _TABLE_FORMATS]
    files += ["`frames/<episode_id>/<seq_index>.png`"] if stats.observations.get("frames") else []
    files += ["`trajectories/<split>.jsonl`"] if "trajectories" in options.formats else []
    redacted = sum(stats.redactions.values())
    where = str(location) if location is not None else "path/to/this/folder"
    release = options.mode == "release"
    parts = _yaml_header(stats, options, sizes or {}) + [
        "# Deskcorder dataset",
        "",
        "Desktop work recorded with the consent of the people at the keyboard, reduced to actions "
        "(clicks, drags, scrolls, typed text, hotkeys) grouped into episodes, with the timing of every key "
        "press (`keystrokes`) and the pointer's paths (`pointer`). Built by deskcorder "
        f"{stats.deskcorder_version}, {'release' if release else 'internal'} build.",
        "",
        f"Files: {', '.join(files)}, `stats.json` (the figures below, machine-readable).",
        "",
        "## Contents",
        "",
        _table([("raw events", stats.events), ("sessions", stats.sessions), ("episodes", stats.episodes),
                ("actions", stats.actions), ("key presses", stats.keystrokes),
                ("pointer samples", stats.pointer_samples), ("people", stats.persons),
                ("recorded time (s, sum of episodes)", stats.duration_s),
                ("first event (UTC" + (" day)" if release else ")"), stats.first_event_utc),
                ("last event (UTC" + (" day)" if release else ")"), stats.last_event_utc)],
               ("", "value")),
        "",
        *_observed(stats),
        "Actions by kind:",
        "",
        _table(sorted(stats.actions_by_kind.items()), ("kind", "actions")),
        "",
        "Applications:",
        "",
        _table([(app, v["episodes"], v["actions"], v["duration_s"]) for app, v in stats.apps.items()],
               ("app (WM_CLASS)", "episodes", "actions", "seconds")),
        "",
        "Splits (by person: nobody is in two splits):",
        "",
        _table([(name, v["persons"], *(v[t] for t in tables)) for name, v in stats.splits.items()],
               ("split", "people", *tables)),
        "",
        "## Provenance",
        "",
        _table(sorted((k, v) for k, v in provenance.items()) or [("source", "events passed to build_dataset")],
               ("", "")),
        "",
        ("Each action says in `n_events` how many raw events it was reduced from; a release keeps no "
         "sequence numbers, which would show the gaps in the recording." if release else
         "Each action lists in `event_seqs` the sequence numbers of exactly the raw events it was reduced "
         "from (within its session), so any action can be traced back to the recording."),
        "",
        "## Privacy",
        "",
        "- Only applications allowed by the recording policy were recorded, only while the person's "
        "consent was in force; password prompts and paused time were never recorded.",
        f"- Typed text and window titles were scanned for secrets and personal data: {redacted} spans were "
        "replaced by typed placeholders"
        + (": " + ", ".join(f"`<{k}>` {n}" for k, n in stats.redactions.items()) if redacted else "") + ".",
        f"- Session, device and person ids are keyed-HMAC pseudonyms (key id `{stats.pseudonym_key_id}`); "
        "without the key they cannot be linked to anyone. No hostname, login or e-mail is included."
        + (" The key is new for this build unless it was asked to be linkable: ids of two releases do not "
           "match." if release and not options.linkable else ""),
        ("- Release build: key hold and flight times and pointer paths are draws from a model of the whole "
         "population (at least 5 people), not anyone's own rhythm; times are durations within an episode "
         "re-derived from those draws, and the only calendar time is the UTC day, shown for a person only "
         "on a set of days that at least 5 people all recorded on, so that a roster of who worked when "
         "matches each pseudonym to at least 5 people. There are no figures per person, and no split of "
         "fewer than 5 people." if release else
         "- INTERNAL build: raw key and pointer timings, which identify people like a fingerprint, and "
         "wall-clock times. Keep it under the same access rules as the recording; never publish it."),
        "- Do not use this dataset to identify, monitor or evaluate individuals.",
        "",
        "## Columns",
        "",
        *[line for table in tables for line in (
            f"`{table}`:", "",
            _table([(f"`{name}`", str(typ), doc) for name, typ, _, doc in layout[table][0]],
                   ("column", "type", "meaning")), "")],
        "## Loading",
        "",
        "Each table that holds rows is a config of this folder (`actions` is the default), with the "
        "train, validation and test splits that hold rows (a split of fewer than 5 people joins train in a "
        "release); the path below is where the folder was written (change it if you moved it):",
        "",
        "```python",
        "import datasets  # Hugging Face",
        f"actions = datasets.load_dataset({where!r})",
        f"keystrokes = datasets.load_dataset({where!r}, \"keystrokes\")",
        "print({split: rows.num_rows for split, rows in actions.items()})",
        "print({split: rows.num_rows for split, rows in keystrokes.items()})",
        "```",
        "",
        "## Build options",
        "",
        _table(sorted(options.to_dict().items()), ("option", "value")),
        "",
    ]
    path.write_text("\n".join(parts))
