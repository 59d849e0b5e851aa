"""`bss bench` (throughput) really run, small: a warm-up not counted, each measured run followed
by the naive script's on the machine as it is then, and the ratio printed is of the medians."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys

from tests.conftest import ROOT


def test_the_naive_script_runs_after_each_run_and_the_ratio_is_of_the_medians(tmp_path):
    # When an engineer benchmarks a few orders against the naive script, twice
    done = subprocess.run(
        [sys.executable, "-c", "from bss.tools import main; main()", "bench"]
        + ["--google-latency", "0"]
        + ["--jobs", "6", "--runs", "2", "--baseline", "naive"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # the bench's home, with its logs
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    # Then the warm-up is said and not counted, and each run of ours has the naive one after it
    lines = [line.strip() for line in out.splitlines()]
    assert any(re.match(r"warm-up: \d+ orders .*not counted", line) for line in lines), out
    order = [line.split(":")[0] for line in lines if re.match(r"(run|naive) \d:", line)]
    assert order == ["run 1", "naive 1", "run 2", "naive 2"], out
    ours = [float(m) for m in re.findall(r"run \d: .*?; ([\d.]+) orders/s", out)]
    naive = [float(m) for m in re.findall(r"naive \d: ([\d.]+) orders/s", out)]
    assert len(ours) == len(naive) == 2 and min(ours + naive) > 0
    # And the summary's ratio is the medians' ratio, with the machine's load beside each run
    ratio = re.search(r"median of 2, each run after ours: .*ours / naive = ([\d.]+)", out)
    assert ratio, out
    expected = statistics.median(ours) / statistics.median(naive)
    assert abs(float(ratio.group(1)) - expected) <= 0.011, (ratio.group(1), expected)
    assert out.count("load average") >= 4
    # And each run says how busy the whole machine was, and what the sandbox, Redis and the
    # bench itself spent per order beside our web and workers (a run this short is too brief
    # for the kernel's counters to bound the share by the cores)
    cores = os.cpu_count()
    busy = re.findall(rf"the machine: ([\d.]+) of {cores} cores busy", out)
    assert len(busy) == 2 and all(float(b) > 0 for b in busy), out
    others = r"besides ours: sandbox [\d.]+, redis [\d.]+, .*bench [\d.]+ ms"
    assert len(re.findall(others, out)) == 2, out
    naive_busy = re.findall(rf"naive \d: .*, ([\d.]+) of {cores} cores busy; ours / naive", out)
    assert len(naive_busy) == 2 and all(float(b) > 0 for b in naive_busy), out
