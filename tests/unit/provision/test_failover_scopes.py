"""Family-scoped quota blocks and the escalation of repeated unknown errors."""

from __future__ import annotations

from skyplan.clouds.aws.classify import classify as aws_classify
from skyplan.clouds.aws.families import quota_families as aws_families
from skyplan.clouds.azure.classify import classify as azure_classify
from skyplan.clouds.azure.families import quota_families as azure_families
from skyplan.clouds.gcp.classify import classify as gcp_classify
from skyplan.clouds.gcp.families import quota_families as gcp_families
from skyplan.errors import Classification, Kind, Scope
from skyplan.planner.candidates import Candidate
from skyplan.provision.failover import AttemptResult, Block, block_for, error_signature, escalate, run_failover

FAMILIES = {"aws": aws_families, "gcp": gcp_families, "azure": azure_families}
CLASSIFY = {"aws": aws_classify, "gcp": gcp_classify, "azure": azure_classify}


def families(c: Candidate) -> frozenset[str]:
    return FAMILIES[c.cloud](c.instance_type, dict(c.accelerators))


def cand(rank, cloud, region, zone, it, acc=(), spot=False):
    return Candidate(rank, cloud, region, zone, it, spot, 8, 32, acc, 1.0, 1.0)


def scripted(texts: dict):
    """Fail candidate ranks with their cloud's real classification of a provider text."""
    tried = []

    def attempt(c, n):
        tried.append(c.rank)
        text = texts.get(c.rank)
        if text is None:
            return AttemptResult(True)
        return AttemptResult(False, CLASSIFY[c.cloud](text.format(zone=c.zone, region=c.region)))

    return attempt, tried


AZURE_FSV2 = (
    "Code: OperationNotAllowed\nMessage: Operation could not be completed as it results in exceeding approved "
    "standardFSv2Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: eastus, "
    "Current Limit: 50, Current Usage: 48, Additional Required: 4, (Minimum) New Limit Required: 52."
)
AZURE_TOTAL = (
    "Azure.RequestFailedException: 'Operation could not be completed as it results in exceeding approved Total "
    "Regional Cores quota. Additional details - Deployment Model: Resource Manager, Location: eastus, Current "
    "Limit: 10, Current Usage: 8, Additional Required: 4, (Minimum) New Limit Required: 12.\nStatus: 409 "
    "(Conflict)\nErrorCode: OperationNotAllowed"
)


def test_azure_family_quota_blocks_that_family_in_that_region_only():
    cands = [
        cand(1, "azure", "eastus", None, "Standard_F4s_v2"),
        cand(2, "azure", "eastus", None, "Standard_F8s_v2"),   # same family, same region: skipped
        cand(3, "azure", "westus2", None, "Standard_F4s_v2"),  # same family, other region: tried
        cand(4, "azure", "eastus", None, "Standard_D4s_v3"),   # other family, same region: tried
    ]
    attempt, tried = scripted({1: AZURE_FSV2, 3: AZURE_FSV2})
    out = run_failover(cands, attempt, families=families)
    assert tried == [1, 3, 4] and out.chosen.rank == 4 and out.skipped == 1
    first = out.attempts[0]
    assert first.classification.scope == Scope.FAMILY and first.classification.family == "fsv2"
    assert first.block.family == frozenset({"fsv2"}) and first.block.region == "eastus"


def test_azure_regional_total_still_blocks_the_region():
    cands = [cand(1, "azure", "eastus", None, "Standard_F4s_v2"),
             cand(2, "azure", "eastus", None, "Standard_D4s_v3"),
             cand(3, "azure", "westus2", None, "Standard_F4s_v2")]
    attempt, tried = scripted({1: AZURE_TOTAL})
    out = run_failover(cands, attempt, families=families)
    assert out.attempts[0].classification.scope == Scope.REGION
    # A region block keeps hardware: the total is per region, the next type may fit in what is left.
    assert tried == [1, 2]


def test_gcp_n2_cpus_blocks_every_n2_type_in_the_region_but_not_n1_or_c2():
    text = "Code: QUOTA_EXCEEDED\nMessage: Quota 'N2_CPUS' exceeded."
    cands = [
        cand(1, "gcp", "us-central1", "us-central1-a", "n2-standard-8"),
        cand(2, "gcp", "us-central1", "us-central1-b", "n2-highmem-8"),   # N2, same region: skipped
        cand(3, "gcp", "us-central1", "us-central1-a", "n1-standard-8"),  # CPUS, not N2: tried
        cand(4, "gcp", "us-east1", "us-east1-b", "n2-standard-8"),        # N2 elsewhere: tried
    ]
    attempt, tried = scripted({1: text, 3: "Quota 'CPUS' exceeded.  Limit: 8.0 in region us-central1."})
    out = run_failover(cands, attempt, families=families)
    assert tried == [1, 3, 4] and out.chosen.rank == 4
    assert out.attempts[0].block.describe() == "us-central1 for quota family N2_CPUS [on-demand]"
    assert out.attempts[1].classification.scope == Scope.REGION


def test_gcp_gpu_quota_covers_every_count_and_host_of_that_gpu():
    cands = [
        cand(1, "gcp", "us-central1", "us-central1-f", "n1-highmem-8", acc=(("V100", 1.0),)),
        cand(2, "gcp", "us-central1", "us-central1-a", "n1-highmem-16", acc=(("V100", 2.0),)),  # skipped
        cand(3, "gcp", "us-central1", "us-central1-a", "n1-standard-8", acc=(("T4", 1.0),)),    # tried
    ]
    attempt, tried = scripted({1: "Quota 'NVIDIA_V100_GPUS' exceeded.  Limit: 1.0 in region us-central1."})
    out = run_failover(cands, attempt, families=families)
    assert tried == [1, 3]


def test_aws_vcpu_limit_blocks_the_failing_types_bucket():
    text = ("An error occurred (VcpuLimitExceeded) when calling the RunInstances operation: You have requested "
            "more vCPU capacity than your current vCPU limit of 16 allows for the instance bucket that the "
            "specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to "
            "request an adjustment to this limit.")
    cands = [
        cand(1, "aws", "us-east-1", "use1-az1", "g4dn.xlarge"),
        cand(2, "aws", "us-east-1", "use1-az2", "g5.xlarge"),    # G and VT bucket: skipped
        cand(3, "aws", "us-east-1", "use1-az1", "g4dn.xlarge", spot=True),  # spot limit is another quota
        cand(4, "aws", "us-east-1", "use1-az1", "p3.2xlarge"),   # P bucket: tried
    ]
    attempt, tried = scripted({1: text, 3: text})
    out = run_failover(cands, attempt, families=families)
    assert tried == [1, 3, 4]
    assert out.attempts[0].block.family == frozenset({"G_VT"})


def test_family_block_falls_back_to_region_when_no_family_is_known():
    c = cand(1, "gcp", "us-central1", "us-central1-a", "n2-standard-8")
    b = block_for(c, Classification(Kind.QUOTA, Scope.FAMILY, "X", ""), frozenset())
    assert (b.region, b.zone, b.hardware, b.family) == ("us-central1", None, "n2-standard-8", None)


def test_a_family_the_mapping_misses_still_blocks_the_failing_types_own_family():
    # Azure puts ND40rs_v2 in standardNDSv2Family; the name-derived key is ndrsv2.
    c = cand(1, "azure", "eastus", None, "Standard_ND40rs_v2")
    b = block_for(c, Classification(Kind.QUOTA, Scope.FAMILY, "QuotaExceeded", "", "ndsv2"), families(c))
    assert b.family == frozenset({"ndsv2", "ndrsv2"})
    assert b.covers(cand(2, "azure", "eastus", None, "Standard_ND40rs_v2"), families(c))


# --- escalation -------------------------------------------------------------------

UNKNOWN_403 = ("googleapi: Error 403: Constraint constraints/compute.restrictVmCreation violated for "
               "'projects/acme-prod/zones/{zone}': VM creation is restricted by an organization policy, "
               "conditionNotMet")


def gcp_zones(n_regions=16, zones="abc"):
    out = []
    for r in range(n_regions):
        region = f"region{r}-west1"
        out.extend(cand(len(out) + 1, "gcp", region, f"{region}-{z}", "n1-standard-8") for z in zones)
    out.append(cand(len(out) + 1, "aws", "us-east-1", "use1-az1", "m5.2xlarge"))
    return out


def test_an_unknown_error_everywhere_no_longer_walks_every_zone():
    cands = gcp_zones()
    assert len(cands) == 49
    attempt, tried = scripted({c.rank: UNKNOWN_403 for c in cands if c.cloud == "gcp"})
    assert gcp_classify(UNKNOWN_403.format(zone="x")).kind == Kind.UNKNOWN
    out = run_failover(cands, attempt)
    gcp_tries = [r for r in tried if cands[r - 1].cloud == "gcp"]
    assert len(gcp_tries) <= 4
    assert out.chosen.cloud == "aws"
    widened = [a.widened for a in out.attempts if a.widened]
    assert widened == ["region: same unknown error in region0-west1-a and region0-west1-b",
                       "cloud: same unknown error in region0-west1 and region1-west1"]


def test_different_unknown_errors_do_not_widen():
    cands = gcp_zones(n_regions=2)
    texts = {1: "weird failure A in {zone}", 2: "something else entirely"}
    attempt, tried = scripted(texts)
    out = run_failover(cands, attempt)
    assert tried == [1, 2, 3] and not any(a.widened for a in out.attempts)


def test_escalation_is_only_for_unknown_errors():
    cands = gcp_zones(n_regions=2)
    text = "The zone 'projects/p/zones/{zone}' does not have enough resources available to fulfill the request."
    attempt, tried = scripted({c.rank: text for c in cands if c.cloud == "gcp"})
    out = run_failover(cands, attempt)
    assert len(tried) == 7 and not any(a.widened for a in out.attempts)


def test_a_zoneless_cloud_widens_on_the_second_failure_in_a_region():
    cands = [cand(1, "azure", "eastus", None, "Standard_D4s_v3"), cand(2, "azure", "eastus", None, "Standard_E4s_v3"),
             cand(3, "azure", "eastus", None, "Standard_F4s_v2"), cand(4, "azure", "westus2", None, "Standard_D4s_v3"),
             cand(5, "azure", "centralus", None, "Standard_D4s_v3")]
    attempt, tried = scripted({c.rank: "unexpected failure: policy denied" for c in cands})
    out = run_failover(cands, attempt)
    assert tried == [1, 2, 4]
    assert [a.widened for a in out.attempts] == [None, "region: same unknown error twice in eastus",
                                                 "cloud: same unknown error in eastus and westus2"]


def test_error_signature_masks_places_and_numbers():
    a = cand(1, "gcp", "us-central1", "us-central1-a", "n1-standard-8")
    b = cand(2, "gcp", "europe-west4", "europe-west4-b", "n2-standard-4")
    ca = Classification(Kind.UNKNOWN, Scope.ZONE, "unknown", "denied in us-central1-a (request 123) for n1-standard-8, "
                        "RequestID: 90147c03-a545-44a3-b4d5-8353da9adf49")
    cb = Classification(Kind.UNKNOWN, Scope.ZONE, "unknown", "denied in europe-west4-b (request 9) for n2-standard-4, "
                        "RequestID: 3e9fe392-f4a6-4499-8c1b-54e5c903a0ba")
    assert error_signature(a, ca) == error_signature(b, cb)
    other = Classification(Kind.UNKNOWN, Scope.ZONE, "unknown", "quota project acme-prod is suspended")
    assert error_signature(a, other) != error_signature(a, ca)
    blk, why = escalate((), a, ca, Block(zone="us-central1-a"))
    assert why is None and blk == Block(zone="us-central1-a")
