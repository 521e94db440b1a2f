"""Table-driven classification of provider error text, shared by every cloud.

A cloud's classifier is an ordered table of :class:`Rule` rows; the first row
that matches decides the verdict. Rows match on provider error *codes* (found as
whole words anywhere in the text, so the same row handles boto's
``An error occurred (X)``, the Go SDK's ``api error X:``, Azure's ``Code="X"``,
``"code": "X"`` and ``(X)`` and gcloud's ``code: X``) and/or on regular
expressions for messages that arrive without their code (the Terraform bridge
often prints only the message). Order the table from specific to generic: a
capacity code must win over the ``StatusCode: 500`` that wraps it.

Messages arrive as the engine shows them: a dynamic provider prefixes its
exception with ``Exception calling application: ``; the Pulumi bridge wraps the
provider text in ``creating EC2 Instance: operation error ...``. Matching is
anywhere in the text, so wrapping does not hide a code. The verdict keeps the
provider text with only the transport prefix removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Pattern, Sequence

from skyplan.errors import Classification, Kind, Scope

UNKNOWN_CODE = "unknown"

# Prefixes added by the transport, not by the provider. Removed (repeatedly) from the front.
_TRANSPORT_PREFIXES = ("Exception calling application:",)


def provider_text(message: object) -> str:
    """The provider's own text: any message, with transport prefixes and outer blanks removed."""
    text = message if isinstance(message, str) else ("" if message is None else str(message))
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for prefix in _TRANSPORT_PREFIXES:
            if text.startswith(prefix):
                text = text[len(prefix):].strip()
                changed = True
    return text


def _code_pattern(code: str) -> Pattern[str]:
    # Codes contain word characters and dots (InvalidAMIID.NotFound). Require that the
    # code is not glued to another identifier character on either side, so that
    # ZONE_RESOURCE_POOL_EXHAUSTED does not match inside ..._WITH_DETAILS.
    return re.compile(r"(?<![A-Za-z0-9_.])" + re.escape(code) + r"(?![A-Za-z0-9_])")


@dataclass(frozen=True)
class Rule:
    """One row of a classifier table.

    A row matches when any of ``codes`` occurs as a whole word, or ``pattern``
    matches; and, when given, ``when`` also matches and ``unless`` does not.
    The reported code is the first of ``codes`` present in the text, else ``code``.
    ``family`` (for ``Scope.FAMILY`` rows) is a regular expression whose first
    matching group is the quota family the text names; the cloud's ``family_key``
    normalises it. A family row whose text names no family reports ``family=None``:
    failover then takes the failing instance type's own family.
    """

    code: str
    kind: Kind
    scope: Scope
    codes: tuple[str, ...] = ()
    pattern: str | None = None
    when: str | None = None
    unless: str | None = None
    why: str = ""
    family: str | None = None
    _code_res: tuple[tuple[str, Pattern[str]], ...] = field(init=False, repr=False, compare=False)
    _pattern_re: Pattern[str] | None = field(init=False, repr=False, compare=False)
    _when_re: Pattern[str] | None = field(init=False, repr=False, compare=False)
    _unless_re: Pattern[str] | None = field(init=False, repr=False, compare=False)
    _family_re: Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.codes and not self.pattern:
            raise ValueError(f"rule {self.code!r} needs codes or a pattern")
        object.__setattr__(self, "_code_res", tuple((c, _code_pattern(c)) for c in self.codes))
        object.__setattr__(self, "_pattern_re", re.compile(self.pattern, re.S) if self.pattern else None)
        object.__setattr__(self, "_when_re", re.compile(self.when, re.S) if self.when else None)
        object.__setattr__(self, "_unless_re", re.compile(self.unless, re.S) if self.unless else None)
        object.__setattr__(self, "_family_re", re.compile(self.family, re.S) if self.family else None)

    def match(self, text: str) -> str | None:
        """The code to report if this row matches ``text``, else None."""
        found: str | None = None
        for code, rx in self._code_res:
            if rx.search(text):
                found = code
                break
        if found is None:
            if self._pattern_re is None or not self._pattern_re.search(text):
                return None
            found = self.code
        if self._when_re is not None and not self._when_re.search(text):
            return None
        if self._unless_re is not None and self._unless_re.search(text):
            return None
        return found

    def family_name(self, text: str) -> str | None:
        """The family this row's ``family`` pattern finds in ``text`` (raw), else None."""
        m = self._family_re.search(text) if self._family_re is not None else None
        if m is None:
            return None
        if not m.groups():
            return m.group(0)
        return next((g for g in m.groups() if g), None)


class TableClassifier:
    """First matching row wins; no row gives ``unknown`` (zone scope, text kept).

    ``family_key`` normalises the family a ``Scope.FAMILY`` row finds, to the form the
    cloud's ``quota_families`` gives for an instance type. When it says the name is a
    regional total (returns None), the verdict is ``Scope.REGION``.
    """

    def __init__(self, cloud: str, rules: Sequence[Rule],
                 family_key: Callable[[str], str | None] = lambda name: name) -> None:
        self.cloud = cloud
        self.rules = tuple(rules)
        self.family_key = family_key

    def classify(self, message: object) -> Classification:
        """Classify one provider message. Never raises."""
        try:
            text = provider_text(message)
        except Exception:  # a hostile __str__: still never raise
            text = ""
        try:
            for rule in self.rules:
                code = rule.match(text)
                if code is not None:
                    if rule.scope != Scope.FAMILY:
                        return Classification(rule.kind, rule.scope, code, text)
                    raw = rule.family_name(text)
                    if raw is None:  # no family named: the failing type's own (e.g. EC2 buckets)
                        return Classification(rule.kind, Scope.FAMILY, code, text)
                    family = self.family_key(raw)
                    if family is None:  # a regional total after all
                        return Classification(rule.kind, Scope.REGION, code, text)
                    return Classification(rule.kind, Scope.FAMILY, code, text, family)
        except Exception:  # defensive: a pathological input must not crash failover
            pass
        return Classification(Kind.UNKNOWN, Scope.ZONE, UNKNOWN_CODE, text)

    def rule_for(self, message: object) -> Rule | None:
        """The row that decides ``message`` (for tests and explanations)."""
        text = provider_text(message)
        for rule in self.rules:
            if rule.match(text) is not None:
                return rule
        return None

    def codes(self) -> Iterable[str]:
        for rule in self.rules:
            yield rule.code
            yield from rule.codes


# --- generic rows every cloud appends after its specific ones ------------------

#: HTTP-level transient failures. Placed last: a specific code in the same text wins.
GENERIC_TRANSIENT: tuple[Rule, ...] = (
    Rule(
        "HTTP_5XX", Kind.TRANSIENT, Scope.NONE,
        pattern=r"(?i)(?:status ?code[:=]? ?|\bStatus=|\bError |RESPONSE |\bHTTP/\d(?:\.\d)? )5(?:00|02|03|04)\b"
        r"|\b(?:500 Internal Server Error|502 Bad Gateway|503 Service Unavailable|504 Gateway Time-?out)\b",
        why="a server-side error with no provider code: retry the same placement",
    ),
    Rule(
        "HTTP_429", Kind.TRANSIENT, Scope.NONE,
        pattern=r"(?i)(?:status ?code[:=]? ?|\bStatus=|\bError |RESPONSE )429\b|\b429 Too Many Requests\b",
        why="throttled: retry the same placement with backoff",
    ),
)


def sample_from(template: str, **fill: object) -> str:
    """Fill ``{name}`` placeholders of a sample template; other braces (JSON) are left alone."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in fill:
            return m.group(0)
        value = fill[key]
        return "" if value is None else str(value)

    return re.sub(r"\{([a-z_]+)\}", sub, template)
