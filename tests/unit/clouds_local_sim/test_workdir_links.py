"""Workdir sync and symbolic links: links that stay inside the workdir are
copied as links into the copy; a link that leaves it is refused, and nothing
is copied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skyplan.clouds.local import runner
from skyplan.clouds.workdir import WorkdirLinkError, copy_workdir, outside_links


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "project"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "data.txt").write_text("payload\n")
    return d


def test_links_inside_are_kept_and_point_into_the_copy(src: Path, tmp_path: Path) -> None:
    (src / "rel").symlink_to("sub/data.txt")
    (src / "abs").symlink_to(src / "sub" / "data.txt")  # absolute, but inside
    (src / "dirlink").symlink_to(src / "sub")
    (src / "sub" / "up").symlink_to("../rel")  # a chain that stays inside
    (src / "dangling").symlink_to("sub/not-yet")
    dst = tmp_path / "copy"
    copy_workdir(src, dst)
    for name in ("rel", "abs", "sub/up"):
        link = dst / name
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.resolve() == (dst / "sub" / "data.txt").resolve()
    assert (dst / "dirlink").resolve() == (dst / "sub").resolve()
    assert (dst / "dangling").is_symlink() and os.readlink(dst / "dangling") == "sub/not-yet"


@pytest.mark.parametrize("target", ["/etc/hostname", "../outside.txt", "/nonexistent/path"])
def test_a_link_leaving_the_workdir_is_refused(src: Path, tmp_path: Path, target: str) -> None:
    (tmp_path / "outside.txt").write_text("secret\n")
    (src / "sub" / "leak").symlink_to(target if target.startswith("/") else "../" + target)
    assert outside_links(src) == [(os.path.join("sub", "leak"), os.readlink(src / "sub" / "leak"))]
    dst = tmp_path / "copy"
    with pytest.raises(WorkdirLinkError, match="1 symbolic link pointing outside it: 'sub/leak'"):
        copy_workdir(src, dst)
    assert not dst.exists()


def test_a_chain_that_ends_outside_is_refused(src: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").symlink_to("/etc")
    (src / "hop").symlink_to(tmp_path / "elsewhere")
    assert [rel for rel, _ in outside_links(src)] == ["hop"]


def test_the_sandbox_refuses_with_a_code_the_classifier_reads(src: Path, tmp_path: Path) -> None:
    from skyplan.clouds.local.cloud import Local
    from skyplan.errors import Kind, Scope

    (src / "creds").symlink_to(Path.home() / ".aws" / "credentials")
    root = tmp_path / "sandbox"
    with pytest.raises(runner.SandboxError, match=r"^LocalWorkdirSymlink: ") as e:
        runner.start({"cluster": "c", "stack": "c-local", "workdir": str(src), "envs": {}}, root)
    assert not root.exists()
    cls = Local().classify(str(e.value))
    assert (cls.kind, cls.scope, cls.code) == (Kind.INVALID, Scope.ALL, "LocalWorkdirSymlink")
