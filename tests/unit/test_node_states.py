"""status --json's `nodes`: each node's task folded into running, succeeded, failed
or unreachable, from the local runner's phases and from the node runtime's states."""

from skyplan.provision.outcome import node_states


def test_local_phases_become_the_contract_states():
    status = {"phase": "failed", "returncode": 3, "nodes": [
        {"node_rank": 1, "phase": "failed", "returncode": 3},
        {"node_rank": 0, "phase": "done", "returncode": 0},
        {"node_rank": 2, "phase": "setup", "returncode": None},
        {"node_rank": 3, "phase": "lost"},
        {"node_rank": 4, "phase": "absent"},
    ]}
    assert node_states(status) == [
        {"rank": 0, "status": "succeeded", "exit_code": 0},
        {"rank": 1, "status": "failed", "exit_code": 3},
        {"rank": 2, "status": "running", "exit_code": None},
        {"rank": 3, "status": "failed", "exit_code": None},
    ]


def test_runtime_states_win_over_phases_and_unknowable_is_empty():
    status = {"phase": "lost", "nodes": [{"node_rank": 0, "phase": "lost", "state": "unreachable", "returncode": None}]}
    assert node_states(status) == [{"rank": 0, "status": "unreachable", "exit_code": None}]
    assert node_states(None) == [] and node_states({}) == []
