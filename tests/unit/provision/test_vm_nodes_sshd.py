"""The VM launch hook (``skyplan.provision.nodes``) and log source
(``skyplan.clouds.vmnodes``) against a real sshd standing in for a VM: the
cluster's generated key logs in, the host key is recorded in skyplan's own
known_hosts file of the cluster, the workdir is synced, the task started with its
envs and secrets, and its output and exit read back. Skipped without sshd
(unless SKYPLAN_REQUIRE_SSHD=1, as in CI)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from skyplan.clouds import vm, vmnodes
from skyplan.clouds.base import ProvisionRequest, SecretValues
from skyplan.provision import nodes
from skyplan.provision.outcome import task_outcome
from skyplan.runtime import keys, sync_api


def test_a_task_is_brought_up_on_a_real_sshd(private_sshd: Any, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))
    marker = tmp_path / "boot-done"  # the boot script's marker, here rather than under /var/lib
    monkeypatch.setattr(vm, "BOOT_MARKER", str(marker))
    pub = keys.ensure_key("train")
    with open(Path(private_sshd.dir) / "authorized_keys", "a") as fh:  # what the program authorises on a VM
        fh.write(pub + "\n")
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "msg.txt").write_text("synced")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.txt").write_text("dir-mount")
    (tmp_path / "app.conf").write_text("file-mount")
    vm_root = tmp_path / "vm"  # stands for / on the VM
    mounts = {f"{vm_root}/data": str(tmp_path / "data"), f"{vm_root}/etc/app.conf": str(tmp_path / "app.conf")}
    stack = f"train.a001.t{uuid.uuid4().hex[:8]}"
    req = ProvisionRequest(
        cluster="train", stack=stack, cloud="aws", region="us-east-1", zone="use1-az1", instance_type="m6i.large",
        use_spot=False, workdir=str(wd), file_mounts=mounts, envs={"GREETING": "hi"}, secrets=SecretValues({"TOKEN": "t0k"}),
        setup="echo setup-ran",
        run='echo "$GREETING $(cat msg.txt) rank=$SKYPLAN_NODE_RANK ips=$SKYPLAN_NODE_IPS token=${#TOKEN}"; '
            f'cat {vm_root}/data/d.txt {vm_root}/etc/app.conf; echo " fs=${{SKYPLAN_FS_ROOT:-none}}"',
        ssh_public_key=pub)
    outputs = {"cluster": "train", "stack": stack, "ssh_user": private_sshd.user, "ssh_port": private_sshd.port,
               "public_ips": [private_sshd.host], "private_ips": ["10.9.8.7"]}
    (addr,) = vmnodes.addresses(outputs)
    node = sync_api.open_node(addr)
    phases: list[tuple[str, str]] = []
    try:
        # The boot script has not finished: the hook waits for its marker (bounded).
        with pytest.raises(Exception, match="did not finish its boot script"):
            nodes.start_task(req, outputs, wait_s=2, poll_s=0.5)
        # The boot script, as root at boot: the mounts' destinations made the login user's, the marker left.
        boot = subprocess.run(["bash", "-c", vm.startup_script(req, 0, private_sshd.user)], capture_output=True,
                              text=True, timeout=60)
        assert boot.returncode == 0, boot.stderr
        assert marker.exists() and (vm_root / "data").is_dir() and (vm_root / "etc" / "app.conf").read_text() == ""
        nodes.start_task(req, outputs, wait_s=60, poll_s=0.5, on_phase=lambda p, d: phases.append((p, d)))
        assert [p for p, _ in phases][-2:] == [nodes.SYNCING, nodes.STARTING]
        source = vmnodes.log_source(outputs)
        assert source is not None
        text = "".join(source.follow())
        assert "setup-ran" in text and "hi synced rank=0 ips=10.9.8.7 token=3" in text
        # The file mounts are at their real paths on a VM, written in place (no SKYPLAN_FS_ROOT).
        assert "dir-mountfile-mount fs=none" in text
        assert (vm_root / "etc" / "app.conf").read_text() == "file-mount"
        assert "t0k" not in text
        assert source.status()["phase"] == "done"
        assert task_outcome(source).status == "succeeded"
        # Its host key was recorded, on first contact, in skyplan's file of the cluster.
        recorded = keys.known_hosts_path("train").read_text()
        assert f"[{private_sshd.host}]:{private_sshd.port} ssh-ed25519 " in recorded
    finally:
        sync_api.run(node.remove(), timeout=60)  # the remote sandbox, under this machine's ~/.skyplan
        sync_api.run(node.close(), timeout=10)
    keys.remove("train")
    assert not keys.known_hosts_path("train", create=False).exists()
