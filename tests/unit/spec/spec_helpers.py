from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from skyplan.errors import Diagnostic, SpecError
from skyplan.spec import load_text

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures"
SEED_FIXTURES = sorted((FIXTURES / "seeds").glob("*.yaml"))
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def spec_errors(text: str, filename: str = "t.yaml") -> list[Diagnostic]:
    """The diagnostics load_text raises for ``text`` (dedented); fails the test if it loads."""
    with pytest.raises(SpecError) as info:
        load_text(textwrap.dedent(text), filename)
    return info.value.diagnostics


def one_error(text: str) -> Diagnostic:
    found = spec_errors(text)
    assert len(found) == 1, [d.format() for d in found]
    return found[0]


def load(text: str):
    return load_text(textwrap.dedent(text), "t.yaml")
