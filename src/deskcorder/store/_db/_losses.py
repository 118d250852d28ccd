"""Events the agents lost, counted per device: the GAP events of every stored batch, added up.

An agent that loses input (its queue overflowed, its spool stayed unwritable, a
listener callback failed) writes a GAP event where it happened, naming the
reason and how many (``deskcorder.events``). ``count_losses`` adds those counts
to the device's ``lost_<reason>`` columns in the transaction that registers the
batch, so a batch stored once counts once however often it was sent, on the
embedded collector and on a fleet's writers alike. Batches from agents that
write no GAP events add nothing. Counts are cumulative: retention and erasure
of events leave them (an erased device's row goes, and its counts with it).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import update
from sqlalchemy.engine import Connection, Row

from ...events import LOSS_REASONS, EventKind
from ._tables import devices

__all__ = ["LOSS_COLUMNS", "count_losses", "device_losses"]

LOSS_COLUMNS: dict[str, str] = {reason: f"lost_{reason}" for reason in LOSS_REASONS}


def count_losses(conn: Connection, device_id: str, events: pa.Table) -> None:
    """Add the batch's GAP counts to the device's loss counters (a no-op for a batch without gaps)."""
    if events.column("lost").null_count == events.num_rows:  # the usual batch: one look, no query
        return
    gaps = events.filter(pc.equal(events.column("kind"), EventKind.GAP.value))
    sums = gaps.group_by("reason").aggregate([("lost", "sum")])
    counted = {LOSS_COLUMNS[reason]: devices.c[LOSS_COLUMNS[reason]] + n
               for reason, n in zip(sums.column("reason").to_pylist(), sums.column("lost_sum").to_pylist())}
    conn.execute(update(devices).where(devices.c.device_id == device_id).values(counted))


def device_losses(row: Row) -> dict[str, int]:
    """A ``devices`` row's loss counters by reason, every reason present (0 when none was lost)."""
    return {reason: getattr(row, column) for reason, column in LOSS_COLUMNS.items()}
