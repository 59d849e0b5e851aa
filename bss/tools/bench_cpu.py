"""CPU time of the bench stack's processes, so that `bss bench` can say what each order costs
us apart from Google's latency: each process's CPU (its own and its children's: gunicorn's and
Dramatiq's worker processes) between two readings."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import psutil

from bss.tools.processes import Supervisor


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and every process below it, alive now."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


@dataclass
class CpuReading:
    """CPU seconds per supervised process (by name) at one moment."""

    seconds: dict[str, float]

    def since(self, earlier: CpuReading) -> dict[str, float]:
        return {
            name: max(0.0, value - earlier.seconds.get(name, 0.0))
            for name, value in self.seconds.items()
        }


def read_cpu(sup: Supervisor, *names: str) -> CpuReading:
    """The CPU used so far by the supervised processes `names` (all of them when none given).
    Worker processes that exited in between are not counted: the bench kills none."""
    wanted = set(names)
    return CpuReading(
        {
            name: tree_cpu_seconds(proc.pid)
            for name, proc in sup.children
            if (not wanted or name in wanted) and proc.poll() is None
        }
    )


def self_cpu_seconds() -> float:
    """CPU seconds of this process so far (the naive baseline runs in it)."""
    times = os.times()
    return times.user + times.system


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy so far, on all its cores (every process).
    Linux counts a guest's time in user and nice already; idle and iowait are not busy, nor is
    steal (the hypervisor ran something else). The kernel's counters move in ticks and, on an
    idle core, late: over a fraction of a second the figure is rough."""
    times = psutil.cpu_times()._asdict()
    idle = ("idle", "iowait", "steal", "guest", "guest_nice")
    return sum(v for k, v in times.items() if k not in idle)
