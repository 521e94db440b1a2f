"""The optional config file, ``$SKYPLAN_HOME/config.yaml``.

It gets the same protection as a task: it is read through
``skyplan.spec.bounded`` (a regular file of at most 256 KiB, nesting and alias
expansion limited while parsing, duplicate keys and custom tags refused) and
must hold one YAML mapping. ``load_config`` is that structural read;
``read_config`` also checks every key:

* the settings of ``SETTINGS``, each with the environment variable that
  overrides it (``setting(name)``: the variable when set, else the file);
* a section per cloud that takes one (``ssh:`` and its pools), checked by the
  cloud itself (``Cloud.check_config``), so this module names no cloud;
* a section per product subsystem (``jobs:``, see ``PRODUCT_SECTIONS``), checked
  by its module's ``check_config``.

A finding has ``file:line:col`` and, for a misspelt key, a did-you-mean: exit 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyplan.errors import Diagnostic, SpecError

if TYPE_CHECKING:
    from skyplan.spec.source import Document

#: Setting -> (environment variable that wins over the file, what it is). Paths are
#: read relative to the config file's directory, ``~`` expanded.
SETTINGS: dict[str, tuple[str, str]] = {
    "backend": ("SKYPLAN_BACKEND", "the Pulumi backend URL (default: file:// under the skyplan home)"),
    "catalog": ("SKYPLAN_CATALOG", "the offer catalog file (default: the embedded one)"),
    "engine_dir": ("SKYPLAN_ENGINE_DIR", "where setup builds the pulumi CLI (a machine-wide cache)"),
}
#: Settings that name a file or directory.
PATH_SETTINGS = frozenset({"catalog", "engine_dir"})
#: Sections of the product's own subsystems -> the module whose ``check_config(value, cfg, path)``
#: checks it (imported only when the file has the section).
PRODUCT_SECTIONS: dict[str, str] = {
    "jobs": "skyplan.jobs.settings",
}


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
    doc = _load_document(path)
    return doc.data if doc is not None else {}


def _load_document(path: str | os.PathLike[str] | None = None) -> Document | None:
    p = Path(path) if path is not None else config_path()
    if not os.path.lexists(p):  # before importing the parser: most homes have no config file
        return None
    from skyplan.spec import bounded
    from skyplan.spec.source import parse_documents

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
        return None
    if not isinstance(docs[0].data, dict):
        line, col = docs[0].locate(())
        raise ConfigError([Diagnostic(name, line, col, "$", "the config file must be a mapping of settings")])
    return docs[0]


@dataclass(frozen=True)
class ConfigFile:
    """The checked config file: ``data`` (a mapping; empty without a file) and
    where each of its values came from, for the diagnostics of the clouds'
    sections."""

    path: str
    data: dict[str, Any] = field(default_factory=dict)
    document: Document | None = field(default=None, repr=False, compare=False)

    def diagnostic(self, path: tuple[Any, ...], message: str, suggestion: str | None = None) -> Diagnostic:
        """A finding at ``path`` (``("ssh", "pools", "lab", "hosts", 0, "port")``)."""
        from skyplan.spec.source import format_path

        line, col = self.document.locate(path) if self.document is not None else (None, None)
        return Diagnostic(self.path, line, col, format_path(path), message, suggestion)

    def resolve_path(self, value: str) -> str:
        """A path written in the file: ``~`` expanded, relative to the file's directory."""
        p = Path(os.path.expanduser(value))
        return str(p if p.is_absolute() else Path(self.path).parent / p)


_checked: dict[tuple[str, float, int], ConfigFile] = {}


def read_config(path: str | os.PathLike[str] | None = None) -> ConfigFile:
    """The config file, every key checked (``SETTINGS`` and the clouds' sections);
    ConfigError lists every finding. Cached per process while the file is unchanged."""
    p = Path(path) if path is not None else config_path()
    try:
        st = p.stat()
        key = (str(p), st.st_mtime, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _checked:
        return _checked[key]
    doc = _load_document(p)
    cfg = ConfigFile(str(p), dict(doc.data) if doc is not None else {}, doc)
    found = _check(cfg)
    if found:
        raise ConfigError(found)
    if key is not None:
        _checked[key] = cfg
    return cfg


def _check(cfg: ConfigFile) -> list[Diagnostic]:
    if not cfg.data:  # no file, or an empty one: nothing to check, no cloud to load
        return []
    import difflib

    from skyplan.clouds import registry

    sections = {n for n in registry.names() if registry.get(n).takes_config}
    known = sorted(set(SETTINGS) | sections | set(PRODUCT_SECTIONS))
    found: list[Diagnostic] = []
    for key, value in cfg.data.items():
        if key in SETTINGS:
            if not isinstance(value, str) or not value.strip():
                found.append(cfg.diagnostic((key,), f"'{key}' is {SETTINGS[key][1]}: a non-empty string"))
        elif key in PRODUCT_SECTIONS:
            import importlib

            found.extend(importlib.import_module(PRODUCT_SECTIONS[key]).check_config(value, cfg, (key,)))
        elif key in sections:
            found.extend(registry.get(key).check_config(value, cfg, (key,)))
        else:
            close = difflib.get_close_matches(str(key), known, n=1)
            found.append(cfg.diagnostic((key,), f"unknown setting '{key}' (known: {', '.join(known)})",
                                        close[0] if close else None))
    return found


def setting(name: str) -> str | None:
    """A setting's value: its environment variable when set (it wins), else the
    config file's value (a path resolved against the file), else None."""
    env, _ = SETTINGS[name]
    value = os.environ.get(env)
    if value:
        return value
    cfg = read_config()
    value = cfg.data.get(name)
    if not value:
        return None
    return cfg.resolve_path(value) if name in PATH_SETTINGS else str(value)
