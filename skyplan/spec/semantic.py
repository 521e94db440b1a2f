"""Rules a JSON Schema cannot express well, checked on raw document data.

These run on every document, even one with schema errors, so that one pass
reports everything. Every check therefore looks at the type first and skips
anything the schema has already rejected.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from skyplan.spec import parse
from skyplan.spec.source import PathT, clip

Finding = tuple[PathT, str, "str | None"]

# C0 controls except tab, newline and carriage return; DEL; and the C1 block
# (U+0080-U+009F, which terminals read as escape sequences). None has a place
# in a name, a path, an environment variable or a shell script, and NUL cannot
# even be passed to a process: refused at validate time, not found at apply.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_NAMES = {0x00: " (NUL)", 0x1B: " (ESC)", 0x7F: " (DEL)"}


def control_characters(data: Any, at: PathT = ()) -> list[Finding]:
    """One finding per string (mapping key or value) in ``data`` that holds a control character."""
    out: list[Finding] = []
    stack: list[tuple[PathT, Any]] = [(at, data)]
    while stack:  # iterative: the loader bounds depth, but this also runs on plan files
        path, value = stack.pop()
        if isinstance(value, str):
            message = _control_message(value, "")
            if message:
                out.append((path, message, None))
        elif isinstance(value, dict):
            for key, item in value.items():
                message = _control_message(key, "the key ") if isinstance(key, str) else None
                if message:
                    out.append((path + (key,), message, None))
                else:
                    stack.append((path + (key,), item))
        elif isinstance(value, list):
            stack.extend((path + (i,), item) for i, item in enumerate(value))
    out.reverse()  # document order, for the reader
    return out


def _control_message(text: str, what: str) -> str | None:
    m = _CONTROL_RE.search(text)
    if m is None:
        return None
    code = ord(m.group())
    return (f"{what}contains the control character U+{code:04X}{_CONTROL_NAMES.get(code, '')} "
            f"at offset {m.start()}; only tab, newline and carriage return are allowed in text")


def check_task(data: Any) -> list[Finding]:
    """All semantic findings for one task document, as (path, message, suggestion)."""
    if not isinstance(data, dict):
        return []
    out: list[Finding] = control_characters(data)
    name = data.get("name")
    if isinstance(name, str) and not parse.is_cluster_name(name) and not _CONTROL_RE.search(name):
        # The name is the default cluster name: refused with a suggestion, never rewritten.
        out.append((("name",), f"'{clip(name)}' is not a valid cluster name ({parse.CLUSTER_NAME_RULE})",
                    parse.suggest_cluster_name(name)))
    res = data.get("resources")
    if isinstance(res, dict):
        out.extend(_check_resources(res, ("resources",)))
    for section in ("envs", "secrets"):
        names = data.get(section)
        if isinstance(names, dict):
            for key in names:
                if not parse.is_env_name(key) and not _CONTROL_RE.search(key):
                    out.append(
                        ((section, key), f"'{clip(key)}' is not a valid environment variable name "
                         "(letters, digits and _; not starting with a digit)", None)
                    )
    envs, secrets = data.get("envs"), data.get("secrets")
    if isinstance(envs, dict) and isinstance(secrets, dict):
        for key in secrets:
            if key in envs:
                out.append((("secrets", key), f"'{clip(key)}' is both in envs and in secrets; "
                            "keep it in secrets only (envs are not secret)", None))
    service = data.get("service")
    if isinstance(service, dict):
        out.extend(_check_service(service, ("service",), res if isinstance(res, dict) else {}))
    return out


def _check_resources(res: dict[str, Any], at: PathT) -> Iterator[Finding]:
    yield from _check_fields(res, at)
    entries: dict[str, list[Any]] = {
        k: res[k] for k in ("any_of", "ordered") if isinstance(res.get(k), list)
    }
    for key, items in entries.items():
        for i, entry in enumerate(items):
            if isinstance(entry, dict):
                yield from _check_fields(entry, at + (key, i))
    if "any_of" in entries and "ordered" in entries:
        yield at + ("ordered",), "use either 'any_of' (cheapest first) or 'ordered' (preference order), not both", None
    if "ordered" in entries:
        if _alternatives(res.get("accelerators")) > 1:
            yield at + ("accelerators",), _ORDERED_MULTI, None
        for i, entry in enumerate(entries["ordered"]):
            if isinstance(entry, dict) and _alternatives(entry.get("accelerators")) > 1:
                yield at + ("ordered", i, "accelerators"), _ORDERED_MULTI, None


_ORDERED_MULTI = (
    "several accelerators cannot be combined with 'ordered'; "
    "give each accelerator its own 'ordered' entry instead"
)


def _alternatives(acc: Any) -> int:
    if isinstance(acc, (dict, list)):
        return len(acc)
    return 1 if isinstance(acc, str) else 0


def _check_fields(res: dict[str, Any], at: PathT) -> Iterator[Finding]:
    """Checks for the fields shared by `resources` and each any_of / ordered entry."""
    for key in ("cpus", "memory"):
        value = res.get(key)
        if isinstance(value, str):
            yield from _attempt(at + (key,), parse.parse_quantity, value)
    acc = res.get("accelerators")
    if isinstance(acc, str):
        yield from _attempt(at + ("accelerators",), parse.parse_accelerator, acc)
    elif isinstance(acc, dict):
        seen: dict[Any, str] = {}
        for name, count in acc.items():
            path = at + ("accelerators", name)
            if count is not None and (isinstance(count, bool) or not isinstance(count, (int, float))):
                continue  # the schema reports the type
            try:
                parsed = parse.parse_accelerator(name, count)
            except ValueError as exc:
                yield path, str(exc), None
                continue
            yield from _duplicate(seen, parsed, name, path)
    elif isinstance(acc, list):
        seen = {}
        for i, item in enumerate(acc):
            if isinstance(item, str):
                path = at + ("accelerators", i)
                try:
                    parsed = parse.parse_accelerator(item)
                except ValueError as exc:
                    yield path, str(exc), None
                    continue
                yield from _duplicate(seen, parsed, item, path)
    ports = res.get("ports")
    if isinstance(ports, (int, float, str)) and not isinstance(ports, bool):
        yield from _attempt(at + ("ports",), parse.parse_ports, ports)
    elif isinstance(ports, list):
        for i, item in enumerate(ports):
            if isinstance(item, (int, float, str)) and not isinstance(item, bool):
                yield from _attempt(at + ("ports", i), parse.parse_ports, item)
    jr = res.get("job_recovery")
    if isinstance(jr, str):
        yield from _strategy(jr, at + ("job_recovery",))
    elif isinstance(jr, dict):
        if isinstance(jr.get("strategy"), str):
            yield from _strategy(jr["strategy"], at + ("job_recovery", "strategy"))
        if jr.get("backoff_limit") is not None and jr.get("backoffLimit") is not None:
            yield (at + ("job_recovery", "backoffLimit"),
                   "give backoff_limit or its seed spelling backoffLimit, not both", "backoff_limit")


def _duplicate(seen: dict[Any, str], parsed: Any, text: str, path: PathT) -> Iterator[Finding]:
    key = (parsed.name.lower(), parsed.count)
    if key in seen:
        yield path, f"'{text}' repeats '{seen[key]}'", None
    else:
        seen[key] = text


def _strategy(text: str, path: PathT) -> Iterator[Finding]:
    try:
        parse.parse_job_recovery(text)
    except ValueError as exc:
        from skyplan.spec.validate import _closest

        yield path, str(exc), _closest(text, list(parse.JOB_RECOVERY_STRATEGIES))


def _attempt(path: PathT, fn: Any, value: Any) -> Iterator[Finding]:
    try:
        fn(value)
    except ValueError as exc:
        yield path, str(exc), None


def _check_service(service: dict[str, Any], at: PathT, res: dict[str, Any]) -> Iterator[Finding]:
    entries = [e for k in ("any_of", "ordered") if isinstance(res.get(k), list) for e in res[k] if isinstance(e, dict)]
    if res.get("ports") is None and (not entries or any(e.get("ports") is None for e in entries)):
        # The load balancer forwards to this port ($SKYPLAN_PORT on the replica).
        yield at, ("a service needs the port its replicas listen on: give resources.ports "
                   "(the task reads it as $SKYPLAN_PORT)"), None
    policy = service.get("replica_policy")
    if isinstance(policy, dict):
        yield from _check_spot_policy(policy, at + ("replica_policy",), service, res, entries)
    probe = service.get("readiness_probe")
    probe_path, where = (probe, at + ("readiness_probe",)) if isinstance(probe, str) else (None, None)
    if isinstance(probe, dict) and isinstance(probe.get("path"), str):
        probe_path, where = probe["path"], at + ("readiness_probe", "path")
    if probe_path is not None and where is not None and not probe_path.startswith("/"):
        yield where, f"the readiness probe path must start with '/', got '{probe_path}'", None
    policy = service.get("replica_policy")
    if service.get("replicas") is not None and policy is not None:
        yield at + ("replicas",), "give either 'replicas' (a fixed count) or 'replica_policy', not both", None
    if not isinstance(policy, dict):
        return
    lo, hi = policy.get("min_replicas"), policy.get("max_replicas")
    if _is_int(lo) and _is_int(hi) and hi < lo:
        yield (
            at + ("replica_policy", "max_replicas"),
            f"max_replicas ({int(hi)}) is below min_replicas ({int(lo)})",
            None,
        )
    if _is_int(lo) and _is_int(hi) and hi > lo and policy.get("target_qps_per_replica") is None:
        yield (
            at + ("replica_policy",),
            "autoscaling between min_replicas and max_replicas needs target_qps_per_replica",
            None,
        )


def _check_spot_policy(policy: dict[str, Any], at: PathT, service: dict[str, Any], res: dict[str, Any],
                       entries: list[dict[str, Any]]) -> Iterator[Finding]:
    """The seed-002 options split replicas between spot and on-demand: they need spot."""
    spot = res.get("use_spot") is True or any(e.get("use_spot") is True for e in entries)
    base, dynamic = policy.get("base_ondemand_fallback_replicas"), policy.get("dynamic_ondemand_fallback")
    if not spot:
        if _is_int(base) and base > 0:
            yield (at + ("base_ondemand_fallback_replicas",),
                   "base_ondemand_fallback_replicas keeps some replicas on-demand and the rest on spot, but the "
                   "task does not use spot; set resources.use_spot: true, or remove it", None)
        if dynamic is True:
            yield (at + ("dynamic_ondemand_fallback",),
                   "dynamic_ondemand_fallback stands in on-demand replicas for missing spot ones, but the task "
                   "does not use spot; set resources.use_spot: true, or remove it", None)
    lo, hi = policy.get("min_replicas"), policy.get("max_replicas")
    top = hi if _is_int(hi) else lo
    if _is_int(base) and _is_int(top) and base > top:
        yield (at + ("base_ondemand_fallback_replicas",),
               f"base_ondemand_fallback_replicas ({int(base)}) is above max_replicas ({int(top)}); "
               "at most max_replicas replicas run", None)


def _is_int(v: Any) -> bool:
    # JSON Schema's "integer" admits whole floats such as 3.0
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
