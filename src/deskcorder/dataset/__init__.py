"""dataset stage: stored events -> episodes -> actions, written as a dataset folder.

``build_dataset(events, out)`` does the work on an Arrow table of events;
``build_from_store(store, out, actor=..., purpose=...)`` reads them from an
``EventStore`` (audited) and uses the store's pseudonym key;
``build_dataset_distributed`` is ``build_dataset`` on a Dask cluster, with the
same files byte for byte (``_distributed.py``). A dataset folder is in the
Hugging Face layout (``_write.py``): ``data/<table>/<split>-00000.parquet``
(and ``.jsonl``) for the tables ``actions``, ``episodes``, ``keystrokes`` and
``pointer``, ``stats.json`` and a ``README.md`` card whose YAML header makes
``datasets.load_dataset(folder)`` work. A build given observations (what was on
screen at each action: ``build_from_store`` reads them when the store holds
some) adds the ``observations`` table and its frames, ``frames/<episode_id>/
<seq_index>.png``, each masked by ``privacy.FrameRedactor`` (OCR) before it is
written (``_observations.py``); ``--format trajectories`` adds
``trajectories/<split>.jsonl``, the episodes as AgentNet-style computer-use
trajectories with PyAutoGUI code (``_trajectories.py``). The rules: ``_episodes.py`` (where
episodes start), ``_keyboard.py`` and ``_pointer.py`` (what becomes which
action), ``_reduce.py`` (how they interleave), ``_keystrokes.py`` and
``_paths.py`` (key presses and pointer paths), ``_typed.py`` (typed text
redaction), ``_release.py`` (what a release build anonymises), ``_build.py``
(privacy, split, statistics); the columns: ``_schema.py``.
"""

from ._build import SPLITS, DatasetError, DatasetStats, build_dataset
from ._distributed import ENGINES, build_dataset_distributed
from ._from_store import PSEUDONYM_KEY_FILE, build_from_store
from ._keystrokes import KEY_CLASSES
from ._options import FORMATS, MODES, BuildOptions
from ._preview import build_redactions
from ._release import RELEASE_MIN_PEOPLE
from ._schema import (
    ACTION_KINDS,
    ACTION_SCHEMA,
    EPISODE_SCHEMA,
    KEYSTROKE_SCHEMA,
    OBSERVATION_SCHEMA,
    POINTER_SCHEMA,
    RELEASE_ACTION_SCHEMA,
    RELEASE_EPISODE_SCHEMA,
    TABLES,
)
from ._write import read_table

__all__ = ["ACTION_KINDS", "ACTION_SCHEMA", "BuildOptions", "DatasetError", "DatasetStats", "ENGINES",
           "EPISODE_SCHEMA", "FORMATS", "KEYSTROKE_SCHEMA", "KEY_CLASSES", "MODES", "OBSERVATION_SCHEMA",
           "POINTER_SCHEMA",
           "PSEUDONYM_KEY_FILE", "RELEASE_ACTION_SCHEMA", "RELEASE_EPISODE_SCHEMA", "RELEASE_MIN_PEOPLE", "SPLITS",
           "TABLES", "build_dataset", "build_dataset_distributed", "build_from_store", "build_redactions", "read_table"]
