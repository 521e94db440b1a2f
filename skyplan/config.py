"""The optional config file, ``$SKYPLAN_HOME/config.yaml``.

No setting is read from it yet; ``load_config`` is the one way any future
setting will be read, so the file gets the same protection as a task: it is
read through ``skyplan.spec.bounded`` (a regular file of at most 256 KiB,
nesting and alias expansion limited while parsing, duplicate keys and custom
tags refused) and must hold one YAML mapping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from skyplan.errors import Diagnostic, SpecError


class ConfigError(SpecError):
    """The config file cannot be used (exit 2); every finding is listed."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        where = diagnostics[0].file if diagnostics else "the config file"
        super().__init__(diagnostics, hint=f"fix {where}, or move it away to run with the defaults")


def config_path() -> Path:
    """``$SKYPLAN_HOME/config.yaml`` (the file need not exist)."""
    from skyplan.home import home

    return home() / "config.yaml"


def load_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The config file's mapping, or ``{}`` when there is no file (or it is empty).

    Raises ConfigError for a file that is special (a FIFO, a device, a
    directory), too large, not UTF-8, malformed YAML, past a parsing limit,
    with duplicate keys or unsupported tags, or not a mapping.
    """
    from skyplan.spec import bounded
    from skyplan.spec.source import parse_documents

    p = Path(path) if path is not None else config_path()
    if not os.path.lexists(p):
        return {}
    name = str(p)
    try:
        text = bounded.read_text(p, bounded.CONFIG, name)
        docs, found = parse_documents(text, name, bounded.CONFIG)
    except SpecError as exc:
        raise ConfigError(exc.diagnostics) from None
    if found:
        raise ConfigError(found)
    docs = [d for d in docs if d.data is not None]
    if len(docs) > 1:
        line, col = docs[1].locate(())
        raise ConfigError([Diagnostic(name, line, col, "$", "the config file is one YAML document, not several")])
    if not docs:
        return {}
    if not isinstance(docs[0].data, dict):
        line, col = docs[0].locate(())
        raise ConfigError([Diagnostic(name, line, col, "$", "the config file must be a mapping of settings")])
    return docs[0].data
