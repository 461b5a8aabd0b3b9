"""The deployment plan and the stage settings it renders, checked without calling AWS."""

from __future__ import annotations

import json

import pytest

from covidtracer.settings import AuthSettings, DetailsSettings, EnfSettings, ExportSettings
from tracerstack import TEMPLATES, cfn, deploy


def _fake_outputs() -> dict[str, str]:
    outputs = {}
    for path in TEMPLATES.glob("*.yaml"):
        for name in cfn.load(path).get("Outputs", {}):
            outputs[name] = f"{name.lower()}-value"
    outputs.update(
        {
            "PersonalDataUpdatesQueueUrl": "https://sqs.ap-southeast-2.amazonaws.com/1/updates",
            "PostAuthenticationQueueUrl": "https://sqs.ap-southeast-2.amazonaws.com/1/post-auth",
            "SenderAddress": "no-reply@tracing.example.nz",
            "PrivateSubnetIds": "subnet-a,subnet-b",
            "PersonalDetailsStreamArn": "arn:aws:dynamodb:ap-southeast-2:1:table/pd/stream/2021",
        }
    )
    return outputs


def _dry_run(steps: list[deploy.Step], stage: str = "prod") -> list[str]:
    lines: list[str] = []
    ctx = deploy.Context(stage=deploy.StageConfig.load(stage), dry_run=True, log=lines.append)
    deploy.execute(steps, ctx)
    return lines


def test_the_full_plan_deploys_every_stack_in_dependency_order_then_the_services() -> None:
    titles = [step.title for step in deploy.plan()]
    assert titles == [
        "deploy stack network",
        "deploy stack data",
        "deploy stack database",
        "deploy stack messaging",
        "deploy stack email",
        "deploy stack identity",
        "deploy stack analytics",
        "deploy stack waf-cloudfront",
        "deploy stack edge",
        "deploy service auth",
        "deploy service details",
        "deploy service export",
        "deploy service enf",
        "wire the Cognito triggers to the auth Lambdas (identity stack update)",
        "consume the post-authentication queue",
        "protect both APIs with the regional WAF",
        "run the ENF database migrations",
        "deploy stack observability",
    ]


def test_every_template_is_deployed_by_the_plan() -> None:
    planned = set(deploy.STACK_ORDER) | {"observability"}
    assert planned == {path.stem for path in TEMPLATES.glob("*.yaml")}


def test_the_dry_run_names_regions_commands_and_calls_nothing() -> None:
    text = "\n".join(_dry_run(deploy.plan()))
    assert "covidtracer-prod-email in us-west-2" in text
    assert "covidtracer-prod-waf-cloudfront in us-east-1" in text
    assert "covidtracer-prod-data in ap-southeast-2" in text
    assert "chalice deploy --stage prod" in text
    assert '"AuthTriggersDeployed": "true"' in text  # the second identity deployment
    assert "covidtracer-enf-prod-migrate" in text
    assert "covidtracer-auth-prod-post_authentication_consumer (batch 10" in text
    assert '"AlarmEmail": "alarms@health.example.nz"' in text


def test_deploying_one_service_reads_outputs_instead_of_deploying_stacks() -> None:
    titles = [step.title for step in deploy.plan(("details",), with_stacks=False)]
    assert titles == ["read the stack outputs", "deploy service details"]


@pytest.mark.parametrize(
    ("service", "settings_class"),
    [
        ("auth", AuthSettings),
        ("details", DetailsSettings),
        ("export", ExportSettings),
        ("enf", EnfSettings),
    ],
)
@pytest.mark.parametrize("stage", deploy.STAGES)
def test_rendered_settings_pass_each_services_validation(
    service: str, settings_class: type, stage: str
) -> None:
    config = deploy.render_stage_config(service, deploy.StageConfig.load(stage), _fake_outputs())
    env = config["stages"][stage]["environment_variables"]
    settings = settings_class.from_env({"AWS_REGION": "ap-southeast-2", **env})
    assert settings.stage == stage
    assert "AWS_ENDPOINT_URL" not in env and "AWS_SECRET_ACCESS_KEY" not in env


def test_prod_never_allows_the_test_attestation_verifier() -> None:
    env = deploy.service_environment("enf", deploy.StageConfig.load("prod"), _fake_outputs())
    assert "test" not in env["ATTESTATION_PLATFORMS"].split(",")
    assert env["DATABASE_HOST"] == "databasehost-value"


def test_the_enf_service_runs_in_the_private_subnets() -> None:
    config = deploy.render_stage_config("enf", deploy.StageConfig.load("dev"), _fake_outputs())
    stage = config["stages"]["dev"]
    assert stage["subnet_ids"] == ["subnet-a", "subnet-b"]
    assert stage["security_group_ids"] == ["lambdasecuritygroupid-value"]
    assert stage["autogen_policy"] is False


def test_each_policy_grants_only_its_services_resources() -> None:
    outputs = _fake_outputs()
    stage = deploy.StageConfig.load("prod")
    enf = json.dumps(deploy.service_policy("enf", stage, outputs))
    details = json.dumps(deploy.service_policy("details", stage, outputs))
    assert "kms:Sign" in enf and "kms:Sign" not in details
    assert outputs["DatabaseSecretArn"] in enf and outputs["DatabaseSecretArn"] not in details
    assert "dynamodb:PutItem" in details and "dynamodb:PutItem" not in enf


def test_a_real_deployment_needs_the_operator_inputs_filled_in() -> None:
    stage = deploy.StageConfig.load("prod")
    assert "APPLE_TEAM_ID" in deploy.unfilled_inputs(stage)
    filled = {name: "value" for name in stage.enf_environment}
    assert (
        deploy.unfilled_inputs(deploy.StageConfig(**{**vars(stage), "enf_environment": filled}))
        == []
    )


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="STAGE must be one of"):
        deploy.StageConfig.load("qa")
