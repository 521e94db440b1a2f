"""The launch path of a cloud whose VMs skyplan reaches over SSH (``nodes_over_ssh``):
the cluster's key goes to the program, and after ``up`` the launch waits for the
nodes, syncs and starts the task through the node runtime; logs and status read
through it; ``down`` forgets the key. Real VMs are unreachable here: the runtime
is a fake implementing the same ``NodeRuntime`` protocol, and the driver a
scripted one."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

import pytest

from skyplan.clouds import registry
from skyplan.clouds.base import PreflightResult
from skyplan.clouds.vm import BOOT_MARKER
from skyplan.errors import ProvisionFailed
from skyplan.planner import make_plan
from skyplan.provision import nodes
from skyplan.provision.events import AttemptDone
from skyplan.provision.launch import LaunchOptions, LaunchRequest, down, launch
from skyplan.provision.outcome import task_outcome
from skyplan.provision.progress import Phase
from skyplan.provision.protocol import UpResult
from skyplan.runtime import keys, sync_api
from skyplan.runtime.protocol import ExecResult, NodeAddress, NodeRuntime, NodeStatus, RuntimeFailure, TaskSpec
from skyplan.spec import load_text
from skyplan.testing.fakes import FakeCatalog, FakeDriver, offer

CAT = FakeCatalog([offer("aws", "m6i.xlarge", "us-east-1", z, vcpus=4, mem=16, price=0.2)
                   for z in ("use1-az1", "use1-az2")])


class FakeNode:
    """A node behind the NodeRuntime protocol, scripted per host."""

    def __init__(self, address: NodeAddress, world: "World") -> None:
        self.address = address
        self.world = world
        self.task: TaskSpec | None = None
        self.synced: tuple[str | None, dict[str, str]] | None = None
        self.status_calls = 0
        self.booted_after = world.booted_after

    def _log(self, what: str) -> None:
        self.world.calls.append((self.address.rank, what))

    async def sync(self, workdir: str | None, file_mounts: Mapping[str, str]) -> None:
        self._log("sync")
        self.synced = (workdir, dict(file_mounts))

    async def start(self, task: TaskSpec) -> None:
        self._log("start")
        self.task = task

    async def status(self, timeout_s: float = 20.0) -> NodeStatus:
        self.status_calls += 1
        rank = self.address.rank
        silent = self.world.silent.get(self.address.host, 0)
        if silent is None or self.status_calls <= silent:
            return NodeStatus(rank, "unreachable", detail=self.world.unreachable_detail)
        if self.task is None:
            return NodeStatus(rank, "absent")
        code = self.world.exit_codes.get(rank, 0)
        return NodeStatus(rank, "succeeded" if code == 0 else "failed", code, None if code == 0 else "run")

    async def read_log(self, offset: int = 0) -> tuple[bytes, int]:
        data = f"hello from node {self.address.rank}\n".encode()[offset:] if self.task else b""
        return data, offset + len(data)

    async def follow(self, offset: int = 0, poll_s: float = 0.5) -> AsyncIterator[bytes]:
        data, _ = await self.read_log(offset)
        yield data

    async def exec(self, command: str, timeout_s: float | None = None) -> ExecResult:
        self._log(f"exec {command}")
        if command == f"test -e {BOOT_MARKER}":
            self.booted_after -= 1
            return ExecResult(0 if self.booted_after < 0 else 1, b"")
        return ExecResult(0, b"")

    async def stop(self) -> NodeStatus:  # pragma: no cover
        return NodeStatus(self.address.rank, "stopped")

    async def remove(self) -> None:  # pragma: no cover
        pass

    async def close(self) -> None:
        pass


class World:
    """Every fake node opened, and how hosts behave: ``silent[host]`` = status calls
    that find it unreachable first (None: never answers)."""

    def __init__(self) -> None:
        self.nodes: dict[NodeAddress, FakeNode] = {}
        self.calls: list[tuple[int, str]] = []
        self.silent: dict[str, int | None] = {}
        self.exit_codes: dict[int, int] = {}
        self.booted_after = 0
        self.unreachable_detail = "SshUnreachable: connection refused"

    def make(self, address: NodeAddress) -> FakeNode:
        node = self.nodes[address] = FakeNode(address, self)
        return node


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    w = World()
    monkeypatch.setattr(sync_api, "_nodes", {})
    monkeypatch.setattr(sync_api, "_make", w.make)
    aws = registry.get("aws")
    monkeypatch.setattr(aws, "preflight", lambda: PreflightResult(True))
    return w


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ProvisionRequest each attempt's program was built from (the driver runs none)."""
    seen: list[Any] = []
    aws = registry.get("aws")
    monkeypatch.setattr(aws, "program", lambda req: (seen.append(req), lambda: None)[1])
    return seen


def vm_outputs(stack: str, n: int = 2, zone_octet: int = 1) -> dict[str, Any]:
    # What the VM programs export (proven under mocks in tests/unit/stacks/test_stack_ssh.py).
    return {"cloud": "aws", "cluster": "train", "stack": stack, "ssh_user": "ubuntu", "ssh_port": 22,
            "public_ips": [f"203.0.{zone_octet}.{10 + r}" for r in range(n)],
            "private_ips": [f"10.0.{zone_octet}.{10 + r}" for r in range(n)]}


def task_plan(tmp_path: Path) -> Any:
    (tmp_path / "wd").mkdir()
    (tmp_path / "wd" / "train.py").write_text("print('hi')\n")
    (tmp_path / "data").mkdir()
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: train\nnum_nodes: 2\nworkdir: ./wd\nfile_mounts:\n  /data: ./data\n"
                         "envs:\n  MODEL: small\nsecrets:\n  TOKEN: t0ken-value\nsetup: pip list\n"
                         "run: python train.py\nresources:\n  cloud: aws\n")
    plan = make_plan(load_text(task_file.read_text(), str(task_file)), CAT)
    return plan


def fast_sleep(s: float) -> None:
    time.sleep(min(s, 0.01))


def test_the_task_is_synced_and_started_over_ssh_after_up(world: World, requests: list, tmp_path: Path) -> None:
    plan = task_plan(tmp_path)
    drv = FakeDriver(lambda stack: UpResult(True, outputs=vm_outputs(stack)))
    world.silent = {"203.0.1.10": 2}  # node 0 answers on the third try (sshd still starting)
    world.booted_after = 1  # and its boot script is not done at first
    phases: list[Phase] = []
    res = launch(LaunchRequest(plan, "train", LaunchOptions(driver=drv, sleep=fast_sleep,
                                                              on_progress=phases.append)))
    assert res.status == "UP" and res.placement.zone == "use1-az1"

    # The program got the cluster's public key, and only that.
    (req,) = requests
    private = keys.key_path("train")
    assert req.ssh_public_key == keys.public_key("train") and req.ssh_public_key.startswith("ssh-ed25519 ")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    body = private.read_text()
    assert "PRIVATE KEY" in body
    assert body not in repr(req) and "PRIVATE" not in str(req.to_json())

    # Each node was reached as the stack says, with skyplan's own key and known_hosts.
    addrs = sorted(world.nodes, key=lambda a: a.rank)
    assert [(a.transport, a.host, a.port, a.user) for a in addrs] == [
        ("ssh", "203.0.1.10", 22, "ubuntu"), ("ssh", "203.0.1.11", 22, "ubuntu")]
    for a in addrs:
        assert a.identity_file == str(private)
        assert a.known_hosts == str(keys.known_hosts_path("train")) and a.record_host_key
        assert a.mounts_at_root and a.sandbox == f"~/.skyplan/sandboxes/{res.stack}/node-{a.rank}"

    # Waited, then the boot marker, then sync, then start, on every node.
    for rank in (0, 1):
        mine = [c for r, c in world.calls if r == rank]
        assert mine[-2:] == ["sync", "start"] and mine[0] == f"exec test -e {BOOT_MARKER}"
    node0 = next(n for a, n in world.nodes.items() if a.rank == 0)
    assert node0.status_calls >= 3
    assert node0.synced == (str(tmp_path / "wd"), {"/data": str(tmp_path / "data")})
    task = node0.task
    assert (task.cluster, task.stack, task.num_nodes, task.setup, task.run) == (
        "train", res.stack, 2, "pip list", "python train.py")
    assert dict(task.envs) == {"MODEL": "small"} and dict(task.secrets) == {"TOKEN": "t0ken-value"}
    assert task.node_ips == ("10.0.1.10", "10.0.1.11")  # SKYPLAN_NODE_IPS: the private addresses

    names = [p.phase for p in phases]
    assert names.index(nodes.WAITING) < names.index(nodes.SYNCING) < names.index(nodes.STARTING)
    assert any(p.phase == nodes.WAITING and "node-0" in p.detail and "node-1" not in p.detail for p in phases)


def test_logs_and_status_read_through_the_runtime(world: World, requests: list, tmp_path: Path) -> None:
    drv = FakeDriver(lambda stack: UpResult(True, outputs=vm_outputs(stack)))
    world.exit_codes = {1: 3}
    res = launch(LaunchRequest(task_plan(tmp_path), "train", LaunchOptions(driver=drv, sleep=fast_sleep)))
    source = res.log_source()
    assert source is not None
    assert list(source.lines()) == ["(node-0) hello from node 0\n", "(node-1) hello from node 1\n"]
    assert sorted(source.follow()) == ["(node-0) hello from node 0\n", "(node-1) hello from node 1\n"]
    st = source.status()
    assert st["phase"] == "failed" and st["returncode"] == 3
    assert [(n["node_rank"], n["state"], n["returncode"]) for n in st["nodes"]] == [(0, "succeeded", 0),
                                                                                   (1, "failed", 3)]
    outcome = task_outcome(source)  # what apply's exit 7 and status --json read
    assert (outcome.status, outcome.exit_code, outcome.node) == ("failed", 3, 1)
    # The same through the cloud, from the cluster's recorded outputs (status, logs).
    again = registry.get("aws").log_source(res.outputs)
    assert again is not None and again.status()["phase"] == "failed"


def test_an_unreachable_node_is_lost_not_a_success(world: World, requests: list, tmp_path: Path) -> None:
    drv = FakeDriver(lambda stack: UpResult(True, outputs=vm_outputs(stack)))
    res = launch(LaunchRequest(task_plan(tmp_path), "train", LaunchOptions(driver=drv, sleep=fast_sleep)))
    world.silent = {"203.0.1.11": None}
    for node in world.nodes.values():
        node.status_calls = 0
    source = res.log_source()
    st = source.status()
    # The node's own state says unreachable (status --json; a possible preemption to the jobs
    # controller); the cluster's task is lost, so apply never reports it a success.
    assert st["phase"] == "lost" and st["nodes"][1]["state"] == "unreachable"
    assert "connection refused" in st["nodes"][1]["detail"]
    assert (task_outcome(source).status, task_outcome(source).node) == ("failed", 1)


def test_nodes_that_never_answer_fail_the_attempt_and_failover_moves_on(world: World, requests: list,
                                                                       tmp_path: Path) -> None:
    def up(stack: str) -> UpResult:
        octet = 1 if "use1-az1" in stack else 2
        return UpResult(True, outputs=vm_outputs(stack, zone_octet=octet))

    drv = FakeDriver(up)
    world.silent = {"203.0.1.10": None}  # zone 1's node 0 never answers
    events: list = []
    res = launch(LaunchRequest(task_plan(tmp_path), "train",
                               LaunchOptions(driver=drv, sleep=fast_sleep, node_wait_s=0.2, on_event=events.append)))
    assert res.placement.zone == "use1-az2"
    first, second = [e.to_json() for e in events if isinstance(e, AttemptDone)]
    assert (first["outcome"], first["kind"], first["scope"], first["code"]) == ("failed", "timeout", "zone",
                                                                                 "SshUnreachable")
    assert "node-0 (ubuntu@203.0.1.10:22) did not answer over SSH" in first["message"]
    assert "connection refused" in first["message"]
    assert second["outcome"] == "up"
    assert drv.live == {res.stack}  # the failed attempt's stack was destroyed
    assert len(requests) == 2 and requests[0].ssh_public_key == requests[1].ssh_public_key  # one key per cluster


def test_a_failure_on_every_node_fails_the_launch_without_leaks(world: World, requests: list, tmp_path: Path) -> None:
    drv = FakeDriver(lambda stack: UpResult(True, outputs={**vm_outputs(stack), "public_ips": [None, None]}))
    with pytest.raises(ProvisionFailed) as err:
        launch(LaunchRequest(task_plan(tmp_path), "train", LaunchOptions(driver=drv, sleep=fast_sleep)))
    assert all(a.classification.code == "NodeAddressMissing" for a in err.value.attempts)
    assert drv.live == set()
    assert keys.public_key("train") is not None  # kept for `down` (the cluster is FAILED, not forgotten)
    down("train", driver=drv)
    assert keys.public_key("train") is None


def test_down_removes_the_key_and_the_known_hosts_file(world: World, requests: list, tmp_path: Path) -> None:
    drv = FakeDriver(lambda stack: UpResult(True, outputs=vm_outputs(stack)))
    launch(LaunchRequest(task_plan(tmp_path), "train", LaunchOptions(driver=drv, sleep=fast_sleep)))
    keys.known_hosts_path("train").write_text("203.0.1.10 ssh-ed25519 AAAA\n")  # what the transport records
    assert keys.key_path("train").exists()
    down("train", driver=drv)
    assert not keys.key_path("train").exists() and not keys.public_key_path("train").exists()
    assert not keys.known_hosts_path("train").exists()
    assert os.listdir(tmp_path / "ssh" / "keys") == []


def test_under_simulate_no_key_is_made(world: World, requests: list, tmp_path: Path) -> None:
    scenario = tmp_path / "ok.yaml"
    scenario.write_text("default: ok\n")
    drv = FakeDriver(lambda stack: UpResult(True, outputs={"sandbox": "/nowhere"}))
    launch(LaunchRequest(task_plan(tmp_path), "train", LaunchOptions(driver=drv, simulate=str(scenario))))
    assert not (tmp_path / "ssh" / "keys").exists() and world.nodes == {}  # the sim runs the task itself


def test_a_changed_host_key_is_not_waited_out(world: World, tmp_path: Path) -> None:
    world.silent = {"203.0.1.10": None}
    world.unreachable_detail = "SshHostKeyChanged: the host key of ubuntu@203.0.1.10:22 is not the one recorded"
    req = nodes.with_key(requests_for(tmp_path))
    clock = iter(range(1000)).__next__
    with pytest.raises(RuntimeFailure) as err:
        nodes.start_task(req, vm_outputs("train.a001"), clock=lambda: float(clock()), sleep=lambda s: None)
    assert err.value.code == "SshHostKeyChanged"
    assert nodes.classify(err.value).kind.value == "unknown"
    assert all(n.status_calls == 1 for n in world.nodes.values())  # refused at the first answer


def test_the_wait_is_bounded(world: World, tmp_path: Path) -> None:
    world.silent = {"203.0.1.11": None}
    req = nodes.with_key(requests_for(tmp_path))
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(RuntimeFailure) as err:
        nodes.start_task(req, vm_outputs("train.a001"), wait_s=60, poll_s=5, clock=lambda: now[0], sleep=sleep)
    assert err.value.code == "SshUnreachable" and "node-1" in err.value.message and "60 s" in err.value.message
    node1 = next(n for a, n in world.nodes.items() if a.rank == 1)
    assert node1.status_calls == 12  # asked at 0, 5, ..., 55 s; at 60 s it gives up
    assert [c for _, c in world.calls if c in ("sync", "start")] == []  # nothing synced to a half-reachable cluster


def requests_for(tmp_path: Path) -> Any:
    from skyplan.clouds.base import ProvisionRequest

    return ProvisionRequest(cluster="train", stack="train.a001", cloud="aws", region="us-east-1", zone="use1-az1",
                            instance_type="m6i.large", use_spot=False, num_nodes=2, run="echo hi")


def test_the_fake_is_a_node_runtime(world: World) -> None:
    node = sync_api.open_node(NodeAddress("ssh", host="h"))
    assert isinstance(node, NodeRuntime)


def test_a_changed_task_reruns_in_place_on_the_same_nodes(world: World, requests: list, tmp_path: Path) -> None:
    drv = FakeDriver(lambda stack: UpResult(True, outputs=vm_outputs(stack)))
    plan = task_plan(tmp_path)
    first = launch(LaunchRequest(plan, "train", LaunchOptions(driver=drv, sleep=fast_sleep)))
    task_file = tmp_path / "task.yaml"
    task_file.write_text(task_file.read_text().replace("python train.py", "python eval.py"))
    changed = make_plan(load_text(task_file.read_text(), str(task_file)), CAT)
    world.calls.clear()
    res = launch(LaunchRequest(changed, "train", LaunchOptions(driver=drv, sleep=fast_sleep)))
    assert (res.action, res.stack) == ("rerun", first.stack)  # same stack, nothing replaced
    assert ("destroy", first.stack) not in drv.calls and drv.live == {first.stack}
    assert requests[-1].ssh_public_key == requests[0].ssh_public_key
    for rank in (0, 1):  # synced again (the runtime's sync stops the old task first), then started anew
        assert [c for r, c in world.calls if r == rank][-2:] == ["sync", "start"]
    assert {n.task.run for n in world.nodes.values()} == {"python eval.py"}


def test_a_machine_without_the_clusters_key_replaces_instead_of_rerunning(world: World, requests: list,
                                                                          tmp_path: Path) -> None:
    from skyplan.provision import converging
    from skyplan.provision.converge import InPlace, Replace
    from skyplan.state import StateDB

    drv = FakeDriver(lambda stack: UpResult(True, outputs=vm_outputs(stack)))
    launch(LaunchRequest(task_plan(tmp_path), "train", LaunchOptions(driver=drv, sleep=fast_sleep)))
    task_file = tmp_path / "task.yaml"
    task_file.write_text(task_file.read_text().replace("python train.py", "python eval.py"))
    changed = make_plan(load_text(task_file.read_text(), str(task_file)), CAT)
    row = StateDB().get_cluster("train")
    assert isinstance(converging.assess(changed, row, simulate=None), InPlace)
    keys.remove("train")  # as on a CI runner that adopted the cluster from the shared backend
    action = converging.assess(changed, row, simulate=None)
    assert isinstance(action, Replace) and action.reason == converging.NO_KEY_REASON
    again = converging.assess(changed, row, simulate=None, rerun=True)
    assert isinstance(again, Replace)
