"""Find and load the Pulumi programs: ``stacks/<cloud>/program.py``, one per cloud.

The programs live at the top of the repository (``stacks/``), and a wheel
force-includes that folder as ``skyplan/_stacks``, as it does ``schemas/``; no
top-level ``stacks`` package is ever installed. The lookup order is
``skyplan/_stacks`` on disk (an installed wheel), then ``<repo>/stacks`` (an
editable or source checkout, recognised by its pyproject.toml).

A program is imported by path, under the private module name
``skyplan._programs.<cloud>``, and must define ``build(request, ...)``. It may
import skyplan freely, but must not define classes that Pulumi pickles (dynamic
providers): those are pickled by reference to their module, which has to be
importable by name in the provider's process, so they live in
``skyplan/clouds/<cloud>/``.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

from skyplan.errors import SkyplanError

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../skyplan
_REPO_DIR = _PACKAGE_DIR.parent  # a source checkout's root
MODULE_PREFIX = "skyplan._programs."
_lock = threading.Lock()  # one import per program, even from concurrent launches


def programs_dir() -> Path:
    """The directory holding ``<cloud>/program.py`` for every cloud."""
    installed = _PACKAGE_DIR / "_stacks"
    if installed.is_dir():
        return installed
    source = _REPO_DIR / "stacks"
    if source.is_dir() and (_REPO_DIR / "pyproject.toml").is_file():
        return source
    raise SkyplanError(
        "the Pulumi programs (stacks/) are missing from the skyplan installation",
        hint="reinstall skyplan (pip install --force-reinstall skyplan), or run from a source checkout",
    )


def program_path(cloud: str) -> Path:
    return programs_dir() / cloud / "program.py"


def load(cloud: str) -> ModuleType:
    """The program module of ``cloud`` (imported once per process)."""
    name = MODULE_PREFIX + cloud
    with _lock:
        module = sys.modules.get(name)
        if module is not None:
            return module
        path = program_path(cloud)
        if not path.is_file():
            raise SkyplanError(f"no Pulumi program for cloud '{cloud}' ({path} is missing)",
                               hint="a cloud's program lives in stacks/<cloud>/program.py")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        # Registered before it runs, as a normal import would (dataclasses and
        # typing look a module up by name while its body runs).
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
