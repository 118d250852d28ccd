"""The dataset card (``README.md`` in the dataset folder): what it holds, where it came from, what was removed.

Column documentation comes from ``_schema.py``, the same text that is in the
Parquet field metadata, so card and files cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ._options import BuildOptions
from ._schema import ACTION_COLUMNS, EPISODE_COLUMNS

if TYPE_CHECKING:
    from ._build import DatasetStats

__all__ = ["write_card"]


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_card(path: Path, stats: DatasetStats, options: BuildOptions, provenance: Mapping[str, Any]) -> None:
    files = [f"`{name}.{fmt}`" for name in ("actions", "episodes") for fmt in options.formats]
    redacted = sum(stats.redactions.values())
    parts = [
        "# Deskcorder dataset",
        "",
        "Desktop work recorded with the consent of the people at the keyboard, reduced to actions "
        "(clicks, drags, scrolls, typed text, hotkeys) grouped into episodes. Built by deskcorder "
        f"{stats.deskcorder_version}.",
        "",
        f"Files: {', '.join(files)}, `stats.json` (the figures below, machine-readable).",
        "",
        "## Contents",
        "",
        _table([("raw events", stats.events), ("sessions", stats.sessions), ("episodes", stats.episodes),
                ("actions", stats.actions), ("people", stats.persons),
                ("recorded time (s, sum of episodes)", stats.duration_s),
                ("first event (UTC)", stats.first_event_utc), ("last event (UTC)", stats.last_event_utc)],
               ("", "value")),
        "",
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
        _table([(name, v["persons"], v["episodes"], v["actions"]) for name, v in stats.splits.items()],
               ("split", "people", "episodes", "actions")),
        "",
        "## Provenance",
        "",
        _table(sorted((k, v) for k, v in provenance.items()) or [("source", "events passed to build_dataset")],
               ("", "")),
        "",
        "Each action lists in `event_seqs` the sequence numbers of exactly the raw events it was reduced "
        "from (within its session), so any action can be traced back to the recording.",
        "",
        "## Privacy",
        "",
        "- Only applications allowed by the recording policy were recorded, only while the person's "
        "consent was in force; password prompts and paused time were never recorded.",
        f"- Typed text and window titles were scanned for secrets and personal data: {redacted} spans were "
        "replaced by typed placeholders"
        + (": " + ", ".join(f"`<{k}>` {n}" for k, n in stats.redactions.items()) if redacted else "") + ".",
        f"- Session, device and person ids are keyed-HMAC pseudonyms (key id `{stats.pseudonym_key_id}`); "
        "without the key they cannot be linked to anyone. No hostname, login or e-mail is included.",
        "- Keystroke timing identifies people like a fingerprint: do not use this dataset to identify or "
        "evaluate individuals, and keep it under the same access rules as the recording.",
        "",
        "## Columns",
        "",
        "`actions`:",
        "",
        _table([(f"`{name}`", str(typ), doc) for name, typ, _, doc in ACTION_COLUMNS], ("column", "type", "meaning")),
        "",
        "`episodes`:",
        "",
        _table([(f"`{name}`", str(typ), doc) for name, typ, _, doc in EPISODE_COLUMNS],
               ("column", "type", "meaning")),
        "",
        "## Loading",
        "",
        "```python",
        "import datasets  # Hugging Face",
        'ds = datasets.load_dataset("parquet", data_files={"train": "actions.parquet"})',
        'train = ds["train"].filter(lambda a: a["split"] == "train")',
        "```",
        "",
        "## Build options",
        "",
        _table(sorted(options.to_dict().items()), ("option", "value")),
        "",
    ]
    path.write_text("\n".join(parts))
