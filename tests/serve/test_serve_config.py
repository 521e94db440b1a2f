"""service_config: a task's service section with serve's defaults applied."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from skyplan.errors import InputError
from skyplan.serve.config import ServiceConfig, service_config
from skyplan.spec import load_text
from skyplan.spec.models import ReadinessProbe, ResourceRequest, Resources, Service, Task

REPO = Path(__file__).resolve().parents[2]


def cfg(text: str) -> ServiceConfig:
    return service_config(load_text(textwrap.dedent(text), "svc.yaml"))


def test_seed_002_dynamic_fallback():
    from skyplan.spec import load_task

    c = service_config(load_task(REPO / "tests" / "fixtures" / "seeds" / "002-dynamic-ondemand-fallback.yaml"))
    assert (c.port, c.min_replicas, c.max_replicas, c.target_qps) == (8081, 2, 3, 1.0)
    assert (c.use_spot, c.base_ondemand, c.dynamic_fallback) == (True, 0, True)
    assert c.probe_path == "/health"
    # the defaults
    assert (c.upscale_delay_s, c.downscale_delay_s) == (300.0, 1200.0)
    assert (c.probe_initial_delay_s, c.probe_timeout_s, c.probe_post_data, c.probe_headers) == (1200.0, 15.0, None, ())
    assert (c.lb_policy, c.max_surge, c.drain_timeout_s) == ("least_load", 1, 120.0)


def test_seed_002_base_on_demand():
    from skyplan.spec import load_task

    c = service_config(load_task(REPO / "tests" / "fixtures" / "seeds" / "002-base-ondemand-fallback.yaml"))
    assert (c.base_ondemand, c.dynamic_fallback, c.use_spot) == (1, False, True)


def test_replicas_is_a_fixed_count_and_everything_given_is_kept():
    c = cfg(
        """\
        service:
          readiness_probe:
            path: /v1/models
            initial_delay_seconds: 5
            timeout_seconds: 2
            post_data: {q: 1}
            headers: {Authorization: Bearer t}
          replicas: 3
          load_balancing_policy: round_robin
          max_surge: 2
          drain_timeout_seconds: 7
        resources: {ports: [9000, 9001]}
        """
    )
    assert (c.min_replicas, c.max_replicas, c.target_qps, c.use_spot) == (3, 3, None, False)
    assert (c.port, c.probe_path, c.probe_initial_delay_s, c.probe_timeout_s) == (9000, "/v1/models", 5.0, 2.0)
    assert c.probe_post_data == '{"q":1}' and c.probe_headers == (("Authorization", "Bearer t"),)
    assert (c.lb_policy, c.max_surge, c.drain_timeout_s) == ("round_robin", 2, 7.0)


def test_a_policy_without_max_does_not_autoscale_and_no_policy_is_one_replica():
    c = cfg("service:\n  readiness_probe: /\n  replica_policy: {min_replicas: 2, upscale_delay_seconds: 4}\n"
            "resources: {ports: 80}\n")
    assert (c.min_replicas, c.max_replicas, c.upscale_delay_s) == (2, 2, 4.0)
    c = cfg("service:\n  readiness_probe: /\nresources: {ports: 80}\n")
    assert (c.min_replicas, c.max_replicas) == (1, 1)


def test_the_first_declared_port_of_a_range():
    assert cfg("service: {readiness_probe: /}\nresources: {ports: '10022-10040'}\n").port == 10022


@pytest.mark.parametrize("task, words", [
    (Task(), "no 'service' section"),
    (Task(service=Service(readiness_probe=ReadinessProbe(path="/"))), "declares no port"),
])
def test_refused_with_a_hint(task: Task, words: str):
    with pytest.raises(InputError, match=words) as info:
        service_config(task)
    assert info.value.hint and "ports" in info.value.hint


def test_a_task_built_in_code_is_checked_too():
    task = Task(resources=Resources(candidates=(ResourceRequest(ports=(80,)),)),
                service=Service(readiness_probe=ReadinessProbe(path="/"), load_balancing_policy="random"))
    with pytest.raises(InputError, match="load_balancing_policy"):
        service_config(task)
