"""``make deploy-all`` / ``make deploy-<service>``: stacks, stage settings, Chalice, wiring.

The plan for a stage, in dependency order:

1. CloudFormation stacks from ``infra/templates`` (network, data, database, messaging, the
   email stack in the SES region, identity, analytics, the CloudFront WAF in us-east-1,
   edge, observability), each fed the outputs of those before it;
2. each service's stage settings rendered from the outputs into its
   ``.chalice/config.json`` (environment, VPC placement, an IAM policy of exactly the
   resources it uses), the shared package vendored, and ``chalice deploy``;
3. the identity stack updated so Cognito calls the deployed auth Lambdas;
4. the API WAF associated with both API Gateway stages;
5. the ENF migrations, run by invoking the ENF service's ``migrate`` Lambda.

``chalice deploy`` rather than ``chalice package`` + CloudFormation: Chalice then owns API
Gateway, the Lambda versions and the event sources it generates, and an operator can
deploy one service in a minute; the stacks here own everything stateful.

``--dry-run`` prints the whole plan and calls nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracerstack import REPO_ROOT, SERVICES, TEMPLATES
from tracerstack.environment import from_outputs

STAGES = ("dev", "staging", "prod")
SERVICE_NAMES = ("auth", "details", "export", "enf")
CLOUDFRONT_WAF_REGION = "us-east-1"  # CloudFront web ACLs can only live there


@dataclass(frozen=True)
class StageConfig:
    name: str
    region: str
    ses_region: str
    sender_address: str
    ncts_base_url: str
    alarm_email: str
    attestation_platforms: str
    database_max_capacity: int
    # Operator-supplied identifiers of the ENF service (attestation, SMS); values that still
    # start with "REPLACE" stop a real deployment (a dry run shows them).
    enf_environment: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, stage: str) -> StageConfig:
        if stage not in STAGES:
            raise ValueError(f"STAGE must be one of {', '.join(STAGES)}, got {stage!r}")
        values = json.loads((REPO_ROOT / "infra" / "stages" / f"{stage}.json").read_text())
        return cls(name=stage, **values)


@dataclass
class Context:
    stage: StageConfig
    dry_run: bool
    outputs: dict[str, str] = field(default_factory=dict)
    log: Callable[[str], None] = print


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Context], None]


# ---------------------------------------------------------------------------- stacks


def _stack_parameters(template: str, ctx: Context) -> dict[str, str]:
    stage, out = ctx.stage, ctx.outputs
    extra: dict[str, dict[str, str]] = {
        "database": {"MaxCapacity": str(stage.database_max_capacity)},
        "email": {"SenderAddress": stage.sender_address},
        "identity": {"AuthTriggersDeployed": out.get("_AuthTriggersDeployed", "false")},
        "edge": {"CloudFrontWebAclArn": out.get("CloudFrontWebAclArn", "<from waf-cloudfront>")},
        "observability": {"AlarmEmail": stage.alarm_email},
    }
    return {"Stage": stage.name, **extra.get(template, {})}


def _stack_region(template: str, stage: StageConfig) -> str:
    if template == "email":
        return stage.ses_region
    if template == "waf-cloudfront":
        return CLOUDFRONT_WAF_REGION
    return stage.region


def stack_step(template: str) -> Step:
    def run(ctx: Context) -> None:
        region = _stack_region(template, ctx.stage)
        name = f"covidtracer-{ctx.stage.name}-{template}"
        parameters = _stack_parameters(template, ctx)
        ctx.log(
            f"  stack {name} in {region} from infra/templates/{template}.yaml "
            f"with {json.dumps(parameters)}"
        )
        if ctx.dry_run:
            return
        ctx.outputs.update(_deploy_stack(name, region, TEMPLATES / f"{template}.yaml", parameters))

    return Step(f"deploy stack {template}", run)


def _deploy_stack(
    name: str, region: str, template: Path, parameters: dict[str, str]
) -> dict[str, str]:
    """Create or update a stack through a change set; returns its outputs."""
    import boto3
    from botocore.exceptions import ClientError

    cfn = boto3.client("cloudformation", region_name=region)
    try:
        cfn.describe_stacks(StackName=name)
        change_type = "UPDATE"
    except ClientError:
        change_type = "CREATE"
    change_set = cfn.create_change_set(
        StackName=name,
        ChangeSetName=f"deploy-{os.getpid()}",
        ChangeSetType=change_type,
        TemplateBody=template.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    try:
        cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=change_set["Id"])
    except Exception:
        status = cfn.describe_change_set(ChangeSetName=change_set["Id"])
        if "didn't contain changes" not in status.get("StatusReason", ""):
            raise
        cfn.delete_change_set(ChangeSetName=change_set["Id"])
    else:
        cfn.execute_change_set(ChangeSetName=change_set["Id"])
        waiter = "stack_create_complete" if change_type == "CREATE" else "stack_update_complete"
        cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 15, "MaxAttempts": 240})
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


# ---------------------------------------------------------------------------- services


def service_environment(
    service: str, stage: StageConfig, outputs: dict[str, str]
) -> dict[str, str]:
    """The environment variables a deployed service reads, from the stacks' outputs."""
    env = from_outputs(
        outputs,
        stage=stage.name,
        ses_region=stage.ses_region,
        ncts_base_url=stage.ncts_base_url,
        attestation_platforms=stage.attestation_platforms,
    )
    if service == "enf":
        env["DATABASE_HOST"] = outputs["DatabaseHost"]
        env["DATABASE_SECRET_ID"] = outputs["DatabaseSecretArn"]
        env["APPLE_DEVICECHECK_KEY_SECRET_ID"] = outputs["AppleDeviceCheckKeySecretArn"]
        env.update(stage.enf_environment)
    return env


def unfilled_inputs(stage: StageConfig) -> list[str]:
    """Stage inputs an operator has not filled in yet (see docs/operations.md, "A new stage")."""
    return [name for name, value in stage.enf_environment.items() if value.startswith("REPLACE")]


def render_stage_config(
    service: str, stage: StageConfig, outputs: dict[str, str]
) -> dict[str, Any]:
    """The service's ``.chalice/config.json`` with this stage's settings filled in."""
    path = SERVICES / service / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    stage_config = config["stages"].setdefault(stage.name, {})
    stage_config["environment_variables"] = {
        **stage_config.get("environment_variables", {}),
        **service_environment(service, stage, outputs),
    }
    stage_config["autogen_policy"] = False
    stage_config["iam_policy_file"] = f"policy-{stage.name}.json"
    if service == "enf":
        # In the VPC, next to RDS Proxy; the endpoints and NAT reach everything else.
        stage_config["subnet_ids"] = outputs["PrivateSubnetIds"].split(",")
        stage_config["security_group_ids"] = [outputs["LambdaSecurityGroupId"]]
    return config


def service_policy(service: str, stage: StageConfig, outputs: dict[str, str]) -> dict[str, Any]:
    """Least-privilege IAM policy for one service's Lambdas."""
    account_region = f"{stage.region}:*"
    table_arns = [
        f"arn:aws:dynamodb:{account_region}:table/{outputs[name]}"
        for name in (
            "UsersTable",
            "PersonalDetailsTable",
            "ExposureEventsTable",
            "RateLimitsTable",
            "SignInSessionsTable",
        )
    ]
    logs = {
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "*",
    }
    statements: list[dict[str, Any]] = [logs]
    if service in ("auth", "details", "export"):
        statements.append(
            {
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:Query",
                    "dynamodb:BatchGetItem",
                    "dynamodb:DescribeTable",
                    "dynamodb:ConditionCheckItem",
                ],
                "Resource": table_arns + [f"{arn}/index/*" for arn in table_arns],
            }
        )
    if service == "auth":
        statements += [
            {
                "Effect": "Allow",
                "Action": ["ses:SendEmail"],
                "Resource": "*",
                "Condition": {"StringEquals": {"ses:FromAddress": outputs["SenderAddress"]}},
            },
            {
                "Effect": "Allow",
                "Action": [
                    "sqs:SendMessage",
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                ],
                "Resource": outputs["PostAuthenticationQueueArn"],
            },
        ]
    if service == "details":
        statements += [
            {
                "Effect": "Allow",
                "Action": [
                    "cognito-idp:AdminGetUser",
                    "cognito-idp:AdminCreateUser",
                    "cognito-idp:AdminInitiateAuth",
                    "cognito-idp:AdminRespondToAuthChallenge",
                ],
                "Resource": outputs["UserPoolArn"],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"arn:aws:s3:::{outputs['FeedBucket']}/*",
            },
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": outputs["NctsApiKeySecretArn"],
            },
        ]
    if service == "export":
        statements += [
            {
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:DescribeStream",
                    "dynamodb:ListStreams",
                ],
                "Resource": outputs["PersonalDetailsStreamArn"],
            },
            {
                "Effect": "Allow",
                "Action": [
                    "sqs:SendMessage",
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                "Resource": outputs["PersonalDataUpdatesQueueArn"],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"arn:aws:s3:::{outputs['UserDetailsBucket']}/*",
            },
            {
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": outputs["DataKeyArn"],
            },
        ]
    if service == "enf":
        statements += [
            {
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [
                    outputs["DatabaseSecretArn"],
                    outputs["NctsApiKeySecretArn"],
                    outputs["EnfTokenSigningSecretArn"],
                    outputs["EnfCodeHashSecretArn"],
                ],
            },
            {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": outputs["DatabaseKeyArn"]},
            {
                "Effect": "Allow",
                "Action": ["kms:Sign", "kms:GetPublicKey"],
                "Resource": f"arn:aws:kms:{account_region}:key/{outputs['ExportSigningKeyId']}",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:DeleteObject"],
                "Resource": [
                    f"arn:aws:s3:::{outputs['EnfExportsBucket']}",
                    f"arn:aws:s3:::{outputs['EnfExportsBucket']}/*",
                ],
            },
            {"Effect": "Allow", "Action": ["sms-voice:SendTextMessage"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": ["cloudwatch:PutMetricData"],
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "CovidTracer"}},
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def service_step(service: str) -> Step:
    def run(ctx: Context) -> None:
        folder = SERVICES / service
        ctx.log(
            f"  render services/{service}/.chalice/config.json stage {ctx.stage.name} "
            f"and policy-{ctx.stage.name}.json from the stack outputs"
        )
        ctx.log(f"  vendor the shared package into services/{service}/vendor/")
        ctx.log(f"  (cd services/{service} && chalice deploy --stage {ctx.stage.name})")
        if ctx.dry_run:
            return
        config = render_stage_config(service, ctx.stage, ctx.outputs)
        (folder / ".chalice" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        policy = service_policy(service, ctx.stage, ctx.outputs)
        (folder / ".chalice" / f"policy-{ctx.stage.name}.json").write_text(
            json.dumps(policy, indent=2) + "\n"
        )
        subprocess.run(["make", "vendor"], cwd=REPO_ROOT, check=True)
        chalice = str(Path(sys.executable).parent / "chalice")
        # Chalice builds event sources (the export's DynamoDB stream) from values app.py
        # reads at import, so `chalice deploy` itself needs the stage's environment.
        environment = {**os.environ, **service_environment(service, ctx.stage, ctx.outputs)}
        subprocess.run(
            [chalice, "deploy", "--stage", ctx.stage.name], cwd=folder, check=True, env=environment
        )

    return Step(f"deploy service {service}", run)


def triggers_step() -> Step:
    def run(ctx: Context) -> None:
        ctx.outputs["_AuthTriggersDeployed"] = "true"
        stack_step("identity").run(ctx)

    return Step("wire the Cognito triggers to the auth Lambdas (identity stack update)", run)


def post_authentication_queue_step() -> Step:
    """Feed the post-authentication queue to its consumer Lambda, reporting partial failures
    so one bad message is retried (and parked after 5 tries) without repeating the batch."""

    def run(ctx: Context) -> None:
        function = f"covidtracer-auth-{ctx.stage.name}-post_authentication_consumer"
        queue_arn = ctx.outputs.get("PostAuthenticationQueueArn", "<PostAuthenticationQueueArn>")
        ctx.log(f"  map {queue_arn} to {function} (batch 10, ReportBatchItemFailures)")
        if ctx.dry_run:
            return
        import boto3

        lambdas = boto3.client("lambda", region_name=ctx.stage.region)
        existing = lambdas.list_event_source_mappings(
            EventSourceArn=queue_arn, FunctionName=function
        )["EventSourceMappings"]
        if not existing:
            lambdas.create_event_source_mapping(
                EventSourceArn=queue_arn,
                FunctionName=function,
                BatchSize=10,
                FunctionResponseTypes=["ReportBatchItemFailures"],
            )

    return Step("consume the post-authentication queue", run)


def waf_association_step() -> Step:
    def run(ctx: Context) -> None:
        for service in ("details", "enf"):
            ctx.log(
                f"  associate {ctx.outputs.get('ApiWebAclArn', '<ApiWebAclArn>')} with the "
                f"API Gateway stage of covidtracer-{service}"
            )
            if ctx.dry_run:
                continue
            import boto3

            deployed = json.loads(
                (
                    SERVICES / service / ".chalice" / "deployed" / f"{ctx.stage.name}.json"
                ).read_text()
            )
            api_id = next(
                r["rest_api_id"]
                for r in deployed["resources"]
                if r.get("resource_type") == "rest_api"
            )
            boto3.client("wafv2", region_name=ctx.stage.region).associate_web_acl(
                WebACLArn=ctx.outputs["ApiWebAclArn"],
                ResourceArn=f"arn:aws:apigateway:{ctx.stage.region}::/restapis/{api_id}/stages/api",
            )

    return Step("protect both APIs with the regional WAF", run)


def migrations_step() -> Step:
    def run(ctx: Context) -> None:
        function = f"covidtracer-enf-{ctx.stage.name}-migrate"
        ctx.log(f"  invoke {function} (numbered migrations shipped in the ENF package)")
        if ctx.dry_run:
            return
        import boto3

        result = boto3.client("lambda", region_name=ctx.stage.region).invoke(
            FunctionName=function, Payload=b"{}"
        )
        payload = result["Payload"].read().decode()
        if result.get("FunctionError"):
            raise RuntimeError(f"migrations failed: {payload}")
        ctx.log(f"  migrations: {payload}")

    return Step("run the ENF database migrations", run)


STACK_ORDER = (
    "network",
    "data",
    "database",
    "messaging",
    "email",
    "identity",
    "analytics",
    "waf-cloudfront",
    "edge",
)


def plan(services: tuple[str, ...] = SERVICE_NAMES, *, with_stacks: bool = True) -> list[Step]:
    steps = [stack_step(t) for t in STACK_ORDER] if with_stacks else [load_outputs_step()]
    steps += [service_step(s) for s in services]
    if "auth" in services:
        steps.append(triggers_step())
        steps.append(post_authentication_queue_step())
    if with_stacks:
        steps.append(waf_association_step())
    if "enf" in services:
        steps.append(migrations_step())
    if with_stacks:
        steps.append(stack_step("observability"))
    return steps


def load_outputs_step() -> Step:
    def run(ctx: Context) -> None:
        ctx.log(f"  read the outputs of the deployed covidtracer-{ctx.stage.name}-* stacks")
        if ctx.dry_run:
            return
        import boto3

        for template in STACK_ORDER:
            region = _stack_region(template, ctx.stage)
            cfn = boto3.client("cloudformation", region_name=region)
            stack = cfn.describe_stacks(StackName=f"covidtracer-{ctx.stage.name}-{template}")
            ctx.outputs.update(
                {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0].get("Outputs", [])}
            )
        ctx.outputs["_AuthTriggersDeployed"] = "true"

    return Step("read the stack outputs", run)


def execute(steps: list[Step], ctx: Context) -> None:
    mode = "plan (dry run: nothing is called)" if ctx.dry_run else "deploying"
    ctx.log(f"{mode} for stage {ctx.stage.name} in {ctx.stage.region}:")
    for number, step in enumerate(steps, 1):
        ctx.log(f"{number:2d}. {step.title}")
        step.run(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description="Deploy the NZ COVID Tracer backend")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--service", choices=SERVICE_NAMES, help="deploy only this service")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    try:
        stage = StageConfig.load(args.stage)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    missing = unfilled_inputs(stage)
    if missing and not args.dry_run:
        sys.exit(f"error: fill in {', '.join(missing)} in infra/stages/{stage.name}.json first")
    steps = plan((args.service,), with_stacks=False) if args.service else plan()
    execute(steps, Context(stage=stage, dry_run=args.dry_run))


if __name__ == "__main__":
    main()
