"""Semantic rules beyond the schema, and how documents become typed requests."""

from __future__ import annotations

import pytest

from skyplan.spec import Accelerator, Preference, Quantity
from skyplan.spec.parse import parse_accelerator, parse_ports, parse_quantity
from spec_helpers import load, one_error, spec_errors

# --- rules: each with its exact location -----------------------------------------


def test_any_of_and_ordered_together():
    d = one_error(
        """\
        resources:
          any_of:
            - cloud: aws
          ordered:
            - cloud: gcp
        """
    )
    assert (d.path, d.line, d.column) == ("$.resources.ordered", 4, 3)
    assert "not both" in d.message


def test_several_accelerators_with_ordered_in_an_entry():
    d = one_error(
        """\
        resources:
          ordered:
            - cloud: gcp
            - accelerators: {A10: 1, L4: 1}
        """
    )
    assert (d.path, d.line) == ("$.resources.ordered[1].accelerators", 4)
    assert "ordered" in d.message


def test_several_accelerators_with_ordered_in_the_base():
    d = one_error(
        """\
        resources:
          accelerators: [A10, L4]
          ordered:
            - cloud: gcp
        """
    )
    assert (d.path, d.line) == ("$.resources.accelerators", 2)


def test_one_accelerator_per_ordered_entry_is_fine():
    res = load(
        """\
        resources:
          ordered:
            - accelerators: [A10]
            - accelerators: L4:2
        """
    ).resources
    assert res.preference is Preference.ORDERED
    assert [r.accelerators for r in res.candidates] == [(Accelerator("A10", 1),), (Accelerator("L4", 2),)]


@pytest.mark.parametrize(
    "value, words",
    [
        ("'A100:0'", "greater than 0"),
        ("'A100:x'", "'x' is not a number"),
        ("'A100:-2'", "greater than 0"),
        ("'A100:1.5'", "whole number"),
        ("':8'", "not an accelerator"),
        ("'A 100'", "not an accelerator"),
        ("'A100:8:1'", "is not a number"),
    ],
)
def test_bad_accelerator_strings(value: str, words: str):
    d = one_error(f"name: t\nresources:\n  accelerators: {value}\n")
    assert (d.path, d.line) == ("$.resources.accelerators", 3)
    assert words in d.message


def test_bad_accelerator_in_list_and_mapping():
    found = spec_errors(
        """\
        resources:
          any_of:
            - accelerators: [A10:1, 'L4:y']
            - accelerators: {'T4:0': null, V100: 2}
            - accelerators: {A100: 0}
            - accelerators: {'H100:2': 4}
        """
    )
    assert [(d.path, d.line) for d in found] == [
        ("$.resources.any_of[0].accelerators[1]", 3),
        ("$.resources.any_of[1].accelerators['T4:0']", 4),
        ("$.resources.any_of[2].accelerators.A100", 5),
        ("$.resources.any_of[3].accelerators['H100:2']", 6),
    ]
    assert "greater than 0" in found[2].message  # from the schema, reported once
    assert "count" in found[3].message and "once" in found[3].message


def test_repeated_accelerator_in_a_list():
    d = one_error("resources:\n  accelerators: [A10:1, a10:1]\n")
    assert d.path == "$.resources.accelerators[1]" and "repeats" in d.message


@pytest.mark.parametrize("value", ["'4x'", "'+4'", "'-1'", "'0'", "'0+'", "'4++'", "''"])
def test_bad_quantity_strings(value: str):
    d = one_error(f"resources:\n  memory: {value}\n")
    assert (d.path, d.line) == ("$.resources.memory", 2)


@pytest.mark.parametrize("value", ["0", "-2"])
def test_non_positive_quantity_numbers(value: str):
    d = one_error(f"resources:\n  cpus: {value}\n")
    assert d.path == "$.resources.cpus" and "greater than 0" in d.message


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_nodes", "0"),
        ("num_nodes", "-3"),
        ("resources", "{disk_size: -1}"),
        ("resources", "{max_hourly_cost: -0.5}"),
        ("resources", "{ports: 0}"),
        ("resources", "{ports: 70000}"),
    ],
)
def test_negative_or_zero_counts(field: str, value: str):
    found = spec_errors(f"{field}: {value}\n")
    assert len(found) == 1 and found[0].line == 1
    assert found[0].path.startswith(f"$.{field}")


@pytest.mark.parametrize("value, path", [("'80-70'", "$.resources.ports"), ("[22, 'x']", "$.resources.ports[1]"),
                                         ("'1-70000'", "$.resources.ports")])
def test_bad_port_strings(value: str, path: str):
    d = one_error(f"resources:\n  ports: {value}\n")
    assert (d.path, d.line) == (path, 2)


def test_replicas_together_with_replica_policy():
    d = one_error(
        """\
        service:
          readiness_probe: /health
          replica_policy:
            min_replicas: 1
          replicas: 2
        resources: {ports: 8080}
        """
    )
    assert (d.path, d.line) == ("$.service.replicas", 5)
    assert "not both" in d.message


@pytest.mark.parametrize("lo, hi", [("3", "2"), ("3.0", "2.0")])
def test_max_replicas_below_min(lo: str, hi: str):
    d = one_error(
        f"""\
        service:
          readiness_probe: /health
          replica_policy:
            min_replicas: {lo}
            max_replicas: {hi}
        resources: {{ports: 8080}}
        """
    )
    assert (d.path, d.line) == ("$.service.replica_policy.max_replicas", 5)
    assert "max_replicas (2) is below min_replicas (3)" in d.message


def test_autoscaling_needs_target_qps():
    d = one_error(
        """\
        service:
          readiness_probe: /health
          replica_policy:
            min_replicas: 1
            max_replicas: 4
        resources: {ports: 8080}
        """
    )
    assert (d.path, d.line) == ("$.service.replica_policy", 3)
    assert "target_qps_per_replica" in d.message


def test_probe_path_must_start_with_slash():
    d = one_error("service:\n  readiness_probe:\n    path: health\nresources: {ports: 8080}\n")
    assert (d.path, d.line) == ("$.service.readiness_probe.path", 3)


def test_env_names():
    d = one_error("envs:\n  GOOD_1: a\n  bad-name: b\n")
    assert (d.path, d.line) == ("$.envs['bad-name']", 3)


def test_job_recovery_strategy():
    d = one_error("resources:\n  job_recovery: FAILOVR\n")
    assert (d.path, d.suggestion) == ("$.resources.job_recovery", "FAILOVER")
    d = one_error("resources:\n  job_recovery: {strategy: eager_next_regoin}\n")
    assert (d.path, d.suggestion) == ("$.resources.job_recovery.strategy", "EAGER_NEXT_REGION")


def test_semantic_and_schema_errors_are_reported_together():
    found = spec_errors(
        """\
        resources:
          cpus: 4x
          use_spot: maybe
          any_of: [{cloud: aws}]
          ordered: [{cloud: gcp}]
        num_nodes: 0
        """
    )
    assert [d.line for d in found] == [2, 3, 5, 6]


# --- building: set vs list, any_of vs ordered, merging, N+ ------------------------


def test_set_is_cheapest_and_list_is_ordered():
    as_set = load("resources:\n  accelerators: {A10:1, L4:1}\n").resources.candidates[0]
    as_yaml_set = load("resources:\n  accelerators: !!set {A10, L4}\n").resources.candidates[0]
    as_map = load("resources:\n  accelerators: {A10: 1, L4: 2}\n").resources.candidates[0]
    as_list = load("resources:\n  accelerators: [A10:1, L4:1]\n").resources.candidates[0]
    as_str = load("resources:\n  accelerators: A100:8\n").resources.candidates[0]
    assert as_set.accelerator_preference is Preference.CHEAPEST
    assert as_yaml_set.accelerator_preference is Preference.CHEAPEST
    assert as_map.accelerator_preference is Preference.CHEAPEST
    assert as_list.accelerator_preference is Preference.ORDERED
    assert as_set.accelerators == as_list.accelerators == as_yaml_set.accelerators
    assert as_map.accelerators == (Accelerator("A10", 1), Accelerator("L4", 2))
    assert as_str.accelerators == (Accelerator("A100", 8),)


def test_accelerator_names_are_kept_as_written():
    req = load("resources:\n  accelerators: [a10g, A100-80GB:4, tpu-v4-8]\n").resources.candidates[0]
    assert [a.name for a in req.accelerators] == ["a10g", "A100-80GB", "tpu-v4-8"]
    assert [a.count for a in req.accelerators] == [1, 4, 1]


def test_fractional_accelerator_count():
    req = load("resources:\n  accelerators: T4:0.5\n").resources.candidates[0]
    assert req.accelerators == (Accelerator("T4", 0.5),)


def test_any_of_entries_override_the_base():
    res = load(
        """\
        resources:
          cloud: aws
          accelerators: A100:8
          use_spot: true
          cpus: 8+
          any_of:
            - region: us-east-1
            - cloud: gcp
              use_spot: false
            - accelerators: {H100: 8}
              cpus: 16
        """
    ).resources
    assert res.preference is Preference.CHEAPEST
    a, b, c = res.candidates
    assert (a.cloud, a.region, a.use_spot, a.accelerators, a.cpus) == (
        "aws", "us-east-1", True, (Accelerator("A100", 8),), Quantity(8, at_least=True)
    )
    assert (b.cloud, b.region, b.use_spot, b.accelerators) == ("gcp", None, False, (Accelerator("A100", 8),))
    assert (c.cloud, c.accelerators, c.cpus) == ("aws", (Accelerator("H100", 8),), Quantity(16))


def test_ordered_keeps_entry_order():
    res = load(
        """\
        resources:
          use_spot: true
          ordered:
            - cloud: gcp
              accelerators: A100-80GB
            - instance_type: g5.xlarge
            - cloud: azure
              region: eastus
              accelerators: A100
        """
    ).resources
    assert res.preference is Preference.ORDERED
    assert [(r.cloud, r.instance_type, r.region) for r in res.candidates] == [
        ("gcp", None, None), (None, "g5.xlarge", None), ("azure", None, "eastus")
    ]
    assert all(r.use_spot for r in res.candidates)


def test_no_resources_gives_one_empty_request():
    res = load("name: x\n").resources
    assert len(res.candidates) == 1 and res.candidates[0].accelerators == ()


def test_null_fields_mean_unset():
    task = load("name:\nresources:\n  cpus:\n  accelerators:\nnum_nodes:\n")
    assert task.name is None and task.num_nodes == 1
    assert task.resources.candidates[0].cpus is None


@pytest.mark.parametrize(
    "raw, expected",
    [(4, Quantity(4)), ("4", Quantity(4)), ("4+", Quantity(4, True)), (" 2.5+ ", Quantity(2.5, True)),
     (0.5, Quantity(0.5)), ("16 +", Quantity(16, True))],
)
def test_quantity_parsing(raw, expected):
    assert parse_quantity(raw) == expected


def test_n_plus_admits_at_least_and_bare_number_admits_exactly():
    req = load("resources:\n  cpus: 4+\n  memory: 16\n").resources.candidates[0]
    assert req.cpus.admits(4) and req.cpus.admits(96) and not req.cpus.admits(2)
    assert req.memory.admits(16) and not req.memory.admits(32)


def test_ports_expand_and_sort():
    assert parse_ports([8081, "10022-10025", "22", 8081]) == (22, 8081, 10022, 10023, 10024, 10025)
    assert parse_ports(8081.0) == (8081,)  # the schema's "integer" admits whole floats
    req = load("resources:\n  ports: '10022-10024'\n").resources.candidates[0]
    assert req.ports == (10022, 10023, 10024)


def test_parse_accelerator_mapping_forms():
    assert parse_accelerator("A10:2") == Accelerator("A10", 2)
    assert parse_accelerator("A10", 4) == Accelerator("A10", 4)
    assert parse_accelerator("A10") == Accelerator("A10", 1)
    with pytest.raises(ValueError):
        parse_accelerator("A10:2", 2)


def test_envs_and_labels_become_sorted_string_pairs():
    task = load(
        """\
        envs:
          Z: last
          A: 1
          VERSION: 1.10
          FLAG: true
        resources:
          labels: {team: ml, tier: 2}
        """
    )
    assert task.envs == (("A", "1"), ("FLAG", "true"), ("VERSION", "1.10"), ("Z", "last"))
    assert task.resources.candidates[0].labels == (("team", "ml"), ("tier", "2"))


def test_labels_from_an_entry_override():
    res = load("resources:\n  labels: {a: 1}\n  any_of:\n    - labels: {b: 2.50}\n    - {}\n").resources
    assert [r.labels for r in res.candidates] == [(("b", "2.50"),), (("a", "1"),)]


def test_job_recovery_forms():
    a = load("resources:\n  job_recovery: failover\n").resources.candidates[0]
    b = load("resources:\n  job_recovery: {strategy: EAGER_NEXT_REGION, max_restarts_on_errors: 3}\n")
    b = b.resources.candidates[0]
    assert (a.job_recovery, a.max_restarts_on_errors) == ("FAILOVER", None)
    assert (b.job_recovery, b.max_restarts_on_errors) == ("EAGER_NEXT_REGION", 3)


def test_job_recovery_exit_codes_and_backoff_limit():
    c = load("resources:\n  job_recovery: {strategy: no_recovery, recover_on_exit_codes: [137, 3, 137], "
             "backoff_limit: 2}\n").resources.candidates[0]
    assert (c.job_recovery, c.recover_on_exit_codes, c.backoff_limit) == ("NO_RECOVERY", (3, 137), 2)
    # seed 004's spelling
    d = load("resources:\n  job_recovery: {backoffLimit: 5}\n").resources.candidates[0]
    assert (d.job_recovery, d.backoff_limit, d.recover_on_exit_codes) == (None, 5, ())
    # an any_of entry inherits the base's job_recovery
    e = load("resources:\n  job_recovery: {backoffLimit: 1}\n  any_of:\n    - use_spot: true\n    - {}\n")
    assert [r.backoff_limit for r in e.resources.candidates] == [1, 1]


@pytest.mark.parametrize("doc, path", [
    ("{recover_on_exit_codes: [0]}", "$.resources.job_recovery.recover_on_exit_codes[0]"),
    ("{recover_on_exit_codes: [256]}", "$.resources.job_recovery.recover_on_exit_codes[0]"),
    ("{recover_on_exit_codes: 3}", "$.resources.job_recovery.recover_on_exit_codes"),
    ("{backoff_limit: -1}", "$.resources.job_recovery.backoff_limit"),
    ("{backoffLimit: 1.5}", "$.resources.job_recovery.backoffLimit"),
])
def test_job_recovery_bad_values(doc: str, path: str):
    assert one_error(f"resources:\n  job_recovery: {doc}\n").path == path


def test_job_recovery_round_trips_and_leaves_older_hashes_alone():
    from skyplan.spec import task_from_dict, task_to_dict

    t = load("resources:\n  job_recovery: {recover_on_exit_codes: [3], backoffLimit: 0}\n")
    assert task_from_dict(task_to_dict(t)) == t
    # unset, the new fields are not written: a plan file made before them keeps its task_sha256
    req = task_to_dict(load("resources:\n  job_recovery: failover\n"))["resources"]["candidates"][0]
    assert "backoff_limit" not in req and "recover_on_exit_codes" not in req


def test_job_recovery_backoff_limit_spelt_twice():
    d = one_error("resources:\n  job_recovery: {backoff_limit: 1, backoffLimit: 2}\n")
    assert (d.path, d.suggestion) == ("$.resources.job_recovery.backoffLimit", "backoff_limit")
    assert "not both" in d.message


def test_file_mount_forms():
    task = load(
        """\
        file_mounts:
          /data: s3://bucket/data
          /ckpt:
            name: my-bucket
            store: s3
            mode: COPY
        """
    )
    (ckpt, data) = task.file_mounts  # sorted by destination
    assert (data.dst, data.source, data.mode) == ("/data", "s3://bucket/data", None)
    assert (ckpt.dst, ckpt.name, ckpt.store, ckpt.mode) == ("/ckpt", "my-bucket", "s3", "COPY")


def test_service_forms():
    svc = load(
        """\
        service:
          readiness_probe:
            path: /v1/models
            initial_delay_seconds: 30
            post_data: {model: x, max_tokens: 1}
          replicas: 2
        resources: {ports: 8080}
        """
    ).service
    assert svc.replicas == 2 and svc.replica_policy is None
    assert svc.readiness_probe.initial_delay_seconds == 30
    assert svc.readiness_probe.post_data == '{"max_tokens":1,"model":"x"}'


# --- task_from_dict refuses malformed input ----------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("resources"),
        lambda d: d.update(num_nodes="2"),
        lambda d: d.update(num_nodes=True),
        lambda d: d["resources"].update(candidates=[]),
        lambda d: d["resources"].update(preference="fastest"),
        lambda d: d["resources"]["candidates"][0].update(cpus="4"),
        lambda d: d["resources"]["candidates"][0].update(accelerators=[{"name": "A100"}]),
        lambda d: d["resources"]["candidates"][0].update(ports=["80"]),
        lambda d: d.update(envs={"A": 1}),
        lambda d: d.update(service={"replicas": 1}),
        lambda d: d.update(file_mounts=[{"source": "x"}]),
    ],
)
def test_task_from_dict_refuses_malformed_input(mutate):
    from skyplan.errors import InputError
    from skyplan.spec import task_from_dict, task_to_dict

    data = task_to_dict(load("resources:\n  accelerators: A100:8\n  cpus: 4+\n"))
    mutate(data)
    with pytest.raises(InputError, match="malformed"):
        task_from_dict(data)


def test_service_round_trips_with_post_data():
    from skyplan.spec import task_from_dict, task_to_dict

    task = load(
        "service:\n  readiness_probe: {path: /v1, post_data: {a: [1, 2]}, timeout_seconds: 5}\n"
        "  replica_policy: {min_replicas: 0, max_replicas: 2, target_qps_per_replica: 2.5}\n"
        "resources: {ports: 8080}\n"
    )
    assert task_from_dict(task_to_dict(task)) == task
    assert task_to_dict(task)["service"]["replica_policy"]["target_qps_per_replica"] == 2.5


# --- serve: the service section (issue 12) ------------------------------------------


def test_a_service_needs_a_port():
    d = one_error("service:\n  readiness_probe: /health\n  replicas: 2\n")
    assert (d.path, d.line) == ("$.service", 1)
    assert "resources.ports" in d.message and "$SKYPLAN_PORT" in d.message


def test_a_service_port_in_every_entry_is_enough_but_not_in_one_only():
    load("service: {readiness_probe: /}\nresources:\n  any_of:\n    - {ports: 80}\n    - {ports: 81}\n")
    d = one_error("service: {readiness_probe: /}\nresources:\n  any_of:\n    - {ports: 80}\n    - {cloud: aws}\n")
    assert d.path == "$.service"


@pytest.mark.parametrize("key, value", [("base_ondemand_fallback_replicas", "1"),
                                        ("dynamic_ondemand_fallback", "true")])
def test_on_demand_fallback_needs_spot(key: str, value: str):
    text = f"""\
        service:
          readiness_probe: /health
          replica_policy:
            min_replicas: 2
            {key}: {value}
        resources: {{ports: 8080}}
        """
    d = one_error(text)
    assert (d.path, d.line) == (f"$.service.replica_policy.{key}", 5)
    assert "use_spot: true" in d.message
    load(text.replace("{ports: 8080}", "{ports: 8080, use_spot: true}"))  # with spot: fine


def test_base_on_demand_above_max_replicas():
    d = one_error(
        """\
        service:
          readiness_probe: /health
          replica_policy: {min_replicas: 1, max_replicas: 2, target_qps_per_replica: 1,
                           base_ondemand_fallback_replicas: 3}
        resources: {ports: 8080, use_spot: true}
        """
    )
    assert d.path == "$.service.replica_policy.base_ondemand_fallback_replicas"
    assert "(3) is above max_replicas (2)" in d.message


def test_service_rollout_fields_and_probe_headers_round_trip():
    from skyplan.spec import task_from_dict, task_to_dict

    task = load(
        """\
        service:
          readiness_probe: {path: /health, headers: {Authorization: Bearer x, X-A: "1"}}
          replicas: 2
          load_balancing_policy: round_robin
          max_surge: 0
          drain_timeout_seconds: 30
        resources: {ports: 8080}
        """
    )
    svc = task.service
    assert svc.readiness_probe.headers == (("Authorization", "Bearer x"), ("X-A", "1"))
    assert (svc.load_balancing_policy, svc.max_surge, svc.drain_timeout_seconds) == ("round_robin", 0, 30)
    assert task_from_dict(task_to_dict(task)) == task


def test_service_without_the_new_fields_keeps_its_normalised_form():
    from skyplan.spec import task_to_dict

    data = task_to_dict(load("service: {readiness_probe: /, replicas: 1}\nresources: {ports: 8080}\n"))["service"]
    # Absent, not null: the task_sha256 of a service written before these fields is unchanged.
    assert set(data) == {"readiness_probe", "replica_policy", "replicas"}
    assert "headers" not in data["readiness_probe"]


@pytest.mark.parametrize("text, path", [
    ("  load_balancing_policy: fastest\n", "$.service.load_balancing_policy"),
    ("  max_surge: -1\n", "$.service.max_surge"),
    ("  drain_timeout_seconds: -5\n", "$.service.drain_timeout_seconds"),
    ("  readiness_probe: {path: /, headers: {A: 1}}\n", "$.service.readiness_probe.headers.A"),
])
def test_service_rollout_fields_are_checked(text: str, path: str):
    base = "service:\n" + ("" if "readiness_probe" in text else "  readiness_probe: /\n")
    d = one_error(base + text + "resources: {ports: 8080}\n")
    assert d.path == path
