"""Find and load the JSON Schemas shipped with skyplan.

A wheel force-includes the repository's ``schemas/`` as ``skyplan/_schemas``;
an editable or source checkout reads ``<repo>/schemas`` directly. The lookup
order is: ``skyplan/_schemas`` on disk, ``<repo>/schemas``, then
``importlib.resources`` (for zipped installs, where the first two fail). Loaded schemas
are cached: callers must treat the returned dicts as read-only.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from skyplan.errors import SkyplanError

#: The schemas skyplan reads its input with, by short name. The others in
#: ``schemas/`` describe what commands print (``skyplan.contract``): ``output_schema_names``.
SCHEMA_NAMES = ("task", "pipeline", "plan")

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../skyplan
_REPO_DIR = Path(__file__).resolve().parents[2] / "schemas"  # a source checkout


def _file_name(name: str) -> str:
    return name if name.endswith(".json") else f"{name}.schema.json"


def _read_text(file_name: str) -> str:
    # An installed wheel on a normal filesystem: the cheapest lookup, no import.
    installed = _PACKAGE_DIR / "_schemas" / file_name
    if installed.is_file():
        return installed.read_text(encoding="utf-8")
    # A source or editable checkout (the pyproject marks the repository root,
    # so an unrelated site-packages/schemas folder is never picked up).
    source = _REPO_DIR / file_name
    if source.is_file() and (_REPO_DIR.parent / "pyproject.toml").is_file():
        return source.read_text(encoding="utf-8")
    try:
        # Zipped or otherwise unusual installs; importlib.resources is not free to import.
        from importlib import resources

        ref = resources.files("skyplan").joinpath("_schemas", file_name)
        if ref.is_file():
            return ref.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, OSError):
        pass
    raise SkyplanError(
        f"schema {file_name} is missing from the skyplan installation",
        hint="reinstall skyplan; the wheel must contain skyplan/_schemas",
    )


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed schema ``name`` ("task", "pipeline", "plan" or a file name)."""
    return json.loads(_read_text(_file_name(name)))


def output_schema_names() -> list[str]:
    """Every schema shipped, by short name (``common``, ``apply``, ``sim-ledger``...),
    the input schemas included: what ``--json`` output is checked against."""
    for base in (_PACKAGE_DIR / "_schemas", _REPO_DIR):
        if base.is_dir():
            return sorted(p.name[: -len(".schema.json")] for p in base.glob("*.schema.json"))
    from importlib import resources

    return sorted(r.name[: -len(".schema.json")] for r in resources.files("skyplan").joinpath("_schemas").iterdir()
                  if r.name.endswith(".schema.json"))
