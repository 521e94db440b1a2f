"""The shared table-driven engine: matching rules, prefixes, unknown text, robustness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyplan.clouds.aws.classify import CLASSIFIER as AWS
from skyplan.clouds.azure.classify import CLASSIFIER as AZURE
from skyplan.clouds.classify import GENERIC_TRANSIENT, Rule, TableClassifier, provider_text, sample_from
from skyplan.clouds.gcp.classify import CLASSIFIER as GCP
from skyplan.errors import Kind, Scope

ALL = (AWS, GCP, AZURE)


def table(*rules: Rule) -> TableClassifier:
    return TableClassifier("test", rules)


def test_unknown_text_is_zone_scoped_and_kept_verbatim() -> None:
    text = "the frobnicator declined: 42 widgets"
    for clf in ALL:
        got = clf.classify(text)
        assert (got.kind, got.scope, got.code, got.message) == (Kind.UNKNOWN, Scope.ZONE, "unknown", text)


def test_transport_prefix_is_removed_even_when_repeated() -> None:
    assert provider_text("Exception calling application: Exception calling application:  boom ") == "boom"
    assert provider_text("  plain  ") == "plain"
    assert provider_text(None) == ""


def test_code_must_be_a_whole_word() -> None:
    clf = table(Rule("SHORT", Kind.CAPACITY, Scope.ZONE, codes=("POOL_EXHAUSTED",)))
    assert clf.classify("POOL_EXHAUSTED_WITH_DETAILS happened").kind is Kind.UNKNOWN
    assert clf.classify("X.POOL_EXHAUSTED").kind is Kind.UNKNOWN
    assert clf.classify("(POOL_EXHAUSTED) happened").code == "POOL_EXHAUSTED"
    assert clf.classify('Code="POOL_EXHAUSTED"').code == "POOL_EXHAUSTED"


def test_codes_are_case_sensitive() -> None:
    clf = table(Rule("Unsupported", Kind.CAPACITY, Scope.ZONE, codes=("Unsupported",)))
    assert clf.classify("unsupported thing").kind is Kind.UNKNOWN
    assert clf.classify("api error Unsupported: x").kind is Kind.CAPACITY


def test_first_matching_row_wins() -> None:
    clf = table(
        Rule("A", Kind.CAPACITY, Scope.ZONE, codes=("CodeA",)),
        Rule("B", Kind.TRANSIENT, Scope.NONE, pattern=r"StatusCode: 500"),
    )
    assert clf.classify("StatusCode: 500, api error CodeA: x").code == "CodeA"
    assert clf.classify("StatusCode: 500, api error Other: x").code == "B"


def test_when_and_unless_narrow_a_row() -> None:
    clf = table(
        Rule("Q", Kind.QUOTA, Scope.REGION, codes=("NotAllowed",), when=r"quota", unless=r"ignore me"),
        Rule("T", Kind.TRANSIENT, Scope.NONE, codes=("NotAllowed",)),
    )
    assert clf.classify("NotAllowed: quota reached").kind is Kind.QUOTA
    assert clf.classify("NotAllowed: too many requests").kind is Kind.TRANSIENT
    assert clf.classify("NotAllowed: quota reached, ignore me").kind is Kind.TRANSIENT


def test_reported_code_prefers_a_code_found_in_the_text() -> None:
    clf = table(Rule("Canonical", Kind.QUOTA, Scope.REGION, codes=("Alias",), pattern=r"limit hit"))
    assert clf.classify("Alias: limit hit").code == "Alias"
    assert clf.classify("the limit hit us").code == "Canonical"


def test_rule_needs_codes_or_pattern() -> None:
    with pytest.raises(ValueError):
        Rule("nothing", Kind.UNKNOWN, Scope.ZONE)


@pytest.mark.parametrize(
    "text",
    [
        "https response error StatusCode: 503, RequestID: 1",
        "googleapi: Error 502: gateway trouble",
        "RESPONSE 500: 500 Internal Server Error",
        "Status=429 something",
    ],
)
def test_generic_http_failures_are_transient_on_every_cloud(text: str) -> None:
    for clf in ALL:
        got = clf.classify(text)
        assert (got.kind, got.scope) == (Kind.TRANSIENT, Scope.NONE), clf.cloud


def test_generic_rows_are_last_in_every_table() -> None:
    for clf in ALL:
        assert clf.rules[-len(GENERIC_TRANSIENT):] == GENERIC_TRANSIENT


class _Hostile:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize("value", [None, b"bytes \xff", 12, ["list"], _Hostile(), "", "\x00" * 50, "(" * 5000])
def test_odd_inputs_never_raise(value: object) -> None:
    for clf in ALL:
        got = clf.classify(value)
        assert got.kind is Kind.UNKNOWN or isinstance(got.code, str)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_classify_never_raises_on_any_string(text: str) -> None:
    for clf in ALL:
        got = clf.classify(text)
        assert got.message == provider_text(text)
        assert isinstance(got.kind, Kind) and isinstance(got.scope, Scope)


@settings(max_examples=200, deadline=None)
@given(st.text(), st.sampled_from(["InsufficientInstanceCapacity", "ZONE_RESOURCE_POOL_EXHAUSTED", "ZonalAllocationFailed"]))
def test_a_capacity_code_in_any_surrounding_text_is_found(noise: str, code: str) -> None:
    """A capacity code framed as an SDK prints it is recognised whatever text surrounds it."""
    clf = {"InsufficientInstanceCapacity": AWS, "ZONE_RESOURCE_POOL_EXHAUSTED": GCP, "ZonalAllocationFailed": AZURE}[code]
    got = clf.classify(f"{noise} ({code}) {noise}")
    assert (got.kind, got.scope) == (Kind.CAPACITY, Scope.ZONE)


def test_sample_from_fills_names_and_leaves_json_braces() -> None:
    tpl = '{"error": {"code": "X"}} in {zone} for {missing}'
    assert sample_from(tpl, zone="z1") == '{"error": {"code": "X"}} in z1 for {missing}'
