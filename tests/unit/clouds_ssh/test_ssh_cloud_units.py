"""The ssh cloud without a network: the pool section of the config file, offers from
configured and probed hardware (cached with a TTL), the classifier's verdicts, and a
ledger that never books a host twice, however many processes take hosts at once."""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

import pytest

from skyplan.clouds import registry
from skyplan.clouds.ssh import hardware, ledger
from skyplan.clouds.ssh.pools import Host, pools
from skyplan.config import ConfigError, read_config
from skyplan.errors import Kind, Scope


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path))
    return tmp_path


def write(home: Path, text: str) -> None:
    (home / "config.yaml").write_text(text)


# --- pools ------------------------------------------------------------------------------------


def test_pools_take_the_contract_shape_with_pool_defaults_and_zones(home: Path):
    write(home, "ssh:\n  pools:\n    lab:\n      cpus: 8\n      hosts:\n"
                "        - {host: 10.0.0.5, user: ubuntu, identity_file: ~/.ssh/id_ed25519}\n"
                "        - {host: gpu2.lab, port: 2222, user: me, identity_file: keys/lab, cpus: 16,"
                " accelerators: 'A100:2'}\n")
    (lab,) = pools().values()
    a, b = lab.hosts
    assert (a.zone, a.port, a.user, a.cpus, a.accelerators) == ("10.0.0.5", 22, "ubuntu", 8.0, None)
    assert a.identity_file == str(Path("~/.ssh/id_ed25519").expanduser())
    assert a.known_hosts == str(Path("~/.ssh/known_hosts").expanduser())  # strict, against the user's file
    assert (b.zone, b.cpus, b.accelerators) == ("gpu2.lab:2222", 16.0, ("A100", 2.0))
    assert b.identity_file == str(home / "keys" / "lab")  # relative to the config file


def test_pool_mistakes_are_each_located(home: Path):
    write(home, "ssh:\n  pools:\n    lab:\n      hosts:\n"
                "        - {host: a, port: 70000}\n"
                "        - {host: a, port: 22}\n"
                "        - {host: a}\n"
                "    bad name!: {hosts: [{host: b}]}\n"
                "    empty: {hosts: []}\n")
    with pytest.raises(ConfigError) as e:
        read_config()
    found = {d.path: (d.line, d.message) for d in e.value.diagnostics}
    assert found["$.ssh.pools.lab.hosts[0].port"][0] == 5
    assert "listed twice" in found["$.ssh.pools.lab.hosts[2]"][1]
    assert "pool name" in found["$.ssh.pools['bad name!']"][1]
    assert "'hosts' is a list" in found["$.ssh.pools.empty.hosts"][1]


# --- offers and probing -----------------------------------------------------------------------


PROBED = "4\n--skyplan--\nMemTotal:       16314368 kB\n--skyplan--\nNVIDIA A100-SXM4-80GB, 81920 MiB\n" \
         "NVIDIA A100-SXM4-80GB, 81920 MiB\n"


def test_the_probe_output_becomes_an_offer_and_config_wins(home: Path):
    facts = hardware.parse_probe(PROBED)
    assert facts.cpus == 4 and facts.memory_gib == 15.6 and facts.gpus[0][0] == "A100-80GB"
    o = hardware.offer(Host("lab", "h"), facts)
    assert (o.cloud, o.region, o.zone, o.vcpus, o.accelerator, o.accelerator_count) == \
        ("ssh", "lab", "h", 4.0, "A100-80GB", 2.0)
    assert o.instance_type == "4cpu-16gb-A100-80GBx2" and o.price == 0.0 and o.spot_price is None
    assert hardware.offer(Host("lab", "h", cpus=2.0, price=1.5), facts).vcpus == 2.0
    assert hardware.offer(Host("lab", "h"), None) is None  # unknown hardware: no offer


def test_probes_run_once_then_come_from_the_cache_until_the_ttl(home: Path):
    calls: list[str] = []

    async def prober(host: Host, timeout: float) -> str:
        calls.append(host.zone)
        if host.host == "down":
            raise OSError("connection refused")
        return PROBED

    hosts = [Host("lab", "up"), Host("lab", "down"), Host("lab", "told", cpus=1.0, memory_gib=1.0,
                                                          accelerators=("", 0.0))]
    assert [o.zone for o in hardware.pool_offers(hosts, prober=prober)] == ["up", "told"]
    assert sorted(calls) == ["down", "up"]  # a host whose hardware is all in the config is not probed
    assert "connection refused" in hardware.UNPROBED["down:22"]
    calls.clear()
    hardware.facts_for(hosts, prober=prober)
    assert calls == []  # "up" came from the cache; "down" failed in this process already
    hardware.UNPROBED.clear()  # a new process
    hardware.facts_for(hosts, prober=prober)
    assert calls == ["down"]  # a failed probe is not cached on disk
    calls.clear()
    hardware.UNPROBED.clear()
    hardware.facts_for(hosts, prober=prober, now=json.loads(Path(hardware.cache_path()).read_text())["up:22"]
                       ["probed_at"] + hardware.CACHE_TTL_S + 1)
    assert sorted(calls) == ["down", "up"]  # past the TTL: probed again


def test_a_task_on_a_pool_plans_one_candidate_per_fitting_host(home: Path, tmp_path: Path):
    from skyplan.catalog import load_catalog
    from skyplan.planner import make_plan
    from skyplan.spec import load

    write(home, "ssh:\n  pools:\n    lab:\n      memory_gib: 32\n      accelerators: none\n      hosts:\n"
                "        - {host: a, cpus: 2}\n        - {host: b, cpus: 8, price: 0.5}\n")
    task = tmp_path / "t.yaml"
    task.write_text("name: t\nresources: {cloud: ssh, region: lab, cpus: 4+}\nrun: 'true'\n")
    plan = make_plan(load(str(task), catalog=load_catalog()), load_catalog())
    assert [(c.cloud, c.region, c.zone, c.instance_type) for c in plan.candidates] == [("ssh", "lab", "b", "8cpu-32gb")]
    nameless = tmp_path / "n.yaml"
    nameless.write_text("name: n\nresources: {cpus: 4+}\nrun: 'true'\n")
    assert all(c.cloud != "ssh" for c in make_plan(load(str(nameless), catalog=load_catalog()),
                                                   load_catalog()).candidates)  # named only, like local


# --- the classifier ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind, scope", [
    ("SshUnreachable: me@10.0.0.5:22: [Errno 111] Connection refused", Kind.CAPACITY, Scope.ZONE),
    ("SshHostBusy: host a of pool 'lab' is taken by cluster 'x' (stack x.a001)", Kind.CAPACITY, Scope.ZONE),
    ("SshPoolFull: pool 'lab' has 1 free reachable host(s) like a (2cpu-4gb), 2 needed", Kind.CAPACITY, Scope.REGION),
    ("SshHostKeyChanged: the host key of 10.0.0.5:22 changed", Kind.AUTH, Scope.ZONE),
    ("SshAuthFailed: me@a:22 refused the key", Kind.AUTH, Scope.ZONE),
    ("SshAuthFailed: me@a:22 refused the key; every host of pool 'lab' logs in as me with this key",
     Kind.AUTH, Scope.REGION),
    ("NodeSyncFailed: file mount '/d': source '/x' does not exist", Kind.INVALID, Scope.ALL),
    ("NodeStartFailed: python3 is not installed on me@a:22: bash: python3: command not found",
     Kind.CAPACITY, Scope.ZONE),
])
def test_the_classifier_scopes_each_failure_to_what_it_says_about(text: str, kind: Kind, scope: Scope):
    c = registry.get("ssh").classify("Exception calling application: " + text)
    assert (c.kind, c.scope) == (kind, scope)
    assert text.startswith(c.code)  # the attempt line shows the runtime's own code


# --- the ledger -------------------------------------------------------------------------------


def _grab(args: tuple[str, str, int]) -> int:
    path, stack, n = args
    won = 0
    for i in range(n):
        try:
            ledger.take(f"h{i}:22", stack=stack, cluster=stack, info={"zone": f"h{i}", "pool": "p"}, path=Path(path))
            won += 1
        except ledger.HostBusy:
            pass
    return won


def test_a_host_is_never_booked_twice_by_concurrent_processes(tmp_path: Path):
    path = tmp_path / "allocations.json"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        won = pool.map(_grab, [(str(path), f"s{k}", 20) for k in range(4)])
    assert sum(won) == 20  # each of the 20 hosts went to exactly one stack
    held = ledger.held(path=path)
    assert len(held) == 20 and len({e["key"] for e in held}) == 20
    stack = held[0]["stack"]
    ledger.take("h0:22", stack=stack, cluster=stack, info={}, path=path) if held[0]["key"] == "h0:22" else None
    freed = ledger.release_stack(stack, path=path)
    assert freed and not any(e["stack"] == stack for e in ledger.held(path=path))


# --- a host that is gone ----------------------------------------------------------------------


def test_a_node_on_an_unreachable_host_is_deleted_only_once_the_host_left_every_pool(home: Path):
    import socket

    from skyplan.clouds.ssh import provider
    from skyplan.clouds.ssh.nodes import host_record

    with socket.socket() as s:  # a port nothing listens on: connection refused, at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write(home, f"ssh:\n  pools:\n    lab:\n      hosts:\n        - {{host: 127.0.0.1, port: {port}}}\n")
    (host,) = pools()["lab"].hosts
    props = {"host": host_record(host), "node_rank": 0, "sandbox": "~/.skyplan/sandboxes/s/node-0",
             "config": str(home / "config.yaml")}
    with pytest.raises(Exception, match=r"SshUnreachable: .*still there.*take it out of pool 'lab'"):
        provider._remove(props)
    write(home, "ssh:\n  pools:\n    lab:\n      hosts:\n        - {host: 10.0.0.5}\n")
    provider._remove(props)  # taken out of the pool: the user says it is gone; nothing to reach


def test_a_pool_whose_hosts_all_fail_their_probe_says_why(home: Path, monkeypatch: pytest.MonkeyPatch):
    from skyplan.errors import InputError

    async def refused(host: Host, timeout: float) -> str:
        raise OSError("connection refused")

    monkeypatch.setattr(hardware, "runtime_probe", refused)
    write(home, "ssh:\n  pools:\n    lab:\n      hosts:\n        - {host: 10.0.0.5}\n")
    with pytest.raises(InputError, match=r"no host of the ssh pools could be probed.*10\.0\.0\.5 \(pool lab\): OSError: connection refused"):
        registry.get("ssh").own_offers()


def test_a_task_on_ssh_without_any_pool_is_told_where_pools_go(home: Path, tmp_path: Path):
    from skyplan.catalog import load_catalog
    from skyplan.errors import SkyplanError
    from skyplan.spec import load

    task = tmp_path / "t.yaml"
    task.write_text("name: t\nresources: {cloud: ssh, region: lab}\nrun: 'true'\n")
    with pytest.raises(SkyplanError) as e:
        load(str(task), catalog=load_catalog())
    said = " ".join([str(e.value)] + [d.message for d in getattr(e.value, "diagnostics", [])])
    assert re.search(r"needs a pool of machines, and .*config\.yaml has none", said), said
