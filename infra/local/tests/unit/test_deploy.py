"""The deployment plan, checked without calling AWS (the packaged templates: tests/package)."""

from __future__ import annotations

import pytest

from tracerstack import TEMPLATES, deploy


def test_the_full_plan_deploys_every_stack_in_dependency_order_then_the_services() -> None:
    titles = [step.title for step in deploy.plan()]
    assert titles == [
        "deploy stack artifacts",
        "deploy stack network",
        "deploy stack dr",
        "deploy stack data",
        "deploy stack database",
        "deploy stack messaging",
        "deploy stack email",
        "deploy stack identity",
        "deploy stack analytics",
        "deploy stack waf-cloudfront",
        "deploy stack edge",
        "deploy stack dr-signing",
        "deploy stack backup",
        "deploy service auth",
        "deploy service details",
        "deploy service export",
        "deploy service enf",
        "wire the Cognito triggers to the auth Lambdas (identity stack update)",
        "schedule the daily usage report (analytics stack update)",
        "run the ENF database migrations",
        "deploy stack observability",
    ]


def test_every_template_is_deployed_by_the_plan() -> None:
    planned = set(deploy.STACK_ORDER) | {"observability"}
    assert planned == {path.stem for path in TEMPLATES.glob("*.yaml")}


def test_deploying_one_service_reads_outputs_instead_of_deploying_stacks() -> None:
    titles = [step.title for step in deploy.plan(("details",), with_stacks=False)]
    assert titles == ["read the stack outputs", "deploy service details"]


def test_a_real_deployment_needs_the_operator_inputs_filled_in() -> None:
    stage = deploy.StageConfig.load("prod")
    assert "APPLE_TEAM_ID" in deploy.unfilled_inputs(stage)
    assert "ncts_account_id" in deploy.unfilled_inputs(stage)
    filled = {name: "value" for name in stage.enf_environment}
    complete = {**vars(stage), "enf_environment": filled, "ncts_account_id": "210987654321"}
    assert deploy.unfilled_inputs(deploy.StageConfig(**complete)) == []


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="STAGE must be one of"):
        deploy.StageConfig.load("qa")
