"""Tables fit the terminal, and COLUMNS when piped, at 80, 120 and 200 columns,
without cutting a word or a number: plan, status and show-gpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from skyplan.cli import tables
from skyplan.cli.main import app
from skyplan.cli.tables import Col
from skyplan.state import StateDB

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
WIDTHS = (80, 120, 200)


def run(width: int, *args: object) -> str:
    r = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": str(width)})
    assert r.exit_code == 0, r.output
    return r.stdout


def check_fits(text: str, width: int, whole: list[str], words: list[str] = ()) -> None:
    """No line wider than ``width``, nothing elided, every ``whole`` string on one
    line (numbers, names), every word of ``words`` intact."""
    lines = text.splitlines()
    assert max(cell_len(line) for line in lines) <= width, text
    assert "…" not in text, text
    for w in whole:
        assert any(w in line for line in lines), f"{w!r} cut or missing at {width} columns:\n{text}"
    for phrase in words:
        for w in phrase.split():
            assert any(w in line.split() or w in line for line in lines), f"{w!r} cut at {width}:\n{text}"


@pytest.mark.parametrize("width", WIDTHS)
def test_plan_table_fits_and_keeps_words_and_prices_whole(width: int) -> None:
    out = run(width, "plan", EX / "v100.yaml", "--top", "0")
    cands = json.loads(run(width, "plan", EX / "v100.yaml", "--json"))["candidates"]
    check_fits(out, width, whole=["CLOUD", "INSTANCE", "ACCELERATORS", "REGION/ZONE"]
               + [c["instance_type"] for c in cands] + [f"{c['hourly_cost']:.2f}" for c in cands],
               words=["COST ($/hr)"])
    # AWS rows say their region, not just an AZ ID.
    aws = next(c for c in cands if c["cloud"] == "aws")
    assert aws["region"] in out and aws["zone"] in out
    if width == 80:
        assert "CHOSEN" not in out and "the first is the chosen one" in out  # dropped first, said in words
    else:
        assert "CHOSEN" in out


@pytest.mark.parametrize("width", WIDTHS)
def test_show_gpus_fits_and_never_truncates_a_price(width: int) -> None:
    out = run(width, "show-gpus", "V100")
    offers = json.loads(run(width, "show-gpus", "V100", "--json"))["offers"]
    check_fits(out, width, whole=["INSTANCE_TYPE", "ACCELERATOR", "HOURLY_PRICE"]
               + [o["instance_type"] for o in offers] + [f"$ {o['price']:.3f}" for o in offers if o["price"]])
    if width >= 200:  # nothing dropped
        assert "DEVICE_MEM" in out and "CHEAPEST_REGION" in out
    else:  # the lowest-value column goes first
        assert "DEVICE_MEM" not in out


@pytest.mark.parametrize("width", WIDTHS)
def test_show_gpus_list_fits(width: int) -> None:
    out = run(width, "show-gpus", "--all")
    check_fits(out, width, whole=["ACCELERATOR"], words=["AVAILABLE QUANTITIES"])


@pytest.mark.parametrize("width", WIDTHS)
def test_status_table_fits(width: int) -> None:
    db = StateDB()
    db.upsert_cluster("gpu-training-run-with-a-long-name", status="UP", cloud="aws", region="us-west-2",
                      zone="usw2-az1", instance_type="p4de.24xlarge", use_spot=True, hourly_cost=19.44,
                      stack="gpu-training-run-with-a-long-name.a017.aws.usw2-az1.p4de-24xlarge.spot", outputs={})
    db.upsert_cluster("cpu", status="FAILED", cloud="gcp", region="us-central1", zone="us-central1-a",
                      instance_type="n2-standard-8", use_spot=False, hourly_cost=0.39, stack=None, outputs={})
    out = run(width, "status")
    check_fits(out, width, whole=["gpu-training-run-with-a-long-name", "us-central1-a", "REGION/ZONE", "FAILED"],
               words=["us-west-2 usw2-az1"])
    stack = "gpu-training-run-with-a-long-name.a017.aws.usw2-az1.p4de-24xlarge.spot"
    # Dropped in a fixed order as the width shrinks: the stack, then the cost, then the instance type.
    assert (stack in out, "19.44" in out, "p4de.24xlarge[Spot]" in out) == {
        200: (True, True, True), 120: (False, True, True), 80: (False, False, False)}[width]


def test_piped_output_follows_columns() -> None:
    wide = run(200, "show-gpus", "V100")
    narrow = run(80, "show-gpus", "V100")
    assert max(map(len, narrow.splitlines())) <= 80 < max(map(len, wide.splitlines()))


def test_layout_drops_low_value_columns_in_their_fixed_order_before_wrapping() -> None:
    cols = [Col("NAME"), Col("A", drop=2), Col("B", drop=1), Col("TEXT", wrap=True)]
    rows = [["alpha", "a" * 10, "b" * 10, "one two three four five"]]
    full = tables.layout(cols, rows, 200)
    assert full.shown == (0, 1, 2, 3)
    # 5 + 10 + 23 + gaps: B (rank 1) goes before A; the text stays on one line.
    assert tables.layout(cols, rows, 45).shown == (0, 1, 3)
    assert tables.layout(cols, rows, 30).shown == (0, 3)
    tight = tables.layout(cols, rows, 20)
    assert tight.shown == (0, 3) and tight.widths[1] < 23 and tight.widths[1] >= len("three")
    # Prose wraps before anything is dropped.
    prose = [Col("NAME"), Col("A", drop=1), Col("CAUSE", wrap=True, prose=True)]
    assert tables.layout(prose, [["x", "aaaa", "a long cause with many words in it"]], 30).shown == (0, 1, 2)


def test_a_cell_that_cannot_fit_is_printed_whole_not_cut() -> None:
    import io

    from rich.console import Console

    out = io.StringIO()
    tables.print_table(Console(file=out, width=20), [Col("ID")], [["x" * 40]])
    assert "x" * 40 in out.getvalue()
