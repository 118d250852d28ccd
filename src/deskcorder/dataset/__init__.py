"""dataset stage: stored events -> episodes -> actions, written as a dataset folder.

``build_dataset(events, out)`` does the work on an Arrow table of events;
``build_from_store(store, out, actor=..., purpose=...)`` reads them from an
``EventStore`` (audited) and uses the store's pseudonym key;
``build_dataset_distributed`` is ``build_dataset`` on a Dask cluster, with the
same files byte for byte (``_distributed.py``). A dataset folder
holds ``actions.parquet``/``.jsonl``, ``episodes.parquet``/``.jsonl``,
``stats.json`` and a ``README.md`` card. The rules: ``_episodes.py`` (where
episodes start), ``_keyboard.py`` and ``_pointer.py`` (what becomes which
action), ``_reduce.py`` (how they interleave), ``_build.py`` (privacy, split,
atomic writing); the columns: ``_schema.py``.
"""

from ._build import SPLITS, DatasetError, DatasetStats, build_dataset
from ._distributed import ENGINES, build_dataset_distributed
from ._from_store import PSEUDONYM_KEY_FILE, build_from_store
from ._options import FORMATS, BuildOptions
from ._schema import ACTION_KINDS, ACTION_SCHEMA, EPISODE_SCHEMA

__all__ = ["ACTION_KINDS", "ACTION_SCHEMA", "BuildOptions", "DatasetError", "DatasetStats", "ENGINES",
           "EPISODE_SCHEMA", "FORMATS", "PSEUDONYM_KEY_FILE", "SPLITS", "build_dataset", "build_dataset_distributed",
           "build_from_store"]
