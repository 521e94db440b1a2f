"""skyplan.clouds.nodelogs.status_dict: a cluster's task state from its nodes' runtime states."""

from __future__ import annotations

from skyplan.clouds.nodelogs import status_dict
from skyplan.provision.outcome import TaskOutcome, node_states
from skyplan.runtime.protocol import NodeStatus


def test_every_node_done_is_done() -> None:
    st = status_dict([NodeStatus(0, "succeeded", 0), NodeStatus(1, "succeeded", 0)])
    assert (st["phase"], st["returncode"]) == ("done", 0)
    assert TaskOutcome.from_status(st).status == "succeeded"


def test_a_failed_node_fails_the_cluster_with_its_code_and_rank() -> None:
    st = status_dict([NodeStatus(0, "running"), NodeStatus(1, "failed", 3, "setup")])
    assert (st["phase"], st["returncode"]) == ("failed", 3)
    out = TaskOutcome.from_status(st)
    assert (out.status, out.exit_code, out.node) == ("failed", 3, 1)
    assert st["nodes"][1]["failed_phase"] == "setup"


def test_an_unreachable_node_is_lost_for_the_cluster_and_unreachable_for_itself() -> None:
    st = status_dict([NodeStatus(0, "running"), NodeStatus(1, "unreachable", detail="SshUnreachable: refused")])
    assert st["phase"] == "lost"
    assert node_states(st) == [{"rank": 0, "status": "running", "exit_code": None},
                               {"rank": 1, "status": "unreachable", "exit_code": None}]


def test_running_starting_and_absent() -> None:
    assert status_dict([NodeStatus(0, "running"), NodeStatus(1, "starting")])["phase"] == "run"
    assert status_dict([NodeStatus(0, "absent"), NodeStatus(1, "succeeded", 0)])["phase"] == "absent"
    assert status_dict([])["phase"] == "absent"


def test_logs_of_a_node_that_cannot_be_reached_say_so_instead_of_printing_nothing(tmp_path):
    import pytest

    from skyplan.clouds.nodelogs import NodesLogSource
    from skyplan.errors import NodeUnreachable
    from skyplan.runtime.protocol import NodeAddress

    kh = tmp_path / "known_hosts"
    kh.write_text("")
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    source = NodesLogSource([NodeAddress("ssh", rank=0, host="127.0.0.1", port=1, user="nobody",
                                         sandbox="~/.skyplan/sandboxes/s/node-0", known_hosts=str(kh))])
    with pytest.raises(NodeUnreachable, match="node 0: SshUnreachable") as got:
        list(source.lines())
    assert got.value.exit_code == 4
    with pytest.raises(NodeUnreachable, match="node 0"):
        list(source.follow())
