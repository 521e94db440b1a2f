"""`plan --explain` on a long any_of: one table for every alternative, 80 columns wide."""

from __future__ import annotations

import io
import json
from pathlib import Path

from typer.testing import CliRunner

from skyplan.catalog import load_catalog
from skyplan.cli import views
from skyplan.cli.main import app
from skyplan.planner import explain
from skyplan.spec import load

EX = Path(__file__).resolve().parents[2] / "examples"


def _render(path: Path, width: int) -> list[str]:
    expl = explain(load(path), load_catalog())
    out = io.StringIO()
    views.render_explain(expl, out, width=width)
    return out.getvalue().splitlines()


def test_a_long_any_of_prints_one_table_with_every_alternative():
    expl = explain(load(EX / "any-of-regions.yaml"), load_catalog())
    assert len(expl) > 20  # 11 regions x 4 accelerators
    lines = _render(EX / "any-of-regions.yaml", 80)
    assert sum("CONSTRAINT" in line for line in lines) == 1  # one header, not one per alternative
    assert lines[0].startswith(f"Explain: {len(expl)} alternatives")
    for i in (1, len(expl)):
        assert any(line.lstrip().startswith(f"{i} ") for line in lines), i
    assert "region = us-west4" in "\n".join(lines)  # the last region's alternatives are in the same table


def test_the_table_fits_80_columns():
    assert max(len(line) for line in _render(EX / "any-of-regions.yaml", 80)) <= 80


def test_explain_json_numbers_the_alternatives_like_the_table():
    r = CliRunner().invoke(app, ["plan", str(EX / "any-of-regions.yaml"), "--json", "--explain"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)["explain"]
    assert [d["alternative"] for d in doc] == list(range(1, len(doc) + 1))
    assert all(d["steps"] and d["request"] for d in doc)
