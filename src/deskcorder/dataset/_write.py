"""Writing a dataset folder in the Hugging Face layout, atomically.

    README.md                           the card; its YAML header declares one config per table
    stats.json                          the figures, machine-readable
    data/<table>/<split>-00000.parquet  each table, one file per split (train, validation, test)
    data/<table>/<split>-00000.jsonl    the same rows as JSON lines, when the jsonl format is asked for

so ``datasets.load_dataset(folder)`` loads the actions and
``load_dataset(folder, "keystrokes")`` another table, with no other
arguments. Every split file exists, empty when no one is in that split, so
the layout does not say how many people a small build holds. An empty Parquet
file has no row group at all: ``datasets`` sizes its read batches from the
first row group, and one of 0 rows makes it fail ("BatchSize must be greater
than 0").

Everything goes to a temporary sibling folder that is renamed to the target
at the end, so a crash leaves either no dataset or a complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ._card import write_card
from ._options import BuildOptions
from ._schema import OPTIONAL_TABLES, TABLES, schemas

if TYPE_CHECKING:
    from ._build import DatasetStats

__all__ = ["read_table", "split_file", "write_dataset"]

SPLIT_NAMES = ("train", "validation", "test")


def split_file(table: str, split: str, fmt: str = "parquet") -> str:
    """Where a table's split lives inside a dataset folder."""
    return f"data/{table}/{split}-00000.{fmt}"


def read_table(folder: Path | str, table: str = "actions") -> pa.Table:
    """One table of a dataset folder, every split, in split order (train, validation, test)."""
    folder = Path(folder)
    return pa.concat_tables([pq.read_table(folder / split_file(table, s)) for s in SPLIT_NAMES])


def _arrow(df: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    # One chunk per column: how a frame happens to be chunked (one part or many) must not change the bytes.
    return df.rechunk().to_arrow().cast(schema).combine_chunks()


def _write_parquet(table: pa.Table, path: Path) -> None:
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        if table.num_rows:
            writer.write_table(table)


def written_tables(tables: Mapping[str, Any]) -> tuple[str, ...]:
    """The tables a build writes: the four always, ``observations`` when it was given observations."""
    return TABLES + tuple(t for t in OPTIONAL_TABLES if t in tables)


def write_dataset(out: Path, tables: Mapping[str, pl.DataFrame], stats: DatasetStats, options: BuildOptions,
                  provenance: Mapping[str, Any], overwrite: bool, files: Mapping[str, bytes] | None = None) -> None:
    """Write the folder; ``files`` (path inside it -> bytes: the frames) are written beside the tables."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        layout = schemas(options.mode)
        sizes: dict[str, dict[str, int]] = {}  # table -> split -> bytes in memory, for the card's dataset_info
        for name in written_tables(tables):
            schema = layout[name][1]
            df = tables[name].select(schema.names)
            (tmp / "data" / name).mkdir(parents=True)
            for split in SPLIT_NAMES:
                part = df.filter(pl.col("split") == split)
                arrow = _arrow(part, schema)
                sizes.setdefault(name, {})[split] = arrow.nbytes
                if "parquet" in options.formats:
                    _write_parquet(arrow, tmp / split_file(name, split))
                if "jsonl" in options.formats:
                    part.write_ndjson(tmp / split_file(name, split, "jsonl"))
        for rel, data in sorted((files or {}).items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (tmp / "stats.json").write_text(json.dumps(stats.as_json(), indent=2) + "\n")
        write_card(tmp / "README.md", stats, options, provenance, out.resolve(), sizes)
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        old = None
        if out.exists() and overwrite:
            # Set the old dataset aside rather than delete it first: a crash between the two renames
            # leaves it recoverable next to out, never lost with no new one in its place.
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        elif out.exists():
            out.rmdir()  # empty (checked above): the rename needs it gone
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
