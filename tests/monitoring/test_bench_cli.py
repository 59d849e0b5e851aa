"""`bss bench`: the scenarios it offers (running most starts a whole stack: not done here)."""

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
    "webhooks",
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


def test_the_webhooks_scenario_compares_kept_alive_and_new_connections():
    # When an operator runs the webhooks scenario, small
    shown = CliRunner().invoke(
        main, ["bench", "--scenario", "webhooks", "--jobs", "20", "--concurrency", "2"]
    )
    assert shown.exit_code == 0, shown.output
    lines = [line.strip() for line in shown.output.splitlines() if "POSTs from" in line]
    # Then each round shows both ways, with the connections the receiver really accepted:
    # one per thread when kept alive, one per POST otherwise
    assert [line.split(":")[0] for line in lines] == ["kept-alive", "new per POST"] * 2
    for line in lines:
        expected = "2 connections" if line.startswith("kept-alive") else "20 connections"
        assert expected in line and "ms of our CPU per POST" in line and "load" in line, line
