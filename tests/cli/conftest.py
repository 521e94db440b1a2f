from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SKYPLAN_CATALOG", raising=False)
    monkeypatch.delenv("SKYPLAN_SIMULATE", raising=False)
    monkeypatch.delenv("SKYPLAN_BACKEND", raising=False)
