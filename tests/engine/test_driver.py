"""StackDriver and engine discovery against the real pulumi CLI (file:// backend)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from skyplan import errors
from skyplan.provision import driver as drv
from skyplan.provision import engine as engine_mod
from skyplan.provision import forked
from skyplan.provision.protocol import Diagnostic, DriverNote, ResourceStep

pytestmark = pytest.mark.engine


def _program(**props):
    def program() -> None:
        import pulumi

        from skyplan.testing.providers import scripted_resource

        res = scripted_resource("r", **props)
        pulumi.export("rid", res.id)

    return program


def _alive(pid: int) -> bool:
    st = forked.proc_stat(pid)
    return st is not None and st[1] != "Z"


def _wait_dead(pid: int, within_s: float) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


# --- up / destroy -------------------------------------------------------------------


def test_dynamic_resource_goes_up_and_down(driver, tmp_path: Path) -> None:
    marker = tmp_path / "vm"
    events: list = []
    res = driver.up("t.up-down", _program(marker=str(marker)), timeout_s=120, on_event=events.append)

    assert res.ok, res.error
    assert marker.read_text() == "live"
    created = [e for e in events if isinstance(e, ResourceStep) and e.step == "outputs" and e.urn.endswith("::r")]
    assert res.outputs == {"rid": created[0].id}
    assert all(e.stack == "t.up-down" for e in events)
    assert res.resource_count == driver.resource_count("t.up-down") > 0
    assert driver.outputs("t.up-down") == res.outputs
    assert driver.list_stacks("t.") == ["t.up-down"]

    driver.destroy_and_remove("t.up-down")

    assert not marker.exists()
    assert driver.list_stacks() == []
    assert driver.resource_count("t.up-down") == 0


def test_provider_exception_text_is_the_error(driver) -> None:
    text = (
        "ZONE_RESOURCE_POOL_EXHAUSTED: The zone 'projects/p/zones/us-central1-a' does not have enough "
        "resources available to fulfill the request.  Try a different zone, or try again later.\n"
        "  second line: 'quoted' \"double\""
    )
    events: list = []
    res = driver.up("t.fails", _program(fail=text), timeout_s=120, on_event=events.append)

    assert not res.ok and not res.timed_out and not res.program_error
    assert res.error == text
    assert res.urn is not None and res.urn.endswith("pulumi-python:dynamic:Resource::r")
    failed = [e.urn for e in events if isinstance(e, ResourceStep) and e.step == "failed"]
    assert failed == [res.urn]
    # The engine's own "update failed" diagnostic is there too; it must not win.
    assert any(isinstance(e, Diagnostic) and e.message.startswith("update failed") for e in events)

    driver.destroy_and_remove("t.fails")
    assert driver.list_stacks() == []


def test_program_error_is_flagged(driver) -> None:
    def program() -> None:
        raise ValueError("bad placement spec in the program")

    res = driver.up("t.program-bug", program, timeout_s=120)

    assert not res.ok and res.program_error
    assert "bad placement spec in the program" in (res.error or "")
    driver.destroy_and_remove("t.program-bug")


def test_hanging_create_times_out_kills_everything_and_cleans_up(driver, tmp_path: Path) -> None:
    marker = tmp_path / "hung"
    events: list = []
    res = driver.up("t.hang", _program(hang=True, marker=str(marker)), timeout_s=3, on_event=events.append)

    assert res.timed_out and not res.ok
    assert res.urn is not None and res.urn.endswith("::r")
    assert res.interrupted == (res.urn,)
    assert res.error.startswith("timed out after 3s")
    provider_pid = int((tmp_path / "hung.started").read_text())
    assert _wait_dead(provider_pid, 5), "the hung provider process survived the timeout"
    assert any(isinstance(e, DriverNote) and "timed out" in e.message for e in events)

    seen: list[drv.InterruptedOp] = []

    def resolve(op: drv.InterruptedOp) -> bool:
        seen.append(op)
        return not Path(op.inputs["marker"]).exists()  # a hung create never wrote its resource

    driver.destroy_and_remove("t.hang", resolve_interrupted=resolve)

    assert [(op.urn, op.op) for op in seen] == [(res.urn, "creating")]
    assert seen[0].inputs["hang"] is True and "__provider" not in seen[0].inputs
    assert driver.list_stacks() == []


def test_unresolved_interrupted_create_is_a_cleanup_error(driver, tmp_path: Path) -> None:
    # The timeout must fall while the create hangs, not while the engine is still
    # starting (a loaded machine): widen it until the create was cut off.
    for timeout_s in (2, 6, 20):
        res = driver.up("t.hang2", _program(hang=True, marker=str(tmp_path / "h")), timeout_s=timeout_s)
        assert res.timed_out
        if res.interrupted:
            break
        driver.destroy_and_remove("t.hang2")
    assert res.interrupted, "the create never started within 20 s"
    # A later successful up of the same stack does not make the old interrupted create go away.
    assert driver.up("t.hang2", _program(), timeout_s=120).ok

    with pytest.raises(errors.CleanupError) as info:
        driver.destroy_and_remove("t.hang2")

    assert info.value.stack == "t.hang2"
    assert info.value.resources == [res.urn]
    assert res.urn in info.value.message
    assert "skyplan down t" in (info.value.hint or "")
    # Nothing was forgotten: the stack and its record of the interrupted create remain.
    assert driver.list_stacks() == ["t.hang2"]
    assert [op.urn for op in driver.interrupted_ops("t.hang2")] == [res.urn]

    driver.destroy_and_remove("t.hang2", forget_interrupted=True)
    assert driver.list_stacks() == []


def test_cleanup_error_when_a_delete_raises(driver, tmp_path: Path) -> None:
    gate = tmp_path / "deletes-fail"
    gate.write_text("")
    marker = tmp_path / "vm"
    prog = _program(marker=str(marker), fail_delete="QuotaExceeded: cannot delete now", fail_delete_while=str(gate))
    assert driver.up("t.sticky", prog, timeout_s=120).ok

    with pytest.raises(errors.CleanupError) as info:
        driver.destroy_and_remove("t.sticky")

    err = info.value
    assert err.stack == "t.sticky"
    assert "QuotaExceeded: cannot delete now" in err.message
    assert any(urn.endswith("::r") for urn in err.resources)
    assert any(urn.endswith("::r") for urn in err.resources if urn in err.message)
    assert marker.exists() and driver.list_stacks() == ["t.sticky"]

    gate.unlink()  # the cloud recovers; a retry finishes the job
    driver.destroy_and_remove("t.sticky")
    assert not marker.exists() and driver.list_stacks() == []


def test_destroy_and_remove_refuses_while_a_resource_remains(driver, tmp_path: Path) -> None:
    def program() -> None:
        import pulumi

        from skyplan.testing.providers import ScriptedResource

        ScriptedResource("kept", {"marker": str(tmp_path / "kept")}, pulumi.ResourceOptions(protect=True))

    assert driver.up("t.protected", program, timeout_s=120).ok

    with pytest.raises(errors.CleanupError) as info:
        driver.destroy_and_remove("t.protected")

    assert any(urn.endswith("::kept") for urn in info.value.resources)
    assert driver.resource_count("t.protected") > 0

    def unprotect() -> None:
        import pulumi

        from skyplan.testing.providers import ScriptedResource

        ScriptedResource("kept", {"marker": str(tmp_path / "kept")}, pulumi.ResourceOptions(protect=False))

    assert driver.up("t.protected", unprotect, timeout_s=120).ok
    driver.destroy_and_remove("t.protected")
    assert driver.resource_count("t.protected") == 0


def test_destroy_and_remove_of_a_missing_stack_is_a_no_op(driver) -> None:
    driver.destroy_and_remove("t.never-existed")
    driver.destroy_and_remove("t.never-existed")
    assert driver.list_stacks() == []


def test_refreshed_state_reads_the_stack_back_and_none_when_it_is_missing(driver, tmp_path: Path) -> None:
    # What the jobs controller reads a provider cloud's nodes from (skyplan.clouds.instancestate);
    # the real AWS/GCP/Azure plugins cannot refresh here, a dynamic resource can.
    assert driver.refreshed_state("t.never-existed", timeout_s=60) is None
    assert driver.up("t.refresh", _program(marker=str(tmp_path / "vm")), timeout_s=120).ok
    state = driver.refreshed_state("t.refresh", timeout_s=60)
    assert [r["type"] for r in state["resources"] if r["type"].startswith("pulumi-python:dynamic")] \
        == ["pulumi-python:dynamic:Resource"]
    driver.destroy_and_remove("t.refresh")


_KILLED_APPLY = textwrap.dedent(
    """
    import fcntl, sys
    from skyplan.provision.driver import StackDriver
    from skyplan.testing.providers import scripted_resource

    lock = open(sys.argv[3], "w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # like skyplan's cluster lock

    def program():
        scripted_resource("r", hang=True, marker=sys.argv[2])

    StackDriver(sys.argv[1]).up("t.killed", program, timeout_s=None)
    """
)


def test_rerun_after_kill_9_cleans_up(driver, backend_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "hung"
    script = tmp_path / "apply.py"
    script.write_text(_KILLED_APPLY)
    cluster_lock = tmp_path / "cluster.lock"
    proc = subprocess.Popen([sys.executable, str(script), backend_url, str(marker), str(cluster_lock)])
    try:
        end = time.monotonic() + 60
        while not (tmp_path / "hung.started").exists():
            assert proc.poll() is None, "the apply died before its create started"
            assert time.monotonic() < end, "the create never started"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()

    # The cluster lock is free at once, although the operation's process is
    # still winding down (it gets a grace period).
    with open(cluster_lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    # A re-run right away waits for the orphaned operation to stop itself, then
    # clears the lock its killed CLI left and finishes the cleanup.
    events: list = []
    assert driver.list_stacks() == ["t.killed"]
    driver.destroy_and_remove(
        "t.killed", on_event=events.append, resolve_interrupted=lambda op: not Path(op.inputs["marker"]).exists()
    )
    assert driver.list_stacks() == []
    assert any(isinstance(e, DriverNote) and "lock" in e.message and e.stack == "t.killed" for e in events)
    provider_pid = int((tmp_path / "hung.started").read_text())
    assert _wait_dead(provider_pid, 5), "the orphaned provider process survived"


# --- backend, passphrase, names ----------------------------------------------------------


def test_backend_from_argument_then_env_then_default(skyplan_home: Path, monkeypatch, tmp_path: Path) -> None:
    assert drv.resolve_backend_url(None) == f"file://{skyplan_home / 'pulumi'}"
    assert (skyplan_home / "pulumi").is_dir()
    monkeypatch.setenv("SKYPLAN_BACKEND", "s3://team-bucket/skyplan")
    assert drv.resolve_backend_url(None) == "s3://team-bucket/skyplan"
    assert drv.resolve_backend_url(f"file://{tmp_path}/arg") == f"file://{tmp_path}/arg"
    assert (tmp_path / "arg").is_dir()
    with pytest.raises(errors.InputError):
        drv.resolve_backend_url("just/a/path")


def test_stacks_land_on_the_chosen_backend(engine, skyplan_home: Path, monkeypatch, tmp_path: Path) -> None:
    from_env = tmp_path / "env-backend"
    monkeypatch.setenv("SKYPLAN_BACKEND", f"file://{from_env}")
    env_driver = drv.StackDriver()
    arg_driver = drv.StackDriver(f"file://{tmp_path / 'arg-backend'}")
    try:
        assert env_driver.up("t.where", _program(), timeout_s=120).ok
        assert (from_env / ".pulumi" / "stacks" / "skyplan" / "t.where.json").exists()
        assert arg_driver.list_stacks() == []
        assert not (skyplan_home / "pulumi" / ".pulumi").exists()
    finally:
        env_driver.destroy_and_remove("t.where")
    assert env_driver.list_stacks() == []


def test_passphrase_file_is_created_0600_once_and_reused(engine, skyplan_home: Path, monkeypatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    path = skyplan_home / "passphrase"
    assert drv.passphrase_info()["source"] == "absent"

    first = drv.StackDriver(f"file://{skyplan_home / 'b'}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert first.env["PULUMI_CONFIG_PASSPHRASE"] == secret and len(secret) >= 32

    second = drv.StackDriver(f"file://{skyplan_home / 'b'}")
    assert second.env["PULUMI_CONFIG_PASSPHRASE"] == secret
    assert drv.passphrase_info()["source"] == "file"
    # The generated passphrase really is the one stacks are encrypted with.
    try:
        assert second.up("t.secret", _program(), timeout_s=120).ok
    finally:
        first.destroy_and_remove("t.secret")


def test_env_passphrase_overrides_the_file(engine, skyplan_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "from-the-environment")
    d = drv.StackDriver(f"file://{skyplan_home / 'b'}")
    assert d.env["PULUMI_CONFIG_PASSPHRASE"] == "from-the-environment"
    assert not (skyplan_home / "passphrase").exists()
    assert drv.passphrase_info()["source"] == "env"


def test_cli_environment(engine, skyplan_home: Path) -> None:
    d = drv.StackDriver(f"file://{skyplan_home / 'b'}")
    assert d.env["PATH"].split(os.pathsep)[0] == str(engine.bin_dir)
    assert d.env["PULUMI_HOME"] == str(skyplan_home / "pulumi-home")
    assert d.env["PULUMI_BACKEND_URL"] == f"file://{skyplan_home / 'b'}"
    assert d.env["SKYPLAN_PYTHON"] == sys.executable


def test_stack_names_are_valid_unique_and_grouped_by_cluster() -> None:
    import re

    a = drv.stack_name("train", "gcp", "us-central1", "us-central1-a", "n1-highmem-8", True, 1)
    b = drv.stack_name("train", "gcp", "us-central1", "us-central1-a", "n1-highmem-8", True, 2)
    c = drv.stack_name("train", "aws", "us-east-1", None, "p3.2xlarge", False, 3)
    long = drv.stack_name("x" * 200, "azure", "eastus" * 20, "1", "Standard_NC24ads_A100_v4" * 5, False, 999)
    for name in (a, b, c, long):
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,99}", name), name
    assert len({a, b, c}) == 3
    assert all(n.startswith(drv.cluster_stack_prefix("train")) for n in (a, b, c))
    assert "us-central1-a" in a and "spot" in a and "us-east-1" in c
    assert drv.cluster_of(a) == "train"
    # A cluster whose name extends another's never matches the other's prefix.
    other = drv.stack_name("train.v2", "gcp", "r", "z", "t", False, 1)
    assert not other.startswith(drv.cluster_stack_prefix("train"))
    # Names that needed rewriting stay distinct.
    assert drv.cluster_stack_prefix("a/b") != drv.cluster_stack_prefix("a_b")


# --- engine discovery -----------------------------------------------------------------


def _fake_pulumi(path: Path, version: str, calls: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    exe = path / "pulumi"
    exe.write_text(f'#!/bin/sh\necho x >> "{calls}"\necho {version}\n')
    exe.chmod(0o755)
    return exe


def test_find_engine_prefers_skyplan_pulumi_bin_and_caches_the_version(skyplan_home: Path, monkeypatch, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    exe = _fake_pulumi(tmp_path / "custom", f"v{engine_mod.PULUMI_VERSION}", calls)
    monkeypatch.setenv("SKYPLAN_ENGINE_DIR", str(tmp_path / "engine"))
    monkeypatch.setenv("SKYPLAN_PULUMI_BIN", str(exe.parent))

    found = engine_mod.find_engine()
    assert found.pulumi_path == exe and found.version == engine_mod.PULUMI_VERSION
    engine_mod.find_engine()
    assert calls.read_text().count("x") == 1  # the second lookup used the cache

    exe.write_text(exe.read_text() + "\n")  # a new binary: size and mtime change
    engine_mod.find_engine()
    assert calls.read_text().count("x") == 2


def test_find_engine_refuses_a_wrong_version_with_a_hint(skyplan_home: Path, monkeypatch, tmp_path: Path) -> None:
    exe = _fake_pulumi(tmp_path / "old", "v3.100.0", tmp_path / "calls")
    monkeypatch.setenv("SKYPLAN_ENGINE_DIR", str(tmp_path / "engine"))
    monkeypatch.setenv("SKYPLAN_PULUMI_BIN", str(exe))
    monkeypatch.setenv("PATH", str(tmp_path / "old"))

    with pytest.raises(errors.EngineError) as info:
        engine_mod.find_engine()
    assert "v3.100.0" in info.value.message and str(exe) in info.value.message
    assert "setup.sh" in (info.value.hint or "")


def test_doctor_info_reports_the_engine(engine, skyplan_home: Path) -> None:
    info = engine_mod.doctor_info()
    assert info["ok"], info
    assert info["path"] == str(engine.pulumi_path)
    assert info["shim"] == str(engine.bin_dir / engine_mod.SHIM_NAME)
    assert info["backend"] == f"file://{skyplan_home / 'pulumi'}"
    assert info["passphrase"] == {"source": "env", "file": str(skyplan_home / "passphrase")}
    json.dumps(info)
