"""On PostgreSQL, a job's writes in fewer round trips: each write and its timeline lines are one
statement (a data-modifying WITH), and a write that stands alone runs without a transaction of
its own around it (bss.db.one_trip_engine: autocommit, one statement is atomic by itself).

A round trip to PostgreSQL costs both sides CPU and a wait for the server's process to be
scheduled; on a busy server the waits add up. Through bss.jobs.rows a checkpoint was `BEGIN`,
the job's UPDATE, its lines, `COMMIT` (four round trips, one here); a lease `BEGIN`, the look,
the UPDATE, its line, `COMMIT` (five, two here: the look, then the UPDATE with its line); an end
keeps its transaction (what follows in it depends on what the UPDATE read back) and writes its
lines with the UPDATE (one round trip fewer). An API order does the same with its INSERT
(bss.jobs.intake_rows). SQLite has no data-modifying WITH, and its round trips are calls in
process: there the statements of bss.jobs.rows run as they are.

The lines go as one JSON array, unpacked by `json_to_recordset`, and are written only when the
write took the job's row: where the job is no longer ours, nothing is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, bindparam, column, func, insert, select, true
from sqlalchemy.sql.dml import Update

from bss.jobs.rows import (
    CHECKPOINT,
    CHECKPOINT_PROGRESS,
    EVENT,
    FINISH,
    JOB,
    LEASE,
    SUCCEED,
    Line,
)

# The parameters the statements below add to those of the UPDATE they wrap.
LINES, LINES_AT = "lines", "lines_at"


def recordset(*columns: Any) -> Any:
    """The rows of the JSON array parameter `lines` (bss.jobs.one_trip.LINES), as `line`."""
    return (
        func.json_to_recordset(bindparam(LINES, type_=JSON))
        .table_valued(*columns)
        .render_derived(name="line", with_types=True)
    )


def _with_lines(write: Update, name: str) -> Any:
    """`write` (an UPDATE of one job … RETURNING) and the timeline lines of the job it updated,
    one statement: WITH name AS (write), … INSERT the lines … SELECT what `write` returned."""
    written = write.cte(name)
    line = recordset(column("kind", String), column("message", String), column("data", JSON))
    lines = insert(EVENT).from_select(
        ["job_id", "at", "kind", "message", "data"],
        select(
            written.c.id,
            bindparam(LINES_AT, type_=EVENT.c.at.type),
            line.c.kind,
            line.c.message,
            line.c.data,
        )
        .select_from(written)
        .join(line, true()),
    )
    return select(*written.c).add_cte(lines.cte(f"{name}_lines"))


LEASE_AND_LINE = _with_lines(LEASE, "taken")
CHECKPOINT_AND_LINES = _with_lines(CHECKPOINT.returning(JOB.c.id), "saved")
CHECKPOINT_PROGRESS_AND_LINES = _with_lines(CHECKPOINT_PROGRESS.returning(JOB.c.id), "saved")
FINISH_AND_LINES = _with_lines(FINISH, "ended")
SUCCEED_AND_LINES = _with_lines(SUCCEED, "ended")


def lines_params(lines: list[Line], at: datetime) -> dict[str, Any]:
    """The parameters that carry `lines` into a statement above."""
    return {
        LINES: [{"kind": kind, "message": message, "data": data} for kind, message, data in lines],
        LINES_AT: at,
    }
