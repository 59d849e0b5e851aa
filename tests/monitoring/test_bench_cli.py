"""`bss bench`: the scenarios it offers (running one starts a whole stack: not done here)."""

from __future__ import annotations

from click.testing import CliRunner

from bss.tools import main

SCENARIOS = [
    "throughput",
    "chaos",
    "ordering",
    "kill",
    "license-bulk",
    "quota",
    "fairness",
    "sandbox-state",
    "reconcile",
    "events",
    "listing",
]


def test_bench_offers_its_scenarios():
    # When an operator asks `bss bench` for help
    shown = CliRunner().invoke(main, ["bench", "--help"])
    # Then the scenarios are listed, throughput by default, and the chaos knobs with them
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())  # the help wraps to the terminal's width
    assert f"--scenario [{'|'.join(SCENARIOS)}]" in text
    assert "[default: throughput]" in text
    assert "--kills" in text and "--jobs" in text
