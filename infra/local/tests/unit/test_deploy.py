"""The deployment plan, checked without calling AWS (the packaged templates: tests/package)."""

from __future__ import annotations

import pytest

from tracerstack import TEMPLATES, deploy


def test_the_full_plan_deploys_every_stack_in_dependency_order_then_the_services() -> None:
    titles = [step.title for step in deploy.plan()]
    assert titles == [
        "read what the stage runs now (its auth and export service stacks)",
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
        "wire the Cognito triggers to the auth Lambdas (identity stack update, new stage only)",
        "schedule the daily usage report (analytics stack update, new stage or new function)",
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


@pytest.mark.parametrize(
    ("status", "deployed"),
    [
        ("CREATE_COMPLETE", True),
        ("UPDATE_COMPLETE", True),
        ("UPDATE_ROLLBACK_COMPLETE", True),  # a failed update put the functions back
        ("UPDATE_IN_PROGRESS", True),
        ("ROLLBACK_COMPLETE", False),  # a failed creation deleted what it had made
        ("CREATE_FAILED", False),
        ("REVIEW_IN_PROGRESS", False),  # a change set, nothing executed
    ],
)
def test_a_service_counts_as_deployed_once_its_stack_was_created(
    status: str, deployed: bool
) -> None:
    assert deploy._has_resources({"StackStatus": status}) is deployed
    assert deploy._has_resources(None) is False


def test_a_dry_run_says_where_the_wiring_comes_from_and_reads_nothing() -> None:
    lines: list[str] = []
    ctx = deploy.Context(stage=deploy.StageConfig.load("prod"), dry_run=True, log=lines.append)
    deploy.read_wiring_step().run(ctx)
    assert ctx.wiring == {}
    assert "true if covidtracer-prod-service-auth exists" in "\n".join(lines)
    identity = deploy._stack_parameters("identity", ctx)
    assert identity["AuthTriggersDeployed"] == "<as deployed: covidtracer-prod-service-auth>"


def test_a_real_deployment_never_guesses_the_wiring() -> None:
    ctx = deploy.Context(stage=deploy.StageConfig.load("prod"), log=lambda _: None)
    with pytest.raises(KeyError, match="read the deployed service stacks first"):
        deploy._stack_parameters("identity", ctx)
    ctx.wiring["AuthTriggersDeployed"] = "true"
    assert deploy._stack_parameters("identity", ctx)["AuthTriggersDeployed"] == "true"
