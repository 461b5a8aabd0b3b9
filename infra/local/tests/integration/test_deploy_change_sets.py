"""The deployment's CloudFormation calls, against moto's CloudFormation over HTTP."""

from __future__ import annotations

import boto3
import pytest

from tracerstack import TEMPLATES, deploy

# moto's CloudFormation skips the artifacts bucket's policy and says so; the bucket is made.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.+BucketPolicy")


@pytest.fixture
def cloudformation(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return boto3.client("cloudformation", region_name="ap-southeast-2")


def _context(plan_only: bool, lines: list[str]) -> deploy.Context:
    return deploy.Context(
        stage=deploy.StageConfig.load("dev"), plan_only=plan_only, log=lines.append
    )


def _deploy_artifacts(ctx: deploy.Context, name: str) -> dict[str, str]:
    body = (TEMPLATES / "artifacts.yaml").read_text()
    return deploy._deploy_stack(
        ctx, name, "ap-southeast-2", {"TemplateBody": body}, {"Stage": "dev"}
    )


def test_a_plan_prints_the_change_set_and_leaves_no_stack_behind(cloudformation: object) -> None:
    lines: list[str] = []
    outputs = _deploy_artifacts(_context(plan_only=True, lines=lines), "covidtracer-p1-artifacts")
    assert outputs == {}
    assert any("ArtifactsBucket (AWS::S3::Bucket)" in line and "Add" in line for line in lines)
    stacks = cloudformation.list_stacks()["StackSummaries"]  # type: ignore[attr-defined]
    live = [s for s in stacks if s["StackName"] == "covidtracer-p1-artifacts"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in live)


def test_a_deployment_creates_the_stack_tagged_with_the_release_then_updates_it_in_place(
    cloudformation: object,
) -> None:
    lines: list[str] = []
    ctx = _context(plan_only=False, lines=lines)
    _deploy_artifacts(ctx, "covidtracer-d1-artifacts")
    # (moto computes no Outputs for stacks made from change sets, so none are compared.)
    stack = cloudformation.describe_stacks(  # type: ignore[attr-defined]
        StackName="covidtracer-d1-artifacts"
    )["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
    assert tags == {"covidtracer:stage": "dev", "covidtracer:version": ctx.version}
    # A second deployment (another runner, another clone) finds the same stack.
    lines.clear()
    _deploy_artifacts(_context(plan_only=False, lines=lines), "covidtracer-d1-artifacts")
    names = [
        s["StackName"]
        for s in cloudformation.list_stacks()["StackSummaries"]  # type: ignore[attr-defined]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert names.count("covidtracer-d1-artifacts") == 1
