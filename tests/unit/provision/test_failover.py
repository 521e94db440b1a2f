"""The failover loop and blocklist, with fake attempts: no engine involved."""

from __future__ import annotations

from skyplan.errors import Classification, Kind, Scope
from skyplan.planner.candidates import Candidate
from skyplan.provision.failover import AttemptResult, Block, Blocklist, Policy, block_for, run_failover


def cand(rank, cloud="gcp", region="us-central1", zone="us-central1-a", it="n1-highmem-8", acc=(("V100", 1.0),),
         spot=False, cost=1.0):
    return Candidate(rank, cloud, region, zone, it, spot, 8, 52, acc, cost, cost)


def fail(kind, scope, code="X"):
    return AttemptResult(False, Classification(kind, scope, code, f"{code} message"))


OK = AttemptResult(True)


def scripted(results: dict):
    """Fail each candidate as scripted (by rank); succeed otherwise."""
    tried = []

    def attempt(c, n):
        tried.append(c.rank)
        r = results.get(c.rank)
        if isinstance(r, list):
            return r.pop(0) if r else OK
        return r or OK

    return attempt, tried


def test_capacity_blocks_the_zone_for_that_hardware_only():
    cands = [
        cand(1, zone="us-central1-a", it="n1-standard-4"),
        cand(2, zone="us-central1-a", it="n1-highmem-8"),  # same zone, same GPU: skipped
        cand(3, zone="us-central1-a", it="n1-standard-8", acc=(("T4", 1.0),)),  # other GPU: tried
    ]
    attempt, tried = scripted({1: fail(Kind.CAPACITY, Scope.ZONE), 3: fail(Kind.CAPACITY, Scope.ZONE)})
    out = run_failover(cands, attempt)
    assert tried == [1, 3]
    assert out.chosen is None and out.skipped == 1


def test_seed_000_zone_walk_ends_in_us_west1_a():
    zones = ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]
    cands = [cand(i + 1, zone=z) for i, z in enumerate(zones)]
    cands.append(cand(5, region="us-west1", zone="us-west1-a"))
    attempt, tried = scripted({i + 1: fail(Kind.CAPACITY, Scope.ZONE, "ZONE_RESOURCE_POOL_EXHAUSTED") for i in range(4)})
    out = run_failover(cands, attempt)
    assert tried == [1, 2, 3, 4, 5]
    assert out.chosen.zone == "us-west1-a"
    assert [a.ok for a in out.attempts] == [False] * 4 + [True]


def test_regional_quota_blocks_remaining_zones_of_region():
    cands = [cand(1, zone="us-central1-a"), cand(2, zone="us-central1-b"), cand(3, region="us-east1", zone="us-east1-c")]
    attempt, tried = scripted({1: fail(Kind.QUOTA, Scope.REGION, "QUOTA_EXCEEDED")})
    out = run_failover(cands, attempt)
    assert tried == [1, 3] and out.chosen.rank == 3 and out.skipped == 1


def test_cloud_wide_quota_blocks_that_hardware_in_every_region_but_not_others():
    cands = [
        cand(1, zone="us-central1-a"),
        cand(2, region="us-west1", zone="us-west1-a"),
        cand(3, region="us-west1", zone="us-west1-a", acc=(("T4", 1.0),)),
    ]
    attempt, tried = scripted({1: fail(Kind.QUOTA, Scope.CLOUD, "GPUS_ALL_REGIONS")})
    out = run_failover(cands, attempt)
    assert tried == [1, 3] and out.chosen.rank == 3


def test_auth_blocks_the_whole_cloud_and_moves_to_next_cloud():
    cands = [cand(1), cand(2, zone="us-central1-b", acc=(("T4", 1.0),)),
             cand(3, cloud="aws", region="us-east-1", zone="use1-az1", it="p3.2xlarge")]
    attempt, tried = scripted({1: fail(Kind.AUTH, Scope.CLOUD)})
    out = run_failover(cands, attempt)
    assert tried == [1, 3] and out.chosen.cloud == "aws"


def test_invalid_request_stops_at_once():
    cands = [cand(1), cand(2, zone="us-central1-b")]
    attempt, tried = scripted({1: fail(Kind.INVALID, Scope.ALL)})
    out = run_failover(cands, attempt)
    assert tried == [1] and out.chosen is None and out.stopped_by.candidate.rank == 1


def test_transient_retries_same_placement_with_backoff():
    sleeps = []
    cands = [cand(1), cand(2, zone="us-central1-b")]
    attempt, tried = scripted({1: [fail(Kind.TRANSIENT, Scope.NONE), fail(Kind.TRANSIENT, Scope.NONE)]})
    out = run_failover(cands, attempt, policy=Policy(transient_retries=2, backoff_s=0.5), sleep=sleeps.append)
    assert tried == [1, 1, 1] and out.chosen.rank == 1
    assert sleeps == [0.5, 1.0]


def test_transient_beyond_retries_blocks_the_zone():
    cands = [cand(1), cand(2, zone="us-central1-b")]
    attempt, tried = scripted({1: [fail(Kind.TRANSIENT, Scope.NONE)] * 3})
    out = run_failover(cands, attempt, policy=Policy(transient_retries=1, backoff_s=0))
    assert tried == [1, 1, 2] and out.chosen.rank == 2


def test_unknown_error_is_zone_scoped_and_does_not_crash():
    cands = [cand(1), cand(2, zone="us-central1-b")]
    attempt, tried = scripted({1: AttemptResult(False, None)})
    out = run_failover(cands, attempt)
    assert tried == [1, 2] and out.attempts[0].classification.kind == Kind.UNKNOWN


def test_spot_block_does_not_cover_on_demand():
    cands = [cand(1, spot=True), cand(2, spot=False)]
    attempt, tried = scripted({1: fail(Kind.CAPACITY, Scope.ZONE)})
    out = run_failover(cands, attempt)
    assert tried == [1, 2] and out.chosen.use_spot is False


def test_zoneless_candidates_block_their_region():
    a = cand(1, cloud="azure", region="eastus", zone=None, it="Standard_NC6s_v3")
    b = cand(2, cloud="azure", region="eastus", zone=None, it="Standard_NC6s_v3", spot=False)
    b = Candidate(2, "azure", "eastus", None, "Standard_NC12s_v3", False, 12, 112, (("V100", 1.0),), 2.0, 2.0)
    c = cand(3, cloud="azure", region="westus2", zone=None)
    attempt, tried = scripted({1: fail(Kind.CAPACITY, Scope.ZONE, "AllocationFailed")})
    out = run_failover([a, b, c], attempt)
    assert tried == [1, 3]


def test_block_for_scopes():
    c = cand(1)
    assert block_for(c, Classification(Kind.INVALID, Scope.ALL, "x", "")) is None
    z = block_for(c, Classification(Kind.CAPACITY, Scope.ZONE, "x", ""))
    assert (z.zone, z.region, z.hardware) == ("us-central1-a", "us-central1", "V100:1")
    r = block_for(c, Classification(Kind.QUOTA, Scope.REGION, "x", ""))
    assert r.zone is None and r.region == "us-central1"
    a = block_for(c, Classification(Kind.AUTH, Scope.CLOUD, "x", ""))
    assert a == Block(cloud="gcp", reason=a.reason)
    # an auth failure its classifier scopes narrower (an ssh host's key) blocks only that
    h = block_for(c, Classification(Kind.AUTH, Scope.ZONE, "SshHostKeyChanged", ""))
    assert (h.cloud, h.region, h.zone) == ("gcp", "us-central1", "us-central1-a")


def test_blocklist_is_immutable():
    b1 = Blocklist()
    b2 = b1.add(Block(cloud="gcp"))
    assert b1.blocks == () and len(b2.blocks) == 1
    assert b2.covers(cand(1)) is not None and b1.covers(cand(1)) is None
