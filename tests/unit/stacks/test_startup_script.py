"""The VM boot script, run for real with bash (destinations and marker moved to a temp dir),
and the check that only a public key reaches a program."""

from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path

import pytest
from stackmocks import PUBLIC_KEY, make_request

from skyplan.clouds import plugins, vm
from skyplan.clouds.base import SecretValues
from skyplan.clouds.plugins import plugin_status
from skyplan.clouds.vm import BOOT_MARKER, all_ports, authorized_key, node_name, skyplan_labels, startup_script


def run_script(script: str, root: Path) -> subprocess.CompletedProcess:
    script = script.replace(BOOT_MARKER, str(root / "boot-done"))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def test_absolute_mount_destinations_are_made_the_login_users(tmp_path: Path) -> None:
    (tmp_path / "src-dir").mkdir()
    (tmp_path / "src-file").write_text("x")
    dst = tmp_path / "vm"
    mounts = {f"{dst}/data": str(tmp_path / "src-dir"), f"{dst}/etc/app.conf": str(tmp_path / "src-file"),
              "~/rel": str(tmp_path / "src-dir"), "rel2": str(tmp_path / "src-file")}
    script = startup_script(make_request("aws", file_mounts=mounts), 0, getpass.getuser())
    proc = run_script(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (dst / "data").is_dir() and (dst / "etc" / "app.conf").is_file()
    assert (dst / "etc" / "app.conf").read_text() == ""  # the runtime writes it in place
    assert (dst / "data").stat().st_uid == (dst / "etc" / "app.conf").stat().st_uid == os.getuid()
    assert (tmp_path / "boot-done").exists()
    assert "rel" not in script  # relative and ~ mounts live in the workdir: the runtime's
    # Idempotent (GCP runs it at every boot): a second run keeps what the runtime wrote.
    (dst / "etc" / "app.conf").write_text("synced")
    assert run_script(script, tmp_path).returncode == 0
    assert (dst / "etc" / "app.conf").read_text() == "synced"


def test_the_script_holds_no_task_env_or_secret() -> None:
    r = make_request("gcp", envs={"GREETING": "hello-env"}, secrets=SecretValues({"TOKEN": "s3cret-value"}),
                     setup="echo setting-up", run="echo running-task")
    script = startup_script(r, 1, "ubuntu")
    for text in ("hello-env", "s3cret-value", "TOKEN", "setting-up", "running-task", "SKYPLAN_NODE_RANK"):
        assert text not in script
    assert script.startswith("#!/bin/bash\n") and script.rstrip().endswith(f"touch {BOOT_MARKER}")


def test_without_mounts_the_script_only_leaves_the_marker(tmp_path: Path) -> None:
    script = startup_script(make_request("azure"), 0, "ubuntu")
    assert "chown" not in script and "id -u" not in script
    assert run_script(script, tmp_path).returncode == 0
    assert (tmp_path / "boot-done").exists()


def test_a_login_user_that_never_appears_leaves_no_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm, "USER_WAIT_S", 1)
    (tmp_path / "src").mkdir()
    script = startup_script(make_request("aws", file_mounts={f"{tmp_path}/data": str(tmp_path / "src")}), 0,
                            "no-such-user-skyplan")
    assert run_script(script, tmp_path).returncode != 0
    assert not (tmp_path / "boot-done").exists()  # so the runtime never syncs into a root-owned path


@pytest.mark.parametrize("key", [None, "", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
                                 "-----END OPENSSH PRIVATE KEY-----", PUBLIC_KEY + "\n" + PUBLIC_KEY])
def test_only_a_single_public_key_line_is_authorised(key) -> None:  # noqa: ANN001
    with pytest.raises(ValueError):
        authorized_key(make_request("aws", ssh_public_key=key))
    assert authorized_key(make_request("aws")) == PUBLIC_KEY


def test_names_labels_and_ports() -> None:
    r = make_request("aws", stack="Team_A/run 1", ports=(8080, 22, 8080), labels={"skyplan-cluster": "spoof"})
    assert node_name(r, 3) == "team-a-run-1-3"
    assert skyplan_labels(r)["skyplan-cluster"] == "demo"  # the task cannot relabel its cluster
    assert all_ports(r) == [22, 8080]


def test_plugin_status_reports_version_and_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    status = plugin_status("aws", "pulumi-aws")
    assert not status.installed and status.version and f"v{status.version}" in status.reason
    plugin_dir = tmp_path / "plugins" / f"resource-aws-v{status.version}"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "pulumi-resource-aws").write_text("")
    assert plugins.plugin_status("aws", "pulumi-aws").path == str(plugin_dir)


def test_the_gpu_driver_wait_is_bounded_and_never_fails_the_boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm, "GPU_DRIVER_WAIT_S", 5)  # one try: no nvidia-smi here
    script = startup_script(make_request("gcp", accelerators={"V100": 1.0}), 0, "ubuntu", gpu_driver_wait=True)
    assert "nvidia-smi" in script
    proc = run_script(script.replace("sleep 5", "sleep 0"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "boot-done").exists()  # past the bound the task starts anyway
