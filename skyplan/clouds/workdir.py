"""Workdir sync: what a task's ``workdir`` becomes on a node. Stdlib only.

The policy for symbolic links: a link whose target, fully resolved, lies inside
the workdir is copied as a link, rewritten relative so that it points at the
same file *in the copy*; a link that leaves the workdir (an absolute path
elsewhere, ``../..``, or a chain of links that ends outside, dangling or not)
is refused, and nothing is copied.

Why refuse rather than copy what the link points to: following links would
ship files the operator never put in the workdir (``~/.aws/credentials``,
``~/.ssh``, ``/etc``) to the sandbox today and to a cloud VM once workdirs are
synced there, and a link to a dataset or to ``/`` would copy without bound.
Refusing is visible: the error names each link, and the operator decides.
"""

from __future__ import annotations

import os
import shutil

#: Links named in a refusal message (the count of the rest follows).
SHOWN = 5
#: What to do about a refused link.
ADVICE = ("replace each link with a copy of what it points to, or remove it "
          "(a workdir is copied without following links that leave it)")


class WorkdirLinkError(Exception):
    """The workdir holds symbolic links that point outside it. ``links`` lists
    (path relative to the workdir, the link's text)."""

    def __init__(self, src: str, links: list[tuple[str, str]]) -> None:
        self.src = src
        self.links = links
        shown = ", ".join(f"{rel!r} -> {text!r}" for rel, text in links[:SHOWN])
        more = f" and {len(links) - SHOWN} more" if len(links) > SHOWN else ""
        n = len(links)
        super().__init__(f"workdir '{src}' has {n} symbolic link{'s' if n != 1 else ''} pointing outside it: "
                         f"{shown}{more}")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _links(top: str):  # noqa: ANN202 - yields (absolute path, path relative to top)
    """Every symbolic link under ``top``; links to directories are not descended."""
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                yield path, os.path.relpath(path, top)


def outside_links(src: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The links under ``src`` whose resolved target is outside ``src``:
    (path relative to ``src``, the link's text), in walk order."""
    root = os.path.realpath(src)
    return [(rel, os.readlink(path)) for path, rel in _links(root)
            if not _inside(os.path.realpath(path), root)]


def copy_workdir(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy ``src`` to ``dst`` (which must not exist) under the link policy above.

    Raises WorkdirLinkError, with nothing left at ``dst``, when a link leaves
    ``src``; OSError as ``shutil.copytree`` does. Links are never followed while
    copying, and each link of the copy is checked again after the copy, so a link
    made while the copy ran cannot slip through.
    """
    root = os.path.realpath(src)
    src_text = os.fspath(src)
    bad = outside_links(root)
    if bad:
        raise WorkdirLinkError(src_text, bad)
    dst = os.path.abspath(dst)
    shutil.copytree(root, dst, symlinks=True)
    late: list[tuple[str, str]] = []
    for path, rel in list(_links(dst)):
        target = os.path.realpath(os.path.join(root, rel))  # what the original link means
        if not _inside(target, root):
            late.append((rel, os.readlink(path)))
            continue
        text = os.path.relpath(os.path.join(dst, os.path.relpath(target, root)), os.path.dirname(path))
        if os.readlink(path) != text:
            os.unlink(path)
            os.symlink(text, path)
    if late:
        shutil.rmtree(dst, ignore_errors=True)
        raise WorkdirLinkError(src_text, late)
