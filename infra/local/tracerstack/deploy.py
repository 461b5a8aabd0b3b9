"""``make deploy-all`` / ``make deploy-<service>``: every stack and service through CloudFormation.

The plan for a stage, in dependency order:

0. what the stage runs now, read from CloudFormation (never from the deploying machine):
   whether the auth service stack exists, and the export service's usage-report function.
   Every update of the identity and analytics stacks in this release carries them, so no
   update removes Cognito's triggers or the daily usage-report schedule (docs/operations.md
   §2, "What a release never removes");
1. the infrastructure stacks from ``infra/templates`` (artifacts, network, data, database,
   messaging, the email stack in the SES region, identity, analytics, the CloudFront WAF in
   us-east-1, edge), each fed the outputs of those before it;
2. each service's packaged template (``make package``: ``chalice package`` finished by
   ``tracerstack.package``) as a stack of its own, ``covidtracer-<stage>-service-<name>``: its
   zip and template uploaded to the stage's artifacts bucket by content hash, its parameters
   filled from the stage file and the stacks' outputs. Event sources, the queue mapping,
   Cognito's invoke permissions and the WAF association are resources of that stack;
3. on a stage's first deployment only (nothing to do once read in step 0): the identity stack
   updated so Cognito calls the auth Lambdas' stage alias, and the analytics stack so the
   daily schedule calls the usage report;
4. the ENF migrations, run by invoking the ENF service's ``migrate`` Lambda;
5. the observability stack.

Nothing is recorded on the deploying machine and nothing is created outside CloudFormation,
so a deployment from any clone on any runner updates the same stacks. Every stack is tagged
with the release version, and the packaged functions carry it too (``GET /health`` reports
it). The packages must be of this checkout's version: a pipeline packages once and deploys
the same ``build/`` to each stage.

``--dry-run`` prints every template and parameter and calls nothing; ``--plan`` creates a
change set per stack, prints its changes and deletes it without executing anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracerstack import REPO_ROOT, SERVICES, TEMPLATES, cfn
from tracerstack.package import (
    BUILD,
    ENF_OPERATOR_VARIABLES,
    SERVICE_NAMES,
    STAGE_PARAMETERS,
    _parameter_name,
)
from tracerstack.release import release_version

STAGES = ("dev", "staging", "prod")
CLOUDFRONT_WAF_REGION = "us-east-1"  # CloudFront web ACLs can only live there
# Above this size CloudFormation takes a template only from S3.
TEMPLATE_BODY_LIMIT = 51_200
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


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
    # NCTS's AWS account, granted read of the personal-details files (data stack).
    ncts_account_id: str
    # Days every CloudWatch log group of the stage keeps its events.
    log_retention_days: int
    # The CloudFront distributions' own names and ACM certificate (edge stack): empty, they
    # answer on *.cloudfront.net, where CloudFront cannot require TLS 1.2.
    edge: dict[str, str] = field(default_factory=dict)
    # Where the dr and dr-signing stacks keep backup copies, bucket replicas and the signing
    # key's replica (docs/operations.md §8); empty: no DR region, those stacks are skipped.
    dr_region: str = ""
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
    dry_run: bool = False
    plan_only: bool = False
    version: str = field(default_factory=release_version)
    outputs: dict[str, str] = field(default_factory=dict)
    log: Callable[[str], None] = print
    # The identity and analytics stacks' parameters that point at the services' functions,
    # read from the deployed stacks (``read_wiring_step``) and then only ever set, never reset.
    wiring: dict[str, str] = field(default_factory=dict)

    @property
    def calls_aws(self) -> bool:
        return not self.dry_run

    @property
    def changes_aws(self) -> bool:
        return not (self.dry_run or self.plan_only)


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Context], None]


def stack_name(stage: str, name: str) -> str:
    return f"covidtracer-{stage}-{name}"


def service_stack(service: str) -> str:
    return f"service-{service}"


def output_sources() -> dict[str, str]:
    """Which infrastructure template declares each output (for the dry run's placeholders)."""
    sources: dict[str, str] = {}
    for path in sorted(TEMPLATES.glob("*.yaml")):
        for name in cfn.load(path).get("Outputs", {}):
            sources.setdefault(name, path.stem)
    sources["UsageReportFunctionArn"] = service_stack("export")
    return sources


def _output(ctx: Context, name: str) -> str:
    if name in ctx.outputs:
        return ctx.outputs[name]
    if ctx.dry_run or ctx.plan_only:
        return f"<{output_sources().get(name, '?')} output {name}>"
    raise KeyError(f"no stack output {name}: deploy the infrastructure stacks first")


# ---------------------------------------------------------------------------- stacks


def _stack_parameters(template: str, ctx: Context) -> dict[str, str]:
    stage = ctx.stage
    # Each template's own inputs only: an output is read when its stack's turn comes (the
    # CloudFront WAF's ARN exists only once waf-cloudfront is deployed, after artifacts).
    extra: dict[str, Callable[[], dict[str, str]]] = {
        "data": lambda: {"NctsAccountId": stage.ncts_account_id, "DrRegion": stage.dr_region},
        "dr": lambda: {"NctsAccountId": stage.ncts_account_id},
        "dr-signing": lambda: {"ExportSigningKeyArn": _output(ctx, "ExportSigningKeyArn")},
        "backup": lambda: {"DrRegion": stage.dr_region},
        "database": lambda: {
            "DrRegion": stage.dr_region,
            "MaxCapacity": str(stage.database_max_capacity),
            "LogRetentionDays": str(stage.log_retention_days),
        },
        "email": lambda: {"SenderAddress": stage.sender_address},
        "identity": lambda: {"AuthTriggersDeployed": _wired(ctx, "AuthTriggersDeployed")},
        "edge": lambda: {
            "CloudFrontWebAclArn": _output(ctx, "CloudFrontWebAclArn"),
            "EdgeCertificateArn": stage.edge.get("certificate_arn", ""),
            "FeedAlias": stage.edge.get("feed_domain", ""),
            "EnfFilesAlias": stage.edge.get("enf_files_domain", ""),
            "DrRegion": stage.dr_region,
        },
        "observability": lambda: {"AlarmEmail": stage.alarm_email, "DrRegion": stage.dr_region},
        "analytics": lambda: {"UsageReportFunctionArn": _wired(ctx, "UsageReportFunctionArn")},
    }
    return {"Stage": stage.name, **extra.get(template, dict)()}


def _not_in_stage(template: str, stage: StageConfig) -> bool:
    """A DR stack of a stage without a DR region."""
    return template in DR_TEMPLATES and not stage.dr_region


def _stack_region(template: str, stage: StageConfig) -> str:
    if template in DR_TEMPLATES:
        return stage.dr_region
    if template == "email":
        return stage.ses_region
    if template == "waf-cloudfront":
        return CLOUDFRONT_WAF_REGION
    return stage.region


def stack_step(template: str) -> Step:
    def run(ctx: Context) -> None:
        name = stack_name(ctx.stage.name, template)
        if _not_in_stage(template, ctx.stage):
            ctx.log(f"  skip {name}: the stage has no DR region")
            return
        region = _stack_region(template, ctx.stage)
        parameters = _stack_parameters(template, ctx)
        ctx.log(
            f"  stack {name} in {region} from infra/templates/{template}.yaml "
            f"with {json.dumps(parameters)}"
        )
        if ctx.dry_run:
            return
        body = (TEMPLATES / f"{template}.yaml").read_text()
        ctx.outputs.update(_deploy_stack(ctx, name, region, {"TemplateBody": body}, parameters))

    return Step(f"deploy stack {template}", run)


def _deploy_stack(
    ctx: Context,
    name: str,
    region: str,
    template: Mapping[str, str],
    parameters: Mapping[str, str],
) -> dict[str, str]:
    """Create or update a stack through a change set; returns its outputs.

    With ``ctx.plan_only`` the change set is described and deleted instead of executed.
    """
    unresolved = sorted(k for k, v in parameters.items() if v.startswith("<"))
    if unresolved:
        ctx.log(
            f"    {name}: not planned until the stacks it reads exist ({', '.join(unresolved)})"
        )
        return {}
    import boto3
    from botocore.exceptions import ClientError

    cfn_client = boto3.client("cloudformation", region_name=region)
    change_type = "CREATE" if _describe_stack(cfn_client, name) is None else "UPDATE"
    try:
        change_set = cfn_client.create_change_set(
            StackName=name,
            ChangeSetName=f"release-{int(time.time())}",
            ChangeSetType=change_type,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=CAPABILITIES,
            Tags=[
                {"Key": "covidtracer:stage", "Value": ctx.stage.name},
                {"Key": "covidtracer:version", "Value": ctx.version},
            ],
            **template,  # type: ignore[arg-type]
        )
    except ClientError as exc:
        if "No updates are to be performed" not in str(exc):
            raise
        change_set = None
    if change_set is None:
        ctx.log(f"    {name}: no changes")
    else:
        _apply_change_set(ctx, cfn_client, name, change_set["Id"], change_type)
        if ctx.plan_only and change_type == "CREATE":
            return {}
    stack = cfn_client.describe_stacks(StackName=name)["Stacks"][0]
    return _stack_outputs(stack)


def _describe_stack(cfn_client: Any, name: str) -> dict[str, Any] | None:
    """The stack called ``name``, or ``None`` when CloudFormation has none."""
    from botocore.exceptions import ClientError

    try:
        stack: dict[str, Any] = cfn_client.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" not in str(exc):
            raise
        return None
    return stack


def _stack_outputs(stack: Mapping[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _apply_change_set(
    ctx: Context, cfn_client: Any, name: str, change_set_id: str, change_type: str
) -> None:
    """Wait for a change set, print its changes, then execute it (or, planning, delete it)."""
    from botocore.exceptions import WaiterError

    try:
        cfn_client.get_waiter("change_set_create_complete").wait(ChangeSetName=change_set_id)
    except WaiterError:
        status = cfn_client.describe_change_set(ChangeSetName=change_set_id)
        reason = status.get("StatusReason", "")
        cfn_client.delete_change_set(ChangeSetName=change_set_id)
        if "didn't contain changes" not in reason and "No updates" not in reason:
            raise RuntimeError(f"{name}: change set failed: {reason}") from None
        ctx.log(f"    {name}: no changes")
    else:
        described = cfn_client.describe_change_set(ChangeSetName=change_set_id)
        for change in described.get("Changes", []):
            resource = change.get("ResourceChange", {})
            ctx.log(
                f"    {resource.get('Action', '?'):<7} {resource.get('LogicalResourceId')} "
                f"({resource.get('ResourceType')})"
                + (f" replacement={resource['Replacement']}" if resource.get("Replacement") else "")
            )
        if ctx.plan_only:
            cfn_client.delete_change_set(ChangeSetName=change_set_id)
            if change_type == "CREATE":
                # A CREATE change set leaves an empty REVIEW_IN_PROGRESS stack behind.
                cfn_client.delete_stack(StackName=name)
        else:
            cfn_client.execute_change_set(ChangeSetName=change_set_id)
            done = "stack_create_complete" if change_type == "CREATE" else "stack_update_complete"
            cfn_client.get_waiter(done).wait(
                StackName=name, WaiterConfig={"Delay": 15, "MaxAttempts": 240}
            )


# ---------------------------------------------------------------------------- services


@dataclass(frozen=True)
class Package:
    """One service's ``make package`` output."""

    service: str
    folder: Path

    @property
    def template(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.folder / "template.json").read_text())
        return loaded

    @property
    def version(self) -> str:
        return str(json.loads((self.folder / "release.json").read_text())["version"])

    @property
    def zip(self) -> Path:
        return self.folder / "deployment.zip"


def load_package(service: str, build: Path = BUILD) -> Package:
    package = Package(service, build / service)
    if not (package.folder / "template.json").exists():
        raise FileNotFoundError(f"build/{service} is missing: run `make package` first")
    return package


def memory_size(service: str, stage: str) -> int:
    """Lambda memory for a stage, from the service's ``.chalice/config.json``."""
    config = json.loads((SERVICES / service / ".chalice" / "config.json").read_text())
    return int(config["stages"][stage]["lambda_memory_size"])


def service_parameters(service: str, template: Mapping[str, Any], ctx: Context) -> dict[str, str]:
    """Every parameter of a packaged template, from the stage file and the stack outputs."""
    stage = ctx.stage
    values: dict[str, str] = {
        "MemorySize": str(memory_size(service, stage.name)),
        **{param: str(getattr(stage, attr)) for param, attr in STAGE_PARAMETERS.items()},
    }
    for variable in ENF_OPERATOR_VARIABLES:
        if variable in stage.enf_environment:
            values[_parameter_name(variable)] = stage.enf_environment[variable]
    parameters: dict[str, str] = {}
    for name in template["Parameters"]:
        parameters[name] = values[name] if name in values else _output(ctx, name)
    return parameters


def service_step(service: str) -> Step:
    def run(ctx: Context) -> None:
        package = load_package(service)
        name = stack_name(ctx.stage.name, service_stack(service))
        template = package.template
        if package.version != ctx.version:
            message = (
                f"build/{service} holds release {package.version}, this checkout is "
                f"{ctx.version}: run `make package`"
            )
            if ctx.calls_aws:
                raise RuntimeError(message)
            ctx.log(f"  warning: {message}")
        parameters = service_parameters(service, template, ctx)
        digest = hashlib.sha256(package.zip.read_bytes()).hexdigest()
        bucket = _output(ctx, "ArtifactsBucket")
        ctx.log(
            f"  stack {name} in {ctx.stage.region} from build/{service}/template.json "
            f"(release {package.version}; code s3://{bucket}/{service}/{digest}.zip), parameters:"
        )
        for key, value in parameters.items():
            ctx.log(f"      {key} = {value}")
        if ctx.dry_run:
            return
        ctx.outputs.update(
            _deploy_stack(
                ctx,
                name,
                ctx.stage.region,
                _upload(ctx, package, template, bucket, digest),
                parameters,
            )
        )

    return Step(f"deploy service {service}", run)


def _upload(
    ctx: Context, package: Package, template: dict[str, Any], bucket: str, digest: str
) -> dict[str, str]:
    """Upload the zip (by content hash) and the template; point the functions at the zip."""
    import boto3

    s3 = boto3.client("s3", region_name=ctx.stage.region)
    key = f"{package.service}/{digest}.zip"
    s3.upload_file(str(package.zip), bucket, key)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}
    body = json.dumps(template)
    if len(body.encode()) <= TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": body}
    template_key = f"{package.service}/{hashlib.sha256(body.encode()).hexdigest()}.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=body.encode())
    region = ctx.stage.region
    return {"TemplateURL": f"https://{bucket}.s3.{region}.amazonaws.com/{template_key}"}


def unfilled_inputs(stage: StageConfig) -> list[str]:
    """Stage inputs an operator has not filled in yet (see docs/operations.md, "A new stage")."""
    inputs = {"ncts_account_id": stage.ncts_account_id, **stage.enf_environment}
    return [name for name, value in inputs.items() if value.startswith("REPLACE")]


# Where each wired parameter comes from: the service stack whose functions it names.
WIRING = {"AuthTriggersDeployed": "auth", "UsageReportFunctionArn": "export"}


def _wired(ctx: Context, parameter: str) -> str:
    if parameter in ctx.wiring:
        return ctx.wiring[parameter]
    if ctx.dry_run:
        return f"<as deployed: {stack_name(ctx.stage.name, service_stack(WIRING[parameter]))}>"
    raise KeyError(f"{parameter} unknown: read the deployed service stacks first")


def _has_resources(stack: Mapping[str, Any] | None) -> bool:
    """Whether a stack's resources exist: it was created, whatever its updates did since.

    A failed creation (``ROLLBACK_COMPLETE``) has deleted its resources and a stack made by a
    change set not yet executed (``REVIEW_IN_PROGRESS``) has none
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-describing-stacks.html).
    """
    if stack is None:
        return False
    status = str(stack["StackStatus"])
    return status == "CREATE_COMPLETE" or status.startswith(("UPDATE_", "IMPORT_"))


def read_wiring_step() -> Step:
    """What the identity and analytics stacks must keep, from the stage's service stacks.

    A fresh runner knows nothing of the stage, so it asks CloudFormation. The identity stack
    calls the auth functions once the auth service stack exists, and the analytics stack
    schedules the export service's usage-report function once it exists; every update of
    this release then keeps both (an update that left them out would remove Cognito's
    triggers, and with them sign-in, until the wiring step put them back).
    """

    def run(ctx: Context) -> None:
        auth = stack_name(ctx.stage.name, service_stack("auth"))
        export = stack_name(ctx.stage.name, service_stack("export"))
        ctx.log(
            f"  AuthTriggersDeployed = true if {auth} exists; UsageReportFunctionArn = "
            f"{export}'s output UsageReportFunctionArn if it exists"
        )
        if ctx.dry_run:
            return
        import boto3

        client = boto3.client("cloudformation", region_name=ctx.stage.region)
        auth_stack, export_stack = _describe_stack(client, auth), _describe_stack(client, export)
        ctx.wiring["AuthTriggersDeployed"] = "true" if _has_resources(auth_stack) else "false"
        ctx.wiring["UsageReportFunctionArn"] = (
            _stack_outputs(export_stack).get("UsageReportFunctionArn", "")
            if export_stack is not None and _has_resources(export_stack)
            else ""
        )
        ctx.log(f"    deployed now: {json.dumps(ctx.wiring)}")

    return Step("read what the stage runs now (its auth and export service stacks)", run)


def triggers_step() -> Step:
    def run(ctx: Context) -> None:
        _rewire(
            ctx, "AuthTriggersDeployed", "true", "identity",
            "wired: the identity stack above kept the triggers",
            "the stage has no auth service stack yet (step 1)",
        )  # fmt: skip

    return Step(
        "wire the Cognito triggers to the auth Lambdas (identity stack update, new stage only)",
        run,
    )


def usage_report_schedule_step() -> Step:
    def run(ctx: Context) -> None:
        _rewire(
            ctx, "UsageReportFunctionArn", _output(ctx, "UsageReportFunctionArn"), "analytics",
            "scheduled: the analytics stack above kept the schedule",
            "the stage has no export service stack yet, or its function changed",
        )  # fmt: skip

    return Step(
        "schedule the daily usage report (analytics stack update, new stage or new function)",
        run,
    )


def _rewire(ctx: Context, parameter: str, value: str, template: str, kept: str, when: str) -> None:
    """Update ``template``'s stack with ``parameter`` set to ``value``, unless the stage's
    wiring (read from CloudFormation) already has it."""
    if ctx.wiring.get(parameter) == value:
        ctx.log(f"  already {kept}")
        return
    if ctx.dry_run:
        ctx.log(f"  only if {when}:")
    ctx.wiring[parameter] = value
    stack_step(template).run(ctx)


def migrations_step() -> Step:
    def run(ctx: Context) -> None:
        function = f"covidtracer-enf-{ctx.stage.name}-migrate:{ctx.stage.name}"
        ctx.log(f"  invoke {function} (numbered migrations shipped in the ENF package)")
        if not ctx.changes_aws:
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


# Stacks in the stage's DR region (dr_region): "dr" before data (its buckets receive the data
# stack's replication), "dr-signing" after it (it replicates the data stack's signing key).
DR_TEMPLATES = ("dr", "dr-signing")
STACK_ORDER = (
    "artifacts",
    "network",
    "dr",
    "data",
    "database",
    "messaging",
    "email",
    "identity",
    "analytics",
    "waf-cloudfront",
    "edge",
    "dr-signing",
    "backup",
)


def plan(services: tuple[str, ...] = SERVICE_NAMES, *, with_stacks: bool = True) -> list[Step]:
    if with_stacks:
        steps = [read_wiring_step(), *(stack_step(t) for t in STACK_ORDER)]
    else:
        steps = [load_outputs_step()]
    steps += [service_step(s) for s in services]
    if "auth" in services and with_stacks:
        steps.append(triggers_step())
    if "export" in services and with_stacks:
        steps.append(usage_report_schedule_step())
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
            if _not_in_stage(template, ctx.stage):
                continue
            region = _stack_region(template, ctx.stage)
            client = boto3.client("cloudformation", region_name=region)
            stack = client.describe_stacks(StackName=stack_name(ctx.stage.name, template))
            ctx.outputs.update(_stack_outputs(stack["Stacks"][0]))

    return Step("read the stack outputs", run)


def execute(steps: list[Step], ctx: Context) -> None:
    if ctx.dry_run:
        mode = "plan (dry run: nothing is called)"
    elif ctx.plan_only:
        mode = "plan (change sets created, printed and deleted; nothing is executed)"
    else:
        mode = "deploying"
    ctx.log(f"{mode} for stage {ctx.stage.name} in {ctx.stage.region}, release {ctx.version}:")
    for number, step in enumerate(steps, 1):
        ctx.log(f"{number:2d}. {step.title}")
        step.run(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description="Deploy the NZ COVID Tracer backend")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--service", choices=SERVICE_NAMES, help="deploy only this service")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the plan; call nothing")
    mode.add_argument("--plan", action="store_true", help="create, print and delete change sets")
    args = parser.parse_args()
    try:
        stage = StageConfig.load(args.stage)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    missing = unfilled_inputs(stage)
    if missing and not args.dry_run:
        sys.exit(f"error: fill in {', '.join(missing)} in infra/stages/{stage.name}.json first")
    steps = plan((args.service,), with_stacks=False) if args.service else plan()
    try:
        execute(steps, Context(stage=stage, dry_run=args.dry_run, plan_only=args.plan))
    except (FileNotFoundError, RuntimeError, KeyError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
