"""Sim scenarios: what each simulated placement does when the engine creates it.

The format is fixed (others write scenarios against it)::

    default: ok                 # outcome when no rule matches
    latency_s: 0                # per create, default 0
    rules:                      # first match wins; omitted keys match anything
      - {cloud: gcp, region: us-central1, zone: us-central1-a,
         instance_type: n1-highmem-8, use_spot: false,
         outcome: capacity,     # ok | capacity | quota | auth | invalid | transient | hang
         message: "...",        # optional: the exact provider text
         times: 2,              # optional: the first N matching attempts only
         switch: spot-out}      # optional: matches only while switch spot-out is on
    switches:                   # optional: each switch's value until `skyplan sim switch NAME on|off`
      spot-out: on              # on | off
    preemptions:                # used by jobs/serve
      - {cloud: gcp, zone: us-west1-a, after_s: 30}

``times`` needs a count that outlives one process (each create runs in a fresh
dynamic-provider process), so ``match`` keeps it in the sim ledger, keyed by
the scenario file's sha256 and the rule's index. A spent rule stops matching
and the next rule (or ``default``) decides. For AWS, zones are AZ IDs as in the
catalog (``use1-az1``).

A switch scripts a change while something runs (spot capacity goes away, then
comes back): a rule with ``switch: NAME`` matches only while NAME is on. A rule
may name only a switch that ``switches`` declares, with its value at the start;
``skyplan sim switch NAME on|off`` flips it from then on. The value set is kept
in the sim ledger (per ``SKYPLAN_HOME``, like the ``times`` counters), so every
provider process sees it.

Stdlib, PyYAML and skyplan's own loader only: this module runs inside the
dynamic provider's process. Files are read through ``skyplan.spec.bounded``
like every task and plan file, so a hostile scenario is refused, not expanded.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from skyplan.errors import Diagnostic, SpecError

OUTCOMES = ("ok", "capacity", "quota", "auth", "invalid", "transient", "hang")
#: Outcomes that make create raise the provider's error text.
FAILURES = ("capacity", "quota", "auth", "invalid", "transient")

_MATCH_KEYS = ("cloud", "region", "zone", "instance_type", "use_spot")
_RULE_KEYS = _MATCH_KEYS + ("outcome", "message", "times", "switch")
_PREEMPT_KEYS = _MATCH_KEYS + ("after_s",)
_TOP_KEYS = ("default", "latency_s", "rules", "preemptions", "switches")
#: A switch's name: what ``skyplan sim switch`` accepts too.
SWITCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SWITCH_VALUES = {"on": True, "off": False, True: True, False: False}


class ScenarioError(SpecError):
    """A scenario file failed validation. The message lists every finding, so it
    reads well even where only ``str(error)`` is shown (a provider's exception)."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(diagnostics, hint="see the scenario format in skyplan/clouds/sim/scenario.py")
        head = f"invalid sim scenario {diagnostics[0].file}" if diagnostics else "invalid sim scenario"
        self.headline = head  # the CLI prints the findings themselves first: not twice
        self.message = head + ":\n" + "\n".join("  " + d.format() for d in diagnostics)
        self.args = (self.message,)


@dataclass(frozen=True)
class _Match:
    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    use_spot: bool | None = None

    def matches(self, placement: Any) -> bool:
        for key in _MATCH_KEYS:
            want = getattr(self, key)
            if want is None:
                continue
            have = _get(placement, key)
            if key == "use_spot":
                if bool(have) != want:
                    return False
            elif have != want:
                return False
        return True


@dataclass(frozen=True)
class Rule(_Match):
    outcome: str = "ok"
    message: str | None = None
    times: int | None = None
    switch: str | None = None  # matches only while this switch is on


@dataclass(frozen=True)
class Preemption(_Match):
    after_s: float = 0.0


@dataclass(frozen=True)
class Scenario:
    default: str = "ok"
    latency_s: float = 0.0
    rules: tuple[Rule, ...] = ()
    preemptions: tuple[Preemption, ...] = ()
    #: (name, on) of every switch, as the file starts it.
    switches: tuple[tuple[str, bool], ...] = ()
    #: sha256 of the file's bytes: the key of the ``times`` counters.
    sha256: str = ""
    source: str | None = None


@dataclass(frozen=True)
class Decision:
    """What one create does: the outcome, the rule's own message (if it gave one)
    and which rule decided (None: the default)."""

    outcome: str
    message: str | None
    rule: int | None


def _get(placement: Any, key: str) -> Any:
    if isinstance(placement, Mapping):
        return placement.get(key)
    return getattr(placement, key, None)


# --- loading ----------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file. Raises ScenarioError (an InputError).

    The file is read through ``skyplan.spec.bounded``: a regular file of at
    most 1 MiB, composed within depth and value limits (see the README).
    """
    from skyplan.spec import bounded

    p = Path(path)
    try:
        data = bounded.read_bytes(p, bounded.SCENARIO)
    except SpecError as e:
        raise ScenarioError(e.diagnostics) from None
    return parse(data, source=str(p))


load_scenario = load  # the name the apply path imports


def parse(data: bytes | str, source: str = "<scenario>") -> Scenario:
    """Validate scenario text and build a Scenario; every finding is reported at once."""
    from skyplan.spec import bounded
    from skyplan.spec.source import parse_documents

    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    digest = hashlib.sha256(raw).hexdigest()
    try:
        bounded.check_size(len(raw), bounded.SCENARIO, source)
        text = bounded.decode_text(raw, source)
        docs, found = parse_documents(text, source, bounded.SCENARIO)
    except SpecError as e:
        raise ScenarioError(e.diagnostics) from None
    if len(docs) > 1:
        line, col = docs[1].locate(())
        raise ScenarioError([Diagnostic(source, line, col, "$", "a scenario is one YAML document, not several")])
    doc = docs[0] if docs else None
    v = _Validator(source, _marks(doc.marks) if doc is not None else {})
    scenario = v.scenario(doc.data if doc is not None else None, digest)
    if found or v.diagnostics:
        # The loader's findings (duplicate keys, unsupported tags) first; a value
        # it already refused needs no second message from the validator.
        seen = {d.path for d in found}
        raise ScenarioError(found + [d for d in v.diagnostics if d.path not in seen])
    return scenario


def _marks(marks: dict[tuple, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """The loader's positions (tuple paths) keyed the way ``_Validator`` names paths
    (``$.rules[0].cloud``; a ``#key`` suffix for a key's own position)."""
    out: dict[str, tuple[int, int]] = {}
    for path, pos in marks.items():
        text = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        out[text] = pos
        out[text + "#key"] = pos
    return out


class _Validator:
    def __init__(self, source: str, marks: dict[str, tuple[int, int]]) -> None:
        self.source = source
        self.marks = marks
        self.diagnostics: list[Diagnostic] = []

    def err(self, path: str, message: str, suggestion: str | None = None, *, at_key: bool = False) -> None:
        line, col = self.marks.get(path + "#key" if at_key else path) or self.marks.get(path) or (None, None)
        self.diagnostics.append(Diagnostic(self.source, line, col, path, message, suggestion))

    def keys(self, obj: dict, allowed: tuple[str, ...], path: str) -> None:
        for key in obj:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                self.err(
                    f"{path}.{key}",
                    f"unknown key '{key}' (allowed: {', '.join(allowed)})",
                    close[0] if close else None,
                    at_key=True,
                )

    def choice(self, value: Any, allowed: tuple[str, ...], path: str, what: str) -> str | None:
        if not isinstance(value, str) or value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1)
            self.err(path, f"{what} must be one of {', '.join(allowed)}, not {value!r}", close[0] if close else None)
            return None
        return value

    def number(self, value: Any, path: str, what: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            self.err(path, f"{what} must be a number >= 0, not {value!r}")
            return None
        return float(value)

    def string(self, value: Any, path: str, what: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.err(path, f"{what} must be a non-empty string, not {value!r}")
            return None
        return value

    def scenario(self, doc: Any, digest: str) -> Scenario:
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            self.err("$", f"a scenario is a mapping with keys {', '.join(_TOP_KEYS)}, not {type(doc).__name__}")
            return Scenario(sha256=digest, source=self.source)
        self.keys(doc, _TOP_KEYS, "$")
        default = "ok"
        if "default" in doc:
            default = self.choice(doc["default"], OUTCOMES, "$.default", "default") or "ok"
        latency = 0.0
        if "latency_s" in doc:
            latency = self.number(doc["latency_s"], "$.latency_s", "latency_s") or 0.0
        switches = self.switches(doc.get("switches"))
        rules = tuple(r for r in self.items(doc, "rules", self.rule) if r is not None)
        for i, rule in enumerate(rules):
            if rule.switch is not None and rule.switch not in dict(switches):
                self.err(f"$.rules[{i}].switch", f"switch '{rule.switch}' is not declared under switches "
                         f"(add `switches: {{{rule.switch}: off}}`)",
                         (difflib.get_close_matches(rule.switch, [n for n, _ in switches], n=1) or [None])[0])
        pre = tuple(p for p in self.items(doc, "preemptions", self.preemption) if p is not None)
        return Scenario(default, latency, rules, pre, switches, digest, self.source)

    def switches(self, value: Any) -> tuple[tuple[str, bool], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.err("$.switches", f"switches must be a mapping of names to on or off, not {type(value).__name__}")
            return ()
        out = []
        for name, state in value.items():
            path = f"$.switches.{name}"
            if not isinstance(name, str) or not SWITCH_NAME.match(name):
                self.err(path, f"a switch name is letters, digits, '_', '.' and '-', not {name!r}", at_key=True)
            elif not isinstance(state, (bool, str)) or state not in _SWITCH_VALUES:
                self.err(path, f"a switch is on or off, not {state!r}")
            else:
                out.append((name, _SWITCH_VALUES[state]))
        return tuple(out)

    def items(self, doc: dict, key: str, build) -> list:
        value = doc.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(f"$.{key}", f"{key} must be a list of mappings, not {type(value).__name__}")
            return []
        out = []
        for i, item in enumerate(value):
            path = f"$.{key}[{i}]"
            if not isinstance(item, dict):
                self.err(path, f"each entry of {key} must be a mapping, not {type(item).__name__}")
                continue
            out.append(build(item, path))
        return out

    def match_fields(self, item: dict, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "cloud" in item:
            from skyplan.clouds import registry

            out["cloud"] = self.choice(item["cloud"], registry.simulatable(), f"{path}.cloud", "cloud")
        for key in ("region", "zone", "instance_type"):
            if key in item:
                out[key] = self.string(item[key], f"{path}.{key}", key)
        if "use_spot" in item:
            if isinstance(item["use_spot"], bool):
                out["use_spot"] = item["use_spot"]
            else:
                self.err(f"{path}.use_spot", f"use_spot must be true or false, not {item['use_spot']!r}")
        return out

    def rule(self, item: dict, path: str) -> Rule | None:
        n = len(self.diagnostics)
        self.keys(item, _RULE_KEYS, path)
        fields = self.match_fields(item, path)
        outcome = None
        if "outcome" not in item:
            self.err(path, "a rule needs an outcome (" + " | ".join(OUTCOMES) + ")")
        else:
            outcome = self.choice(item["outcome"], OUTCOMES, f"{path}.outcome", "outcome")
        message = None
        if "message" in item:
            message = self.string(item["message"], f"{path}.message", "message")
            if outcome in ("ok", "hang"):
                self.err(f"{path}.message", f"message is only used by failure outcomes ({', '.join(FAILURES)})")
        switch = None
        if "switch" in item:
            switch = self.string(item["switch"], f"{path}.switch", "switch")
        times = None
        if "times" in item:
            t = item["times"]
            if isinstance(t, bool) or not isinstance(t, int) or t < 1:
                self.err(f"{path}.times", f"times must be a whole number >= 1, not {t!r}")
            else:
                times = t
        if len(self.diagnostics) > n or outcome is None:
            return None
        return Rule(**fields, outcome=outcome, message=message, times=times, switch=switch)

    def preemption(self, item: dict, path: str) -> Preemption | None:
        n = len(self.diagnostics)
        self.keys(item, _PREEMPT_KEYS, path)
        fields = self.match_fields(item, path)
        after = None
        if "after_s" not in item:
            self.err(path, "a preemption needs after_s (seconds after create)")
        else:
            after = self.number(item["after_s"], f"{path}.after_s", "after_s")
        if len(self.diagnostics) > n or after is None:
            return None
        return Preemption(**fields, after_s=after)


# --- matching ---------------------------------------------------------------------


def decide(scenario: Scenario, placement: Any, *, db: str | os.PathLike[str] | None = None, count: bool = True) -> Decision:
    """The first rule that matches ``placement`` (and is not spent) decides.

    ``placement`` is a ProvisionRequest or a mapping with the keys cloud, region,
    zone, instance_type, use_spot. A rule with ``times`` takes one hit from the
    ledger at ``db`` each time it decides; ``count=False`` looks without taking
    (a spent rule is then still skipped). A rule with ``switch`` is skipped while
    that switch is off (``switch_on``).
    """
    for i, rule in enumerate(scenario.rules):
        if not rule.matches(placement):
            continue
        if rule.switch is not None and not switch_on(scenario, rule.switch, db=db):
            continue
        if rule.times is not None:
            from skyplan.clouds.sim import ledger

            if count:
                if not ledger.take_hit(db, scenario.sha256, i, rule.times):
                    continue
            elif ledger.hits(db, scenario.sha256, i) >= rule.times:
                continue
        return Decision(rule.outcome, rule.message, i)
    return Decision(scenario.default, None, None)


def switch_on(scenario: Scenario, name: str, *, db: str | os.PathLike[str] | None = None) -> bool:
    """Whether switch ``name`` is on: as last set in the ledger at ``db`` (``skyplan
    sim switch``), else as the scenario's ``switches`` start it (off if it has none)."""
    from skyplan.clouds.sim import ledger

    value = ledger.switch(db, name)
    return value if value is not None else dict(scenario.switches).get(name, False)


def match(scenario: Scenario, placement: Any, *, db: str | os.PathLike[str] | None = None) -> tuple[str, str | None]:
    """``(outcome, rule message or None)`` for one create. See ``decide``."""
    d = decide(scenario, placement, db=db)
    return d.outcome, d.message


def preempt_after(scenario: Scenario, placement: Any) -> float | None:
    """Seconds after create at which the first matching preemption strikes, or None."""
    for p in scenario.preemptions:
        if p.matches(placement):
            return p.after_s
    return None
