"""Checkpoint buckets in the AWS, GCP and Azure programs, under Pulumi mocks: a
bucket that does not exist is created (tagged with the job it belongs to, kept
when the cluster's stack is destroyed), one that exists is attached; the
instances get an identity that reaches those buckets only, and their boot script
mounts each at its path (Mountpoint for S3, gcsfuse, blobfuse2)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest
from stackmocks import RecordingMocks, make_request, run_program

from skyplan.clouds import programs
from skyplan.clouds.buckets import cloud_record, record_cloud_bucket, release_cloud_buckets


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A program records on this machine the buckets it makes for a job.
    monkeypatch.setenv("SKYPLAN_HOME", str(tmp_path / "home"))

#: The invoke each program uses to find out whether a bucket exists.
LOOKUPS = {
    "aws": ("aws:s3/getBucket:getBucket", "bucket"),
    "gcp": ("gcp:storage/getBucket:getBucket", "name"),
    "azure": ("azure-native:storage:getBlobContainer", "containerName"),
}


@dataclass
class BucketMocks(RecordingMocks):
    """Mocks where only the buckets named in ``existing`` exist, and resources
    record their ``retain_on_delete``."""

    existing: set[str] = field(default_factory=set)
    imported: dict[str, str] = field(default_factory=dict)  # resource name -> import id

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        for token, key in LOOKUPS.values():
            if args.token == token:
                self.calls.append((args.token, dict(args.args)))
                if args.args.get(key) not in self.existing:
                    return {}, [(key, f"NotFound: {args.args.get(key)}")]  # the invoke fails, as a provider's does
                return {"id": args.args.get(key), "name": args.args.get(key)}
        if args.token == "azure-native:authorization:getClientConfig":
            self.calls.append((args.token, dict(args.args)))
            return {"subscriptionId": "00000000-0000-0000-0000-000000000042", "tenantId": "t", "clientId": "c",
                    "objectId": "o"}
        return super().call(args)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        rid, outputs = super().new_resource(args)
        if args.resource_id:
            self.imported[args.name] = args.resource_id
        if args.typ == "gcp:serviceaccount/account:Account":
            outputs["email"] = f"{args.inputs.get('accountId')}@proj.iam.gserviceaccount.com"
        if args.typ == "azure-native:compute:VirtualMachine":
            outputs["identity"] = {**args.inputs.get("identity", {}), "principalId": f"principal-{args.name}"}
        return rid, outputs


def _request(cloud: str, **kw: Any):
    # /checkpoint: a bucket made for managed job 17; /data/shared: one the user named.
    buckets = ({"dst": "/checkpoint", "name": "ckpt-run", "store": None, "owner": "17"},
               {"dst": "/data/shared", "name": "team-data", "store": None, "owner": ""})
    return make_request(cloud, buckets=buckets, **kw)


def _run(cloud: str, existing: set[str], **kw: Any) -> BucketMocks:
    mocks = BucketMocks(existing=set(existing))
    return run_program(programs.load(cloud).build, _request(cloud, **kw), mocks)


def _options(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Each resource's ResourceOptions, by name (the mocks do not see options)."""
    seen: dict[str, Any] = {}
    init = pulumi.CustomResource.__init__

    def record(self, t, name, props=None, opts=None, *a, **kw):  # noqa: ANN001, ANN202
        seen[name] = opts
        return init(self, t, name, props, opts, *a, **kw)

    monkeypatch.setattr(pulumi.CustomResource, "__init__", record)
    return seen


def _retained(opts: dict[str, Any]) -> set[str]:
    """Names of the resources declared with retain_on_delete."""
    return {n for n, o in opts.items() if o is not None and getattr(o, "retain_on_delete", False)}


def test_aws_creates_a_missing_bucket_kept_past_the_stack_and_attaches_an_existing_one(monkeypatch) -> None:
    opts = _options(monkeypatch)
    m = _run("aws", existing={"team-data"})
    (bucket,) = m.of_type("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == "ckpt-run"
    assert bucket.inputs["tags"]["skyplan-owner"] == "17"  # the job it belongs to
    assert _retained(opts) == {"bucket-ckpt-run"}  # destroying the cluster's stack keeps the bucket
    assert m.exports["buckets"] == [
        {"dst": "/checkpoint", "name": "ckpt-run", "store": "s3", "owner": "17", "created": True},
        {"dst": "/data/shared", "name": "team-data", "store": "s3", "owner": "", "created": False}]
    policy = json.loads(m.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert resources == {"arn:aws:s3:::ckpt-run", "arn:aws:s3:::ckpt-run/*", "arn:aws:s3:::team-data",
                         "arn:aws:s3:::team-data/*"}
    role = m.one("aws:iam/role:Role").inputs
    assert "ec2.amazonaws.com" in role["assumeRolePolicy"]
    inst = m.one("aws:ec2/instance:Instance").inputs
    assert inst["iamInstanceProfile"] == m.one("aws:iam/instanceProfile:InstanceProfile").inputs.get(
        "name", "demo-a1b2-profile")
    script = inst["userData"]
    assert "mount-s3.deb" in script
    assert "mount-s3 --allow-other --allow-delete --allow-overwrite" in script
    assert "--region us-east-1 ckpt-run /checkpoint" in script and "team-data /data/shared" in script
    assert script.index("mount-s3 --allow") < script.index("boot-done")  # mounted before the task starts


def test_aws_a_relaunch_attaches_the_bucket_its_first_run_created() -> None:
    m = _run("aws", existing={"ckpt-run", "team-data"})
    assert m.of_type("aws:s3/bucket:Bucket") == []
    assert [b["created"] for b in m.exports["buckets"]] == [False, False]
    assert "mount-s3 --allow" in m.one("aws:ec2/instance:Instance").inputs["userData"]


def test_aws_without_buckets_has_no_role_and_mounts_nothing() -> None:
    m = run_program(programs.load("aws").build, make_request("aws"))
    assert m.of_type("aws:iam/role:Role") == [] and "buckets" not in m.exports
    inst = m.one("aws:ec2/instance:Instance").inputs
    assert "iamInstanceProfile" not in inst and "mount-s3" not in inst["userData"]


def test_gcp_creates_a_missing_bucket_kept_past_the_stack_and_grants_the_instances_account(monkeypatch) -> None:
    opts = _options(monkeypatch)
    m = _run("gcp", existing={"team-data"})
    (bucket,) = m.of_type("gcp:storage/bucket:Bucket")
    assert bucket.inputs["name"] == "ckpt-run" and bucket.inputs["location"] == "US-CENTRAL1"
    assert bucket.inputs["labels"]["skyplan-owner"] == "17"
    assert _retained(opts) == {"bucket-ckpt-run"}
    assert [b["created"] for b in m.exports["buckets"]] == [True, False]
    account = m.one("gcp:serviceaccount/account:Account").inputs["accountId"]
    grants = {g.inputs["bucket"]: g.inputs for g in m.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")}
    assert set(grants) == {"ckpt-run", "team-data"}
    assert all(g["role"] == "roles/storage.objectAdmin" and g["member"] == f"serviceAccount:{account}@proj.iam."
               "gserviceaccount.com" for g in grants.values())
    inst = m.one("gcp:compute/instance:Instance").inputs
    assert inst["serviceAccount"]["email"].startswith(account)
    assert inst["serviceAccount"]["scopes"] == ["https://www.googleapis.com/auth/devstorage.read_write"]
    script = inst["metadataStartupScript"]
    assert "apt-get install -y gcsfuse" in script
    assert "gcsfuse --implicit-dirs -o allow_other" in script and "ckpt-run /checkpoint" in script
    assert "mountpoint -q /checkpoint" in script  # GCP runs the script at every boot: mounted once
    assert script.index("gcsfuse --implicit") < script.index("boot-done")


def test_gcp_a_relaunch_attaches_the_bucket_its_first_run_created() -> None:
    m = _run("gcp", existing={"ckpt-run", "team-data"})
    assert m.of_type("gcp:storage/bucket:Bucket") == []
    assert len(m.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")) == 2


def test_azure_creates_a_missing_container_outside_the_cluster_group_and_grants_each_vm(monkeypatch) -> None:
    opts = _options(monkeypatch)
    program = programs.load("azure")
    m = _run("azure", existing={"team-data"}, num_nodes=2)
    (container,) = m.of_type("azure-native:storage:BlobContainer")
    assert container.inputs["containerName"] == "ckpt-run"
    account = m.one("azure-native:storage:StorageAccount").inputs
    assert account["accountName"] == program.account_name("ckpt-run") and len(account["accountName"]) == 24
    assert account["tags"]["skyplan-owner"] == "17"
    groups = {g.inputs["resourceGroupName"] for g in m.of_type("azure-native:resources:ResourceGroup")}
    assert groups == {"skyplan-demo-a1b2", "skyplan-bucket-ckpt-run"}  # the bucket's own group outlives the cluster
    assert _retained(opts) == {"bucket-ckpt-run-rg", "bucket-ckpt-run-account", "bucket-ckpt-run"}
    assert [b["created"] for b in m.exports["buckets"]] == [True, False]
    vms = m.of_type("azure-native:compute:VirtualMachine")
    assert all(v.inputs["identity"]["type"] == "SystemAssigned" for v in vms)
    grants = m.of_type("azure-native:authorization:RoleAssignment")
    assert len(grants) == 4  # 2 nodes x 2 buckets
    assert all(g.inputs["roleDefinitionId"].endswith("ba92f5b4-2d11-453d-a403-e96b0029c9fe") for g in grants)
    assert {g.inputs["principalId"] for g in grants} == {f"principal-{v.name}" for v in vms}
    scopes = {g.inputs["scope"] for g in grants}
    assert ("/subscriptions/00000000-0000-0000-0000-000000000042/resourceGroups/skyplan-bucket-team-data/providers/"
            f"Microsoft.Storage/storageAccounts/{program.account_name('team-data')}") in scopes
    script = base64.b64decode(vms[0].inputs["osProfile"]["customData"]).decode()
    assert "apt-get install -y blobfuse2 fuse3" in script
    assert "blobfuse2 mount /checkpoint --config-file=/etc/skyplan/blobfuse2-ckpt-run.yaml" in script
    assert "mode: msi" in script and f"account-name: {program.account_name('ckpt-run')}" in script
    assert script.index("blobfuse2 mount") < script.index("boot-done")


def test_azure_without_buckets_gives_the_vms_no_identity() -> None:
    m = run_program(programs.load("azure").build, make_request("azure"))
    assert "identity" not in m.one("azure-native:compute:VirtualMachine").inputs
    assert m.of_type("azure-native:authorization:RoleAssignment") == []


# --- a job's end: the buckets made for it are adopted into a throwaway stack and destroyed ----


def test_a_bucket_made_for_a_job_is_recorded_here_and_a_named_one_is_not() -> None:
    _run("aws", existing=set())  # ckpt-run: made for job 17; team-data: named by the user, made too
    rec = json.loads(cloud_record("s3", "ckpt-run").read_text())
    assert rec["owner"] == "17" and rec["region"] == "us-east-1" and rec["tags"]["skyplan-owner"] == "17"
    assert not cloud_record("s3", "team-data").exists()
    _run("gcp", existing=set())
    assert json.loads(cloud_record("gcs", "ckpt-run").read_text())["location"] == "US-CENTRAL1"
    _run("azure", existing=set())
    rec = json.loads(cloud_record("azure", "ckpt-run").read_text())
    assert rec["group"] == "skyplan-bucket-ckpt-run" and rec["id"] == "bucket-ckpt-run-rg-id"  # the group's id


def test_attaching_an_existing_bucket_records_nothing() -> None:
    _run("aws", existing={"ckpt-run", "team-data"})
    assert not cloud_record("s3", "ckpt-run").exists()


@pytest.mark.parametrize("cloud, typ, import_id", [
    ("aws", "aws:s3/bucket:Bucket", "ckpt-run"),
    ("gcp", "gcp:storage/bucket:Bucket", "ckpt-run"),
    ("azure", "azure-native:resources:ResourceGroup", "/subscriptions/s/resourceGroups/skyplan-bucket-ckpt-run"),
])
def test_adopting_a_bucket_imports_it_as_made_then_lets_a_destroy_empty_it(monkeypatch, cloud: str, typ: str,
                                                                           import_id: str) -> None:
    record = {"name": "ckpt-run", "region": "us-east-1", "location": "US-CENTRAL1", "tags": {"skyplan-owner": "17"},
              "labels": {"skyplan-owner": "17"}, "id": import_id, "group": "skyplan-bucket-ckpt-run"}
    program = programs.load(cloud)
    opts = _options(monkeypatch)
    first = run_program(lambda _r: program.adopt_bucket(record, adopt=True), make_request(cloud), BucketMocks())
    (res,) = first.of_type(typ)
    assert first.imported == {res.name: import_id}
    if cloud != "azure":  # a bucket: force_destroy, ignored while importing (the cloud does not hold it)
        assert res.inputs["forceDestroy"] is True and opts[res.name].ignore_changes == ["forceDestroy"]
    second = run_program(lambda _r: program.adopt_bucket(record, adopt=False), make_request(cloud), BucketMocks())
    assert second.imported == {} and second.of_type(typ)[0].name == res.name  # the same resource, now in state


@dataclass
class FakeDriver:
    fail_on: str = ""
    ops: list[tuple[str, str, bool | None]] = field(default_factory=list)

    def up(self, stack: str, program: Any, *, timeout_s: float | None):  # noqa: ANN201
        adopt = program.__defaults__[1]  # lambda rec=..., adopt=...
        self.ops.append(("up", stack, adopt))
        from skyplan.provision.protocol import UpResult

        ok = stack != self.fail_on
        return UpResult(ok, {}, None if ok else "AccessDenied", None, 0, stack=stack)

    def destroy_and_remove(self, stack: str, *, timeout_s: float | None = None) -> None:
        self.ops.append(("destroy", stack, None))


def test_release_adopts_and_destroys_the_jobs_own_buckets_and_keeps_the_rest() -> None:
    from skyplan.clouds import registry

    record_cloud_bucket("s3", "skyplan-job17-aaaaaaaaaaaa", "17", region="us-east-1", tags={})
    record_cloud_bucket("s3", "skyplan-job17-bbbbbbbbbbbb", "17", region="us-east-1", tags={})
    record_cloud_bucket("s3", "skyplan-job18-cccccccccccc", "18", region="us-east-1", tags={})
    driver = FakeDriver(fail_on="skyplan-bucket-skyplan-job17-bbbbbbbbbbbb")
    gone = release_cloud_buckets(registry.get("aws"), "17", 0.0, driver=driver)
    assert gone == ("skyplan-job17-aaaaaaaaaaaa",)
    a = "skyplan-bucket-skyplan-job17-aaaaaaaaaaaa"
    assert [op for op in driver.ops if op[1] == a] == [("up", a, True), ("up", a, False), ("destroy", a, None)]
    assert not cloud_record("s3", "skyplan-job17-aaaaaaaaaaaa").exists()
    assert cloud_record("s3", "skyplan-job17-bbbbbbbbbbbb").exists()  # failed: kept for the next release
    assert cloud_record("s3", "skyplan-job18-cccccccccccc").exists()  # another job's
    assert all("job18" not in op[1] for op in driver.ops)
    assert release_cloud_buckets(registry.get("gcp"), "17", 0.0, driver=FakeDriver()) == ()  # another store
